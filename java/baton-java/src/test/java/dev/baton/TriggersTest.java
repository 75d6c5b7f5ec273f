package dev.baton;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Versions, starts, the operator's actions, events, limits, triggers and run strategies, from Java. */
@Timeout(60)
class TriggersTest {

    private static final Duration WAIT = Duration.ofSeconds(30);

    /** Polls {@code condition} until it holds (real time: these engines are in memory). */
    private static void waitFor(String what, BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out waiting for " + what);
            }
            Thread.sleep(10);
        }
    }

    private static StepStatus stepStatus(Baton baton, String runId, String stepId) {
        return baton.run(runId).step(stepId).status();
    }

    private static Workflow twoSteps(String id, Object paramDefault) {
        return Workflow.named(id)
                .param("p", paramDefault)
                .step("a", s -> s.noop())
                .step("b", s -> s.dependsOn("a").noop())
                .build();
    }

    @Test
    void registerReturnsTheVersionAndActivateRollsBack() {
        try (Baton baton = Baton.inMemory()) {
            assertEquals(1, baton.register(twoSteps("wf", "x")));
            assertEquals(1, baton.register(twoSteps("wf", "x")), "the same definition is the same version");
            assertEquals(2, baton.register(twoSteps("wf", "y")), "a changed definition is a new version");

            List<WorkflowVersion> versions = baton.versions("wf");
            assertEquals(List.of(1, 2), versions.stream().map(WorkflowVersion::version).toList());
            assertTrue(versions.get(1).active());
            assertNotEquals(versions.get(0).definition(), versions.get(1).definition());

            baton.activate("wf", 1);
            WorkflowInfo info = baton.workflows().get(0);
            assertEquals(new WorkflowInfo("wf", 1, 2, true, 0, RunStrategy.PARALLEL), info);
            RunResult run = baton.start("wf").await(WAIT);
            assertEquals(1, run.version().getAsInt());
            assertEquals("x", run.params().get("p"));
            RunResult v2 = baton.start("wf", Map.of(), StartOptions.ofVersion(2)).await(WAIT);
            assertEquals(2, v2.version().getAsInt());

            UnknownVersionException e = assertThrows(UnknownVersionException.class, () -> baton.activate("wf", 9));
            assertTrue(e.getMessage().contains("1, 2"), e.getMessage());
            assertThrows(UnknownWorkflowException.class, () -> baton.versions("nope"));

            baton.disable("wf");
            assertFalse(baton.workflows().get(0).enabled());
            baton.enable("wf");
            assertTrue(baton.workflows().get(0).enabled());
        }
    }

    @Test
    void aRequestIdMakesAStartIdempotent() {
        try (Baton baton = Baton.inMemory()) {
            baton.register(twoSteps("wf", "x"));
            Run first = baton.start("wf", Map.of("p", "z"), StartOptions.requestId("abc"));
            Run again = baton.start("wf", Map.of("p", "z"), StartOptions.requestId("abc"));
            assertEquals(first.id(), again.id());
            assertEquals(1, baton.runs("wf").size());
            assertEquals("abc", first.await(WAIT).info().requestId().orElseThrow());
            assertNotEquals(first.id(), baton.start("wf", Map.of(), StartOptions.requestId("other")).id());
        }
    }

    @Test
    void pauseHoldsBackTheNextStepUntilResume() throws Exception {
        CountDownLatch started = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        try (Baton baton = Baton.inMemory()) {
            baton.register(Workflow.named("paused")
                    .step("a", s -> s.java(ctx -> {
                        started.countDown();
                        release.await();
                    }))
                    .step("b", s -> s.dependsOn("a").java(ctx -> ctx.output("ran", true)))
                    .build());
            Run run = baton.start("paused");
            assertTrue(started.await(10, TimeUnit.SECONDS));
            baton.pause(run.id());
            assertEquals(RunStatus.PAUSED, baton.run(run.id()).status());
            release.countDown();
            waitFor("a to succeed", () -> stepStatus(baton, run.id(), "a") == StepStatus.SUCCEEDED);
            Thread.sleep(200);
            assertFalse(stepStatus(baton, run.id(), "b").isFinal(), "b waits while the run is paused");
            assertEquals(RunStatus.PAUSED, baton.run(run.id()).status());
            baton.resume(run.id());
            RunResult result = run.await(WAIT);
            assertEquals(RunStatus.SUCCEEDED, result.status());
            assertEquals(true, result.step("b").output("ran"));
        }
    }

    @Test
    void killEndsTheRunAtOnce() throws Exception {
        CountDownLatch started = new CountDownLatch(1);
        try (Baton baton = Baton.inMemory()) {
            baton.register(Workflow.named("patient")
                    .step("wait", s -> s.java(ctx -> {
                        started.countDown();
                        while (!ctx.isStopRequested()) {
                            Thread.sleep(5);
                        }
                    }))
                    .build());
            Run run = baton.start("patient");
            assertTrue(started.await(10, TimeUnit.SECONDS));
            baton.kill(run.id());
            assertEquals(RunStatus.KILLED, run.await(WAIT).status());
        }
    }

    @Test
    void anIllegalActionThrowsWithAClearMessage() {
        try (Baton baton = Baton.inMemory()) {
            baton.register(twoSteps("wf", "x"));
            Run run = baton.start("wf");
            run.await(WAIT);
            IllegalActionException e = assertThrows(IllegalActionException.class, () -> baton.pause(run.id()));
            assertTrue(e.getMessage().contains("cannot pause"), e.getMessage());
            assertTrue(e.getMessage().contains("SUCCEEDED"), e.getMessage());
            assertThrows(UnknownRunException.class, () -> baton.pause("no-such-run"));
        }
    }

    @Test
    void restartKeepsSucceededStepsOrRunsAgainFromAStep() {
        AtomicInteger counted = new AtomicInteger();
        AtomicBoolean failB = new AtomicBoolean(true);
        try (Baton baton = Baton.inMemory()) {
            baton.register(Workflow.named("restart")
                    .step("a", s -> s.java(ctx -> ctx.output("n", counted.incrementAndGet())))
                    .step("b", s -> s.dependsOn("a").java(ctx -> {
                        if (failB.get()) {
                            throw new IllegalStateException("b is broken");
                        }
                    }))
                    .build());
            Run first = baton.start("restart");
            assertEquals(RunStatus.FAILED, first.await(WAIT).status());
            failB.set(false);

            Run second = baton.restart(first.id());
            RunResult result = second.await(WAIT);
            assertEquals(RunStatus.SUCCEEDED, result.status());
            assertEquals(1, counted.get(), "a succeeded before: kept, not run again");
            assertEquals(1L, result.step("a").output("n"));
            assertEquals(first.id(), result.restartedFrom().orElseThrow());
            assertEquals("restart", second.workflowId());

            RunResult third = baton.restart(second.id(), "a").await(WAIT);
            assertEquals(RunStatus.SUCCEEDED, third.status());
            assertEquals(2, counted.get(), "restarted from a: a runs again");
            assertEquals(2L, third.step("a").output("n"));
            assertThrows(UnknownStepException.class, () -> baton.restart(second.id(), "nope"));
        }
    }

    @Test
    void aBreakpointHoldsAStepUntilContinuedOrSkipped() throws Exception {
        try (Baton baton = Baton.inMemory()) {
            baton.register(Workflow.named("bp")
                    .step("a", s -> s.noop())
                    .step("b", s -> s.dependsOn("a").java(ctx -> ctx.output("ran", true)))
                    .step("c", s -> s.dependsOn("b").noop())
                    .build());
            baton.setBreakpoint("bp", "b");
            assertEquals(List.of("b"), baton.breakpoints("bp"));

            Run run = baton.start("bp");
            waitFor("b at its breakpoint", () -> stepStatus(baton, run.id(), "b") == StepStatus.WAITING);
            IllegalActionException notThere = assertThrows(IllegalActionException.class, () -> baton.continueStep(run.id(), "c"));
            assertTrue(notThere.getMessage().contains("c"), notThere.getMessage());
            baton.continueStep(run.id(), "b");
            RunResult result = run.await(WAIT);
            assertEquals(RunStatus.SUCCEEDED, result.status());
            assertEquals(true, result.step("b").output("ran"));

            Run skipped = baton.start("bp");
            waitFor("b at its breakpoint", () -> stepStatus(baton, skipped.id(), "b") == StepStatus.WAITING);
            assertThrows(UnknownStepException.class, () -> baton.skipStep(skipped.id(), "nope"));
            baton.skipStep(skipped.id(), "b");
            RunResult afterSkip = skipped.await(WAIT);
            assertEquals(RunStatus.SUCCEEDED, afterSkip.status());
            assertEquals(StepStatus.SKIPPED, afterSkip.step("b").status());
            assertEquals(StepStatus.SUCCEEDED, afterSkip.step("c").status(), "below a skipped step, as if it succeeded");

            baton.clearBreakpoint("bp", "b");
            assertEquals(List.of(), baton.breakpoints("bp"));
            assertEquals(RunStatus.SUCCEEDED, baton.start("bp").await(WAIT).status());
        }
    }

    @Test
    void retryStepGivesAFailedStepAnotherAttempt() throws Exception {
        AtomicInteger attempts = new AtomicInteger();
        CountDownLatch release = new CountDownLatch(1);
        try (Baton baton = Baton.inMemory()) {
            baton.register(Workflow.named("retry")
                    .step("flaky", s -> s.java(ctx -> {
                        if (attempts.incrementAndGet() == 1) {
                            throw new IllegalStateException("first time unlucky");
                        }
                    }))
                    // Keeps the run going after flaky fails.
                    .step("slow", s -> s.java(ctx -> release.await()))
                    .build());
            Run run = baton.start("retry");
            waitFor("flaky to fail", () -> stepStatus(baton, run.id(), "flaky") == StepStatus.FAILED);
            baton.retryStep(run.id(), "flaky");
            waitFor("flaky to succeed", () -> stepStatus(baton, run.id(), "flaky") == StepStatus.SUCCEEDED);
            release.countDown();
            RunResult result = run.await(WAIT);
            assertEquals(RunStatus.SUCCEEDED, result.status(), result::toString);
            assertEquals(2, result.step("flaky").attempts());
            assertThrows(IllegalActionException.class, () -> baton.retryStep(run.id(), "flaky"));
        }
    }

    @Test
    void onEventDeliversTheRunsEventsInOrderAsTheTimelineHasThem() throws Exception {
        try (Baton baton = Baton.inMemory()) {
            baton.register(twoSteps("wf", "x"));
            List<RunEvent> events = Collections.synchronizedList(new ArrayList<>());
            List<String> threads = Collections.synchronizedList(new ArrayList<>());
            AutoCloseable subscription = baton.onEvent(e -> {
                events.add(e);
                threads.add(Thread.currentThread().getName());
            });
            Run run = baton.start("wf");
            run.await(WAIT);
            waitFor("the run's last event", () -> events.stream().anyMatch(e -> e.runId().equals(run.id())
                    && e.runStatus().filter(RunStatus::isFinal).isPresent()));

            List<RunEvent> ofRun = events.stream().filter(e -> e.runId().equals(run.id())).toList();
            for (int i = 0; i < ofRun.size(); i++) {
                assertEquals(i, ofRun.get(i).seq(), "in order, none missing: " + ofRun);
            }
            assertEquals(baton.timeline(run.id()), ofRun);
            assertEquals("wf", ofRun.get(0).workflowId().orElseThrow());
            assertTrue(ofRun.stream().anyMatch(e -> e.stepId().equals(java.util.Optional.of("b"))
                    && e.stepStatus().equals(java.util.Optional.of(StepStatus.SUCCEEDED))));
            assertTrue(threads.stream().allMatch(t -> t.startsWith("baton-events-")), threads::toString);

            subscription.close();
            int seen = events.size();
            baton.start("wf").await(WAIT);
            Thread.sleep(300);
            assertEquals(seen, events.size(), "nothing after close");
            assertThrows(UnknownRunException.class, () -> baton.timeline("no-such-run"));
        }
    }

    @Test
    void aTagLimitCapsRunningStepsAcrossRuns() {
        AtomicInteger running = new AtomicInteger();
        AtomicInteger most = new AtomicInteger();
        JavaStep work = ctx -> {
            most.accumulateAndGet(running.incrementAndGet(), Math::max);
            Thread.sleep(50);
            running.decrementAndGet();
        };
        try (Baton baton = Baton.inMemory()) {
            baton.limit("db", 1);
            assertEquals(Map.of("db", 1), baton.limits());
            baton.register(Workflow.named("tagged")
                    .step("x", s -> s.tags("db").java(work))
                    .step("y", s -> s.tags("db").java(work))
                    .step("z", s -> s.tags("db").java(work))
                    .build());
            Run one = baton.start("tagged");
            Run two = baton.start("tagged");
            assertEquals(RunStatus.SUCCEEDED, one.await(WAIT).status());
            assertEquals(RunStatus.SUCCEEDED, two.await(WAIT).status());
            assertEquals(1, most.get(), "one db step at a time");

            baton.clearLimit("db");
            assertEquals(Map.of(), baton.limits());
            assertThrows(InvalidRequestException.class, () -> baton.limit("db writes", 2));
            assertThrows(IllegalArgumentException.class, () -> baton.limit("db", -1));
        }
    }

    /** On a virtual clock, so that {@link VirtualClock#awaitIdle} says when the scheduler has reacted. */
    private static Baton virtual(boolean scheduler) {
        return Baton.inMemory(BatonOptions.builder().virtualClock(Instant.parse("2026-01-01T00:00:00Z")).scheduler(scheduler).build());
    }

    @Test
    void aSignalTriggerStartsARun() {
        try (Baton baton = virtual(true)) {
            baton.register(Workflow.named("on-signal")
                    .param("table", "")
                    .trigger(WorkflowTrigger.signal("table_ready").match("${signal.table == 'events'}")
                            .param("table", "${signal.table}"))
                    .step("a", s -> s.noop())
                    .build());
            assertEquals(1, baton.workflows().get(0).triggers());
            // A new trigger takes the signals sent once the scheduler has seen it.
            baton.virtualClock().awaitIdle();
            baton.signal("table_ready", Map.of("table", "other"));
            baton.signal("table_ready", Map.of("table", "events"));
            baton.virtualClock().awaitIdle();
            List<RunInfo> runs = baton.runs("on-signal");
            assertEquals(1, runs.size(), "the other table does not match: " + runs);
            RunResult result = baton.await(runs.get(0).id(), WAIT);
            assertEquals(RunStatus.SUCCEEDED, result.status());
            assertEquals("events", result.params().get("table"));
            assertTrue(result.trigger().isPresent(), "the run says what started it");
            List<Firing> firings = baton.firings("on-signal");
            assertEquals(1, firings.size(), firings::toString);
            assertEquals(result.id(), firings.get(0).runId().orElseThrow());
            assertTrue(firings.get(0).signalId().isPresent());
        }
    }

    @Test
    void aTriggerJoiningSignalsStartsARunOnceEachWasSentForTheSameDate() {
        try (Baton baton = virtual(true)) {
            baton.register(Workflow.named("joined")
                    .param("date", "")
                    .trigger(WorkflowTrigger.signals("db/orders", "db/users").join("date")
                            .matchSignal("db/users", "${signal.rows > 0}")
                            .param("date", "${signals['db/orders'].date}"))
                    .step("a", s -> s.noop())
                    .build());
            baton.virtualClock().awaitIdle();
            baton.signal("db/orders", Map.of("date", "2026-01-01"));
            baton.signal("db/users", Map.of("date", "2026-01-02", "rows", 1));
            baton.signal("db/users", Map.of("date", "2026-01-01", "rows", 0));
            baton.virtualClock().awaitIdle();
            assertEquals(List.of(), baton.runs("joined"), "no date has both signals that count");
            baton.signal("db/users", Map.of("date", "2026-01-01", "rows", 3));
            baton.virtualClock().awaitIdle();
            List<RunInfo> runs = baton.runs("joined");
            assertEquals(1, runs.size(), runs::toString);
            RunResult result = baton.await(runs.get(0).id(), WAIT);
            assertEquals("2026-01-01", result.params().get("date"));
            assertThrows(IllegalArgumentException.class,
                    () -> WorkflowTrigger.signals("a").matchSignal("b", "${true}"));
            assertEquals(List.of("a", "b"), WorkflowTrigger.signals("a", "b").joinSignal("b", "posted_by").signals());
        }
    }

    @Test
    void aJitteredCronFiresAFixedDelayAfterEachTime() {
        try (Baton baton = virtual(true)) {
            baton.register(Workflow.named("hourly")
                    .trigger(WorkflowTrigger.cron("@hourly").jitter(Duration.ofMinutes(20)))
                    .step("a", s -> s.noop()).build());
            baton.virtualClock().advance(Duration.ofMinutes(150));
            List<Firing> firings = baton.firings("hourly");
            assertEquals(2, firings.size(), firings::toString);
            Duration delay = Duration.between(firings.get(0).scheduledAt(), firings.get(0).firedAt());
            assertTrue(delay.compareTo(Duration.ofMinutes(20)) < 0, delay::toString);
            assertEquals(Instant.parse("2026-01-01T01:00:00Z"), firings.get(0).scheduledAt());
            assertEquals(delay, Duration.between(firings.get(1).scheduledAt(), firings.get(1).firedAt()));
        }
    }

    @Test
    void noSchedulerNoFirings() {
        try (Baton baton = virtual(false)) {
            baton.register(Workflow.named("on-signal").onSignal("go", null).step("a", s -> s.noop()).build());
            baton.virtualClock().awaitIdle();
            baton.signal("go", Map.of());
            baton.virtualClock().awaitIdle();
            assertEquals(List.of(), baton.runs("on-signal"));
        }
    }

    @Test
    void aSequentialWorkflowQueuesTheSecondRunUntilTheFirstEnds() throws Exception {
        CountDownLatch release = new CountDownLatch(1);
        try (Baton baton = Baton.inMemory()) {
            baton.register(Workflow.named("one-at-a-time")
                    .runStrategy("sequential")
                    .step("work", s -> s.java(ctx -> release.await()))
                    .build());
            assertEquals(RunStrategy.SEQUENTIAL, baton.workflows().get(0).runStrategy());
            Run first = baton.start("one-at-a-time");
            Run second = baton.start("one-at-a-time");
            waitFor("the first to run", () -> baton.run(first.id()).status() == RunStatus.RUNNING);
            assertEquals(RunStatus.QUEUED, baton.run(second.id()).status());
            release.countDown();
            assertEquals(RunStatus.SUCCEEDED, first.await(WAIT).status());
            RunResult after = second.await(WAIT);
            assertEquals(RunStatus.SUCCEEDED, after.status());
            assertTrue(!after.info().started().orElseThrow().isBefore(first.result().info().ended().orElseThrow()),
                    "the second started once the first ended");
        }
    }

    @Test
    void firstOnlyRejectsASecondRun() {
        CountDownLatch release = new CountDownLatch(1);
        try (Baton baton = Baton.inMemory()) {
            baton.register(Workflow.named("first").runStrategy(RunStrategy.FIRST_ONLY)
                    .step("work", s -> s.java(ctx -> release.await())).build());
            Run run = baton.start("first");
            RunRejectedException e = assertThrows(RunRejectedException.class, () -> baton.start("first"));
            assertTrue(e.getMessage().contains(run.id()), e.getMessage());
            release.countDown();
            assertEquals(RunStatus.SUCCEEDED, run.await(WAIT).status());
        }
    }
}
