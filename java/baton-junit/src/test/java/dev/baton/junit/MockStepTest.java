package dev.baton.junit;

import static dev.baton.junit.BatonAssertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.baton.Retry;
import dev.baton.Run;
import dev.baton.RunResult;
import dev.baton.Workflow;
import java.io.IOException;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Mocks stand in for Java and shell steps alike, and record how they were called. */
@BatonTest
class MockStepTest {

    @Test
    void aMockedJavaStepFeedsTheRealStepsBelowIt(BatonTestEnv env) {
        env.register(Workflow.named("report")
                .param("region", "eu")
                .step("count", s -> s.java(ctx -> {
                    throw new IllegalStateException("the real count needs a database");
                }))
                .step("format", s -> s.dependsOn("count").java(ctx ->
                        ctx.output("line", ctx.param("region") + ": " + ctx.input("count", "rows") + " rows")))
                .build());
        env.mockStep("report", "count", Map.of("rows", 42));

        RunResult result = env.finish(env.start("report", Map.of("region", "us")));

        assertThat(result).succeeded().stepOutput("count", "rows", 42).stepOutput("format", "line", "us: 42 rows");
        StepCall call = env.calls("report", "count").get(0);
        assertEquals("us", call.param("region"));
        assertEquals(1, call.attempt());
        assertEquals(result.id(), call.runId());
    }

    @Test
    void aMockedShellStepRunsNoCommandAndSeesParamsAndInputs(BatonTestEnv env) {
        env.register(Pipelines.nightlyEtl());
        env.mockStep("nightly-etl", "extract", ctx -> ctx.output("rows", 1200));
        env.mockStep("nightly-etl", "load", ctx -> ctx.output("loaded", ctx.input("extract", "rows")));

        RunResult result = env.finish(env.start("nightly-etl", Map.of("date", "2026-11-25")));

        assertThat(result).allStepsSucceeded().stepOutput("load", "loaded", 1200);
        List<StepCall> loads = env.calls("nightly-etl", "load");
        assertEquals(1, loads.size());
        assertEquals("2026-11-25", loads.get(0).param("date"));
        assertEquals(Map.of("extract", Map.of("rows", 1200L)), loads.get(0).inputs(), "the outputs of its upstream steps");
        assertEquals(result.id() + "/load/1", loads.get(0).idempotencyKey());
    }

    @Test
    void aFailingMockIsRetriedAsTheStepSays(BatonTestEnv env) {
        env.register(Pipelines.nightlyEtl());
        env.mockStep("nightly-etl", "extract", ctx -> {
            if (ctx.attempt() < 3) {
                throw new IOException("database busy");
            }
            ctx.output("rows", 7);
        });
        env.mockStep("nightly-etl", "load", ctx -> {});
        Run run = env.start("nightly-etl");

        env.clock().advance(Duration.ofMinutes(20));   // retries after 10 and 20 minutes

        assertThat(run.result()).stepSucceeded("extract").stepAttempts("extract", 3);
        assertEquals(List.of(1, 2, 3), env.calls("nightly-etl", "extract").stream().map(StepCall::attempt).toList());
        assertEquals(List.of(), env.calls("nightly-etl", "load"), "load waits for the one-hour settle");
        assertThat(env.finish(run)).succeeded();
        assertEquals(1, env.calls("nightly-etl", "load").size());
    }

    @Test
    void mocksCanComeBeforeTheWorkflowAndNameOnlyItsSteps(BatonTestEnv env) {
        env.mockStep("nightly-etl", "extrakt", Map.of("rows", 0));
        IllegalArgumentException before = assertThrows(IllegalArgumentException.class,
                () -> env.register(Pipelines.nightlyEtl()));
        assertEquals("cannot mock step `extrakt`: workflow `nightly-etl` has no such step; its steps: extract, settle, load",
                before.getMessage());

        BatonTestEnv fresh = BatonTestEnv.open(java.time.Instant.EPOCH);
        try (fresh) {
            fresh.register(Pipelines.nightlyEtl());
            IllegalArgumentException after = assertThrows(IllegalArgumentException.class,
                    () -> fresh.mockStep("nightly-etl", "lod", ctx -> {}));
            assertTrue(after.getMessage().contains("has no such step; its steps: extract, settle, load"), after.getMessage());
            IllegalArgumentException notMocked = assertThrows(IllegalArgumentException.class,
                    () -> fresh.calls("nightly-etl", "load"));
            assertEquals("step `load` of `nightly-etl` is not mocked: calls are recorded for mocked steps (env.mockStep);"
                    + " mocked: none", notMocked.getMessage());
        }
    }

    @Test
    void anUnmockedShellStepRunsForRealAndHoldsTimeWhileItDoes(BatonTestEnv env) {
        env.register(Workflow.named("real")
                .step("pause", s -> s.shell("sleep 0.2 && echo done=yes >> $BATON_OUTPUT").timeout(Duration.ofSeconds(1)))
                .build());
        Run run = env.start("real");

        env.clock().advance(Duration.ofHours(1));   // far past the timeout, but only once the command is over

        assertThat(run.result()).succeeded().stepOutput("pause", "done", "yes");
    }
}
