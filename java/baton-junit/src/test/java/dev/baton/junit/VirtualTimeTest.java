package dev.baton.junit;

import static dev.baton.junit.BatonAssertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.baton.Retry;
import dev.baton.Run;
import dev.baton.RunResult;
import dev.baton.StepStatus;
import dev.baton.Workflow;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Time skipping: hours of sleeps, retry delays and timeouts pass in a moment of real time. */
@BatonTest(start = "2026-11-24T02:00:00Z")
class VirtualTimeTest {

    private static final Instant START = Instant.parse("2026-11-24T02:00:00Z");

    /** A one-hour sleep, then a step that fails five times and is retried every 10 minutes. */
    private static Workflow napThenFlaky() {
        return Workflow.named("nap-then-flaky")
                .step("nap", s -> s.sleep(Duration.ofHours(1)))
                .step("flaky", s -> s.dependsOn("nap").java(ctx -> {}).retry(Retry.fixed(6, Duration.ofMinutes(10))))
                .build();
    }

    private static void failFiveTimes(BatonTestEnv env) {
        env.mockStep("nap-then-flaky", "flaky", ctx -> {
            if (ctx.attempt() <= 5) {
                throw new IllegalStateException("not yet (attempt " + ctx.attempt() + ")");
            }
            ctx.output("attempt", ctx.attempt());
        });
    }

    @Test
    void awaitingARunThatWaitsForTimeFailsFastSayingToAdvanceTheClock(BatonTestEnv env) {
        env.register(napThenFlaky());
        failFiveTimes(env);
        Run run = env.start("nap-then-flaky");

        IllegalStateException stuck = assertThrows(IllegalStateException.class, () -> run.await());
        assertTrue(stuck.getMessage().contains("nothing moves it: on a virtual clock, time moves only when told"),
                stuck.getMessage());
        assertTrue(stuck.getMessage().contains("env.clock().advance(...)") && stuck.getMessage().contains("env.finish(run)"),
                stuck.getMessage());
        assertThrows(IllegalStateException.class, () -> run.await(Duration.ofMinutes(5)));

        assertThat(env.finish(run)).succeeded().stepAttempts("flaky", 6);
    }

    @Test
    void anHourOfSleepAndFiveRetriesPassAtOnce(BatonTestEnv env) {
        env.register(napThenFlaky());
        failFiveTimes(env);
        Run run = env.start("nap-then-flaky");

        assertEquals(START.plus(Duration.ofHours(3)), env.clock().advance(Duration.ofHours(3)));

        RunResult result = run.await(Duration.ZERO);   // already over: advance returns once the engine is idle
        assertThat(result).succeeded()
                .stepSucceeded("nap").stepAttempts("nap", 1)
                .stepSucceeded("flaky").stepAttempts("flaky", 6).stepOutput("flaky", "attempt", 6);
        assertEquals(START.plus(Duration.ofHours(1)), result.step("nap").ended().orElseThrow());
        assertEquals(START.plus(Duration.ofMinutes(110)), result.step("flaky").ended().orElseThrow(),
                "the sixth attempt runs 1 h + 5 x 10 min after the start");
        assertEquals(List.of(1, 2, 3, 4, 5, 6),
                env.calls("nap-then-flaky", "flaky").stream().map(StepCall::attempt).toList());
    }

    @Test
    void advanceStopsAtItsTargetAndFiresWhatIsDueOnTheWay(BatonTestEnv env) {
        env.register(napThenFlaky());
        failFiveTimes(env);
        Run run = env.start("nap-then-flaky");

        env.clock().advance(Duration.ofMinutes(59));
        assertThat(run.result()).stepStatus("nap", StepStatus.RUNNING).stepStatus("flaky", StepStatus.PENDING);

        env.clock().advance(Duration.ofMinutes(21));    // to 1 h 20 min: attempts at 1 h, 1 h 10, 1 h 20
        assertThat(run.result()).stepStatus("flaky", StepStatus.RETRYING).stepAttempts("flaky", 3);
        assertEquals(START.plus(Duration.ofMinutes(80)), env.clock().now());

        assertEquals(START.plus(Duration.ofMinutes(110)), env.clock().runUntilIdle(), "stops at the last timer");
        assertThat(run.result()).succeeded().stepAttempts("flaky", 6);
    }

    @Test
    void aTimeoutFiresOnVirtualTime(BatonTestEnv env) {
        env.register(Workflow.named("slow")
                .step("wait", s -> s.sleep(Duration.ofHours(2)).timeout(Duration.ofMinutes(30))
                        .retry(Retry.fixed(2, Duration.ofMinutes(5)).onTimeout(true)))
                .step("after", s -> s.dependsOn("wait").noop())
                .build());
        RunResult result = env.finish(env.start("slow"));

        assertThat(result).failed()
                .stepFailed("wait").stepAttempts("wait", 2).stepErrorContains("wait", "timed out after 30m")
                .stepSkipped("after");
        assertEquals(START.plus(Duration.ofMinutes(65)), env.clock().now(), "30 min, 5 min of delay, 30 min");
    }

    @Test
    void timeNeverMovesBack(BatonTestEnv env) {
        assertThrows(IllegalArgumentException.class, () -> env.clock().advance(Duration.ofSeconds(-1)));
        assertEquals(START, env.clock().advanceTo(START.minusSeconds(60)), "a past instant leaves the clock alone");
    }
}
