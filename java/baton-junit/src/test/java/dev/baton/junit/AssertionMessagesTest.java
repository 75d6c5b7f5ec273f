package dev.baton.junit;

import static dev.baton.junit.BatonAssertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.baton.Retry;
import dev.baton.RunResult;
import dev.baton.Workflow;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.opentest4j.AssertionFailedError;

/** A failed check says what it expected, then shows the run as `baton show` does. */
@BatonTest
class AssertionMessagesTest {

    private static RunResult failedRun(BatonTestEnv env) {
        env.register(Workflow.named("etl")
                .param("date", "2026-11-24")
                .step("extract", s -> s.java(ctx -> ctx.output("rows", 0)))
                .step("load", s -> s.dependsOn("extract").shell("exit 3").retry(Retry.fixed(3, Duration.ofMinutes(10))))
                .step("report", s -> s.dependsOn("load").noop())
                .build());
        env.mockStep("etl", "load", ctx -> {
            throw new IllegalStateException("warehouse is read-only");
        });
        return env.finish(env.start("etl"));
    }

    @Test
    void aWrongRunStatusShowsTheStepTable(BatonTestEnv env) {
        RunResult run = failedRun(env);

        AssertionFailedError e = assertThrows(AssertionFailedError.class, () -> assertThat(run).succeeded());

        String message = e.getMessage();
        assertTrue(message.startsWith("expected the run to be SUCCEEDED, but it is FAILED: "), message);
        assertTrue(message.contains("\nworkflow  etl\nstatus    FAILED\ncreated   2026-01-01T00:00:00Z\n"
                + "duration  20m00s\nparams    date=2026-11-24\n"), message);
        assertTrue(message.contains("\nsteps     3 (1 succeeded, 1 failed, 1 skipped)\n"), message);
        assertTrue(message.contains(String.join("\n",
                "STEP     TYPE    STATUS     ATTEMPT   DURATION  OUTPUTS / ERROR",
                "extract  java    SUCCEEDED        1        0ms  rows=0",
                "load     shell   FAILED           3        0ms  java.lang.IllegalStateException: warehouse is read-only",
                "report   noop    SKIPPED          0          -  skipped: upstream step `load` did not succeed")), message);
        assertTrue(message.contains("output of `load` (attempt 3, last lines):\n  | java.lang.IllegalStateException:"
                + " warehouse is read-only\n  | \tat "), message);
        assertEquals("SUCCEEDED", String.valueOf(e.getExpected().getValue()));
        assertEquals("FAILED", String.valueOf(e.getActual().getValue()));
    }

    @Test
    void stepChecksSayWhichStepAndWhatItIs(BatonTestEnv env) {
        RunResult run = failedRun(env);

        assertThat(run).failed().errorContains("load").stepFailed("load").stepAttempts("load", 3)
                .stepErrorContains("load", "read-only").stepSkipped("report")
                .stepOutput("extract", "rows", 0).stepOutputs("extract", Map.of("rows", 0L));

        assertEquals("expected step `report` to be SUCCEEDED, but it is SKIPPED: skipped: upstream step `load` did not succeed",
                firstLine(assertThrows(AssertionFailedError.class, () -> assertThat(run).stepSucceeded("report"))));
        assertEquals("expected step `load` to have made 1 attempt, but it made 3",
                firstLine(assertThrows(AssertionFailedError.class, () -> assertThat(run).stepAttempts("load", 1))));
        assertEquals("expected output `rows` of step `extract` to be 1, but it is 0",
                firstLine(assertThrows(AssertionFailedError.class, () -> assertThat(run).stepOutput("extract", "rows", 1))));
        assertEquals("expected step `extract` to have the output `bytes`, but its outputs are {\"rows\":0}",
                firstLine(assertThrows(AssertionFailedError.class, () -> assertThat(run).stepOutput("extract", "bytes", 1))));
        assertEquals("the run of `etl` has no step `loda`; its steps: extract, load, report",
                firstLine(assertThrows(AssertionFailedError.class, () -> assertThat(run).stepFailed("loda"))));
        assertTrue(assertThrows(AssertionFailedError.class, () -> assertThat(run).stepSucceeded("report"))
                .getMessage().contains("\nSTEP     TYPE"), "every failure ends with the table");
    }

    @Test
    void numbersCompareByValue(BatonTestEnv env) {
        env.register(Workflow.named("numbers").step("n", s -> s.java(ctx -> {
            ctx.output("int", 7);
            ctx.output("ratio", 0.5f);
            ctx.output("list", java.util.List.of(1, 2));
        })).build());
        RunResult run = env.finish(env.start("numbers"));

        assertThat(run).stepOutput("n", "int", 7).stepOutput("n", "int", 7L).stepOutput("n", "int", 7.0)
                .stepOutput("n", "ratio", 0.5).stepOutput("n", "list", java.util.List.of(1L, 2));
        assertThrows(AssertionFailedError.class, () -> assertThat(run).stepOutput("n", "int", "7"));
    }

    private static String firstLine(Throwable e) {
        return e.getMessage().lines().findFirst().orElse("");
    }
}
