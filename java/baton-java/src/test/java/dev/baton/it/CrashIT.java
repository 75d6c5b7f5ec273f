package dev.baton.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.baton.Baton;
import dev.baton.RunResult;
import dev.baton.RunStatus;
import dev.baton.StepResult;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Durable Java steps across a crash: a JVM running a workflow of Java steps is killed with
 * kill -9; this JVM opens the store, registers the same workflow and the run completes,
 * relaunching the step that was running with the same idempotency key.
 */
@Timeout(120)
class CrashIT {

    @TempDir
    Path store;

    @Test
    void aRunKilledMidwayCompletesInTheNextJvm() throws Exception {
        String runId;
        String runningAtKill;
        try (ChildJvm child = ChildJvm.start(CrashMain.class, store.toString())) {
            runId = child.awaitLine("RUN ", 60).substring(4);
            runningAtKill = child.awaitLine("STEP s5 ", 60).split(" ")[2];
            child.kill9();
            child.assertNoWarnings();
        }
        assertEquals(runId + "/s5/1", runningAtKill);

        List<String> keys = new CopyOnWriteArrayList<>();
        try (Baton baton = Baton.open(store)) {
            baton.register(Chain.workflow(Duration.ofMillis(1), line -> keys.add(line.split(" ")[2])));
            RunResult result = baton.await(runId, Duration.ofSeconds(60));

            assertEquals(RunStatus.SUCCEEDED, result.status(), result::toString);
            for (StepResult step : result.steps()) {
                assertEquals(1, step.attempts(), step::toString);
            }
            long here = ProcessHandle.current().pid();
            assertTrue(!result.step("s4").output("pid").equals(here), "s4 ran in the killed JVM");
            assertEquals(here, result.step("s19").output("pid"));
        }
        // Nothing that had finished ran again; the step running at the kill ran again, with its key.
        assertEquals(runningAtKill, keys.get(0), keys::toString);
        assertEquals(Chain.LENGTH - 5, keys.size(), keys::toString);
    }
}
