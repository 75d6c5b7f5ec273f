package dev.baton;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.baton.internal.Envelope;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Run details in the engine's JSON form, read into {@link RunResult}, without the native library. */
class RunResultTest {

    private static final String FAILED = """
            {"ok": {
              "run": {"id": "01RUN", "workflow_id": "etl", "definition": "abc", "params": {"date": "2026-11-25", "n": 3},
                      "status": "FAILED", "step_count": 4, "created_ms": 1000, "started_ms": 1001, "ended_ms": 3000,
                      "deadline_ms": 9000, "error": "step `load` failed: java.io.IOException: disk full",
                      "counts": {"SUCCEEDED": 1, "FAILED": 2, "WAITING": 1}},
              "steps": [
                {"id": "extract", "type": "java", "status": "SUCCEEDED", "attempt": 1, "started_ms": 1001, "ended_ms": 1043,
                 "outputs": {"rows": 42, "ratio": 0.5, "tags": ["a"], "ok": true}},
                {"id": "load", "type": "java", "status": "FAILED", "attempt": 3, "started_ms": 1100, "ended_ms": 2000,
                 "error": "java.io.IOException: disk full", "log_tail": "java.io.IOException: disk full\\n\\tat Load.run"},
                {"id": "notify", "type": "shell", "status": "FAILED", "attempt": 1, "error": "exit 1", "failure_ignored": true},
                {"id": "wait", "type": "java", "status": "WAITING", "attempt": 1, "waiting_for": "Java code"}
              ]}}""";

    private static RunResult read(String answer) {
        return RunResult.of(Envelope.unwrap(answer));
    }

    @Test
    void everyFieldIsRead() {
        RunResult result = read(FAILED);

        assertEquals("01RUN", result.id());
        assertEquals("etl", result.workflowId());
        assertEquals(RunStatus.FAILED, result.status());
        assertFalse(result.succeeded());
        assertEquals(Map.of("date", "2026-11-25", "n", 3L), result.params());
        assertEquals(Instant.ofEpochMilli(1000), result.info().created());
        assertEquals(Instant.ofEpochMilli(3000), result.info().ended().orElseThrow());
        assertEquals(Map.of(StepStatus.SUCCEEDED, 1, StepStatus.FAILED, 2, StepStatus.WAITING, 1), result.info().counts());
        StepResult extract = result.step("extract");
        assertEquals(42L, extract.output("rows"));
        assertEquals(0.5, extract.output("ratio"));
        assertEquals(List.of("a"), extract.output("tags"));
        assertEquals(true, extract.output("ok"));
        StepResult load = result.step("load");
        assertEquals(3, load.attempts());
        assertEquals("java.io.IOException: disk full", load.error().orElseThrow());
        assertTrue(load.logTail().orElseThrow().contains("\tat Load.run"));
        assertTrue(result.step("notify").failureIgnored());
        assertEquals("Java code", result.step("wait").waitingFor().orElseThrow());
        assertEquals(List.of("load", "notify"), result.failedSteps().stream().map(StepResult::id).toList());
        assertThrows(IllegalArgumentException.class, () -> result.step("nope"));
    }

    @Test
    void orThrowNamesTheFailedStepsButNotIgnoredOnes() {
        RunResult result = read(FAILED);

        RunFailedException e = assertThrows(RunFailedException.class, result::orThrow);

        assertEquals("run 01RUN of `etl` failed: step `load` failed: java.io.IOException: disk full\n"
                + "  step `load` failed (attempt 3): java.io.IOException: disk full", e.getMessage());
        assertSame(result, e.result());
        StepFailedException step = assertInstanceOf(StepFailedException.class, e.getCause());
        assertEquals("load", step.stepId());
        assertEquals("java.io.IOException", step.errorClass().orElseThrow());
        assertEquals("disk full", step.errorMessage());
        assertEquals("java.io.IOException: disk full", step.error());
        StepFailedException shell = new StepFailedException("notify", "command exited with code 3");
        assertTrue(shell.errorClass().isEmpty());
        assertEquals("command exited with code 3", shell.errorMessage());
    }

    @Test
    void toStringIsAStepTable() {
        String table = read(FAILED).toString();

        assertTrue(table.startsWith("run 01RUN (etl): FAILED: step `load` failed"), table);
        assertTrue(table.contains("STEP"), table);
        assertTrue(table.matches("(?s).*extract\\s+java\\s+SUCCEEDED\\s+1\\s+42ms\\s+\\{\"rows\":42.*"), table);
        assertTrue(table.contains("error: java.io.IOException: disk full"), table);
        assertTrue(table.contains("waiting for: Java code"), table);
    }

    @Test
    void aSucceededRunIsReturnedByOrThrow() {
        RunResult ok = read("""
                {"ok": {"run": {"id": "r", "workflow_id": "w", "definition": "d", "params": {}, "status": "SUCCEEDED",
                                "step_count": 0, "created_ms": 1}, "steps": []}}""");
        assertSame(ok, ok.orThrow());
        assertTrue(ok.info().started().isEmpty());
        assertTrue(ok.error().isEmpty());
    }
}
