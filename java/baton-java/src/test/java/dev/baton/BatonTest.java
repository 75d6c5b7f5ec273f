package dev.baton;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The engine in memory, driven from Java: the example and each feature around it. */
@Timeout(60)
class BatonTest {

    private static final Duration WAIT = Duration.ofSeconds(30);

    private Baton baton;

    @BeforeEach
    void open() {
        baton = Baton.inMemory();
    }

    @AfterEach
    void close() {
        baton.close();
    }

    private static long countRows(String date) {
        return date.equals("2026-11-25") ? 42L : -1L;
    }

    @Test
    void theReadmeExampleRunsEndToEnd() {
        List<String> transformedWith = new CopyOnWriteArrayList<>();
        Workflow etl = Workflow.named("nightly-etl")
                .param("date", "2026-11-24")
                .step("extract", s -> s.java(ctx -> {
                    long rows = countRows(ctx.param("date"));
                    ctx.output("rows", rows);
                }).retry(Retry.exponential(3, Duration.ofSeconds(1))).timeout(Duration.ofMinutes(5)))
                .step("transform", s -> s.dependsOn("extract").java(ctx -> transformedWith.add(ctx.idempotencyKey())))
                .step("load", s -> s.dependsOn("transform").shell("echo load ${date}"))
                .build();
        baton.register(etl);
        Run run = baton.start("nightly-etl", Map.of("date", "2026-11-25"));
        RunResult result = run.await(Duration.ofMinutes(10));

        assertEquals(RunStatus.SUCCEEDED, result.status(), result::toString);
        assertEquals(42L, result.step("extract").output("rows"));
        assertEquals(List.of(run.id() + "/transform/1"), transformedWith);
        assertEquals("load 2026-11-25", result.step("load").logTail().orElseThrow().trim());
        assertEquals(Map.of("date", "2026-11-25"), result.params());
        assertEquals(run.id(), result.id());
        assertTrue(result.succeeded());
        assertEquals(3, result.steps().size());
        String table = result.toString();
        assertTrue(table.contains("extract") && table.contains("SUCCEEDED") && table.contains("{\"rows\":42}"), table);
    }

    @Test
    void shellAndJavaStepsPassOutputsBothWays() {
        baton.register(Workflow.named("mixed")
                .step("count", s -> s.shell("echo rows=7 >> \"$BATON_OUTPUT\""))
                .step("double", s -> s.dependsOn("count").java(ctx ->
                        ctx.output("rows", (Long) ctx.input("count", "rows") * 2)))
                .step("print", s -> s.dependsOn("double").shell("echo doubled ${double.rows}"))
                .build());

        RunResult result = baton.start("mixed").await(WAIT).orThrow();

        assertEquals(7L, result.step("count").output("rows"));
        assertEquals(14L, result.step("double").output("rows"));
        assertEquals("doubled 14", result.step("print").logTail().orElseThrow().trim());
    }

    @Test
    void outputsKeepTheirJsonTypes() {
        baton.register(Workflow.named("types").step("out", s -> s.java(ctx -> {
            ctx.output("long", 1);
            ctx.output("double", 2.5);
            ctx.output("bool", true);
            ctx.output("text", "hi");
            ctx.output("list", List.of(1, "a"));
            ctx.output("map", Map.of("k", List.of(false)));
        })).build());

        StepResult out = baton.start("types").await(WAIT).orThrow().step("out");

        assertEquals(1L, out.output("long"));
        assertEquals(2.5, out.output("double"));
        assertEquals(true, out.output("bool"));
        assertEquals("hi", out.output("text"));
        assertEquals(List.of(1L, "a"), out.output("list"));
        assertEquals(Map.of("k", List.of(false)), out.output("map"));
        assertNull(out.output("absent"));
        assertEquals(List.of("long", "double", "bool", "text", "list", "map"), new ArrayList<>(out.outputs().keySet()));
    }

    @Test
    void aJavaExceptionFailsTheStepWithClassMessageAndStackTrace() {
        baton.register(Workflow.named("boom")
                .step("explode", s -> s.java(ctx -> {
                    throw new IllegalStateException("boom");
                }))
                .step("after", s -> s.dependsOn("explode").noop())
                .build());

        RunResult result = baton.start("boom").await(WAIT);

        assertEquals(RunStatus.FAILED, result.status());
        StepResult explode = result.step("explode");
        assertEquals(StepStatus.FAILED, explode.status());
        assertEquals("java.lang.IllegalStateException: boom", explode.error().orElseThrow());
        String trace = explode.logTail().orElseThrow();
        assertTrue(trace.startsWith("java.lang.IllegalStateException: boom"), trace);
        assertTrue(trace.contains("at dev.baton.BatonTest.lambda$"), trace);
        assertEquals(StepStatus.SKIPPED, result.step("after").status());

        RunFailedException failed = assertThrows(RunFailedException.class, result::orThrow);
        assertTrue(failed.getMessage().contains("step `explode` failed: java.lang.IllegalStateException: boom"),
                failed.getMessage());
        assertEquals(result, failed.result());
    }

    @Test
    void runParamsOverrideDefaultsAndStepParamsWin() {
        baton.register(Workflow.named("params")
                .param("n", 1)
                .param("flag", false)
                .param("who", "world")
                .step("see", s -> s.param("who", "step ${who}").java(ctx -> {
                    ctx.output("n", ctx.paramValue("n"));
                    ctx.output("flag", ctx.paramValue("flag"));
                    ctx.output("who", ctx.param("who"));
                }))
                .build());

        StepResult defaults = baton.start("params").await(WAIT).orThrow().step("see");
        StepResult overridden = baton.start("params", Map.of("n", 5, "flag", "true", "who", "you"))
                .await(WAIT).orThrow().step("see");

        assertEquals(Map.of("n", 1L, "flag", false, "who", "step world"), defaults.outputs());
        assertEquals(Map.of("n", 5L, "flag", true, "who", "step you"), overridden.outputs());
        InvalidParamException unknown = assertThrows(InvalidParamException.class,
                () -> baton.start("params", Map.of("nn", 2)));
        assertTrue(unknown.getMessage().contains("did you mean `n`"), unknown.getMessage());
        assertThrows(InvalidParamException.class, () -> baton.start("params", Map.of("n", "many")));
        // Checked against the declared type (that of the default), never changed silently.
        InvalidParamException fraction = assertThrows(InvalidParamException.class,
                () -> baton.start("params", Map.of("n", 2.5)));
        assertTrue(fraction.getMessage().contains("parameter `n`: expects an integer (default 1), got a float (2.5)"),
                fraction.getMessage());
        InvalidParamException number = assertThrows(InvalidParamException.class,
                () -> baton.start("params", Map.of("who", 7)));
        assertTrue(number.getMessage().contains("parameter `who`: expects a string"), number.getMessage());
        assertThrows(UnknownWorkflowException.class, () -> baton.start("nope"));
    }

    @Test
    void aFailingJavaStepIsRetried() {
        List<Integer> attempts = new CopyOnWriteArrayList<>();
        baton.register(Workflow.named("flaky").step("flaky", s -> s.retry(Retry.fixed(3, Duration.ofMillis(10)))
                .java(ctx -> {
                    attempts.add(ctx.attempt());
                    if (ctx.attempt() < 3) {
                        throw new java.io.IOException("attempt " + ctx.attempt());
                    }
                    ctx.output("attempt", ctx.attempt());
                }))
                .build());

        StepResult flaky = baton.start("flaky").await(WAIT).orThrow().step("flaky");

        assertEquals(List.of(1, 2, 3), attempts);
        assertEquals(3, flaky.attempts());
        assertEquals(3L, flaky.output("attempt"));
    }

    @Test
    void definitionErrorsNameTheStepAtBuildAndAtRegister() {
        WorkflowDefinitionException atBuild = assertThrows(WorkflowDefinitionException.class,
                () -> Workflow.named("bad").step("kindless", s -> {}).build());
        assertEquals("kindless", atBuild.errors().get(0).stepId());

        // The core checks the graph at build() now: unknown dependencies and cycles.
        WorkflowDefinitionException graph = assertThrows(WorkflowDefinitionException.class, () -> Workflow.named("bad")
                .step("a", s -> s.dependsOn("b").noop())
                .step("b", s -> s.dependsOn("a").noop())
                .step("c", s -> s.dependsOn("nowhere").java(ctx -> {}))
                .build());
        assertEquals("bad", graph.workflowId());
        assertTrue(graph.errors().stream().anyMatch(e -> "c".equals(e.stepId())
                && "depends_on.0".equals(e.field()) && e.message().contains("nowhere")), graph::getMessage);
        assertTrue(graph.errors().stream().anyMatch(e -> e.message().contains("cycle")), graph::getMessage);

        // What only an engine knows, its step types, register and validate check.
        Workflow bad = Workflow.named("bad").step("a", s -> s.type("hive_sql")).build();
        WorkflowDefinitionException atRegister = assertThrows(WorkflowDefinitionException.class, () -> baton.register(bad));
        assertEquals("bad", atRegister.workflowId());
        assertTrue(atRegister.errors().stream().anyMatch(e -> "a".equals(e.stepId())
                && "type".equals(e.field()) && e.message().contains("hive_sql")), atRegister::getMessage);
        assertThrows(WorkflowDefinitionException.class, () -> baton.validate(bad));
        assertThrows(UnknownWorkflowException.class, () -> baton.start("bad"));

        Workflow good = Workflow.named("good").step("a", s -> s.noop()).build();
        baton.validate(good); // checks, does not register
        assertThrows(UnknownWorkflowException.class, () -> baton.start("good"));
    }

    @Test
    void manyThreadsStartRunsAtOnce() throws Exception {
        baton.register(Workflow.named("fan")
                .step("a", s -> s.java(ctx -> ctx.output("n", ctx.paramValue("n"))))
                .step("b", s -> s.dependsOn("a").java(ctx -> ctx.output("n", (Long) ctx.input("a", "n") + 1)))
                .step("c", s -> s.dependsOn("a").noop())
                .param("n", 0)
                .build());
        int threads = 8;
        int perThread = 25;
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        try {
            List<Future<List<Long>>> futures = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                int base = t * perThread;
                futures.add(pool.submit(() -> {
                    List<Run> runs = new ArrayList<>();
                    for (int i = 0; i < perThread; i++) {
                        runs.add(baton.start("fan", Map.of("n", base + i)));
                    }
                    List<Long> results = new ArrayList<>();
                    for (Run run : runs) {
                        results.add((Long) run.await(WAIT).orThrow().step("b").output("n"));
                    }
                    return results;
                }));
            }
            Set<Long> seen = ConcurrentHashMap.newKeySet();
            for (Future<List<Long>> f : futures) {
                seen.addAll(f.get(60, TimeUnit.SECONDS));
            }
            assertEquals(threads * perThread, seen.size());
            assertEquals(threads * perThread, baton.runs("fan").size());
            assertTrue(baton.runs("fan").stream().allMatch(RunInfo::succeeded));
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void aTimedOutStepIsAskedToStopAndInterrupted() throws Exception {
        AtomicBoolean interrupted = new AtomicBoolean();
        AtomicBoolean stopRequested = new AtomicBoolean();
        CountDownLatch ended = new CountDownLatch(1);
        baton.register(Workflow.named("slow").step("slow", s -> s.timeout(Duration.ofMillis(200)).java(ctx -> {
            try {
                Thread.sleep(30_000);
            } catch (InterruptedException e) {
                interrupted.set(true);
                stopRequested.set(ctx.isStopRequested());
            } finally {
                ended.countDown();
            }
        })).build());

        RunResult result = baton.start("slow").await(WAIT);

        assertEquals(RunStatus.FAILED, result.status());
        assertTrue(result.step("slow").error().orElseThrow().contains("timed out"), result::toString);
        assertTrue(ended.await(10, TimeUnit.SECONDS));
        assertTrue(interrupted.get());
        assertTrue(stopRequested.get());
    }

    @Test
    void awaitGivesUpAfterItsTimeoutAndTheRunGoesOn() {
        CountDownLatch release = new CountDownLatch(1);
        baton.register(Workflow.named("held").step("hold", s -> s.java(ctx -> release.await())).build());
        Run run = baton.start("held");

        RunTimeoutException timeout = assertThrows(RunTimeoutException.class, () -> run.await(Duration.ofMillis(300)));
        assertTrue(timeout.getMessage().contains(run.id()));
        assertEquals(RunStatus.RUNNING, run.result().status());
        assertEquals(StepStatus.RUNNING, baton.run(run.id()).step("hold").status());

        release.countDown();
        assertEquals(RunStatus.SUCCEEDED, run.await().status());
    }

    @Test
    void stepsRunOnTheExecutorGiven() {
        ExecutorService pool = Executors.newFixedThreadPool(2, r -> new Thread(r, "my-pool"));
        try (Baton own = Baton.inMemory(BatonOptions.builder().executor(pool).build())) {
            own.register(Workflow.named("where").step("t", s -> s.java(ctx ->
                    ctx.output("thread", Thread.currentThread().getName()))).build());
            assertEquals("my-pool", own.start("where").await(WAIT).orThrow().step("t").output("thread"));
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void runsAndRunInspectTheStore() {
        baton.register(Workflow.named("one").step("a", s -> s.noop()).build());
        baton.register(Workflow.named("two").step("a", s -> s.noop()).build());
        String first = baton.start("one").await(WAIT).id();
        String second = baton.start("two").await(WAIT).id();

        List<RunInfo> runs = baton.runs();
        assertEquals(List.of(first, second), runs.stream().map(RunInfo::id).toList());
        assertEquals(List.of(second), baton.runs("two").stream().map(RunInfo::id).toList());
        RunInfo info = runs.get(0);
        assertEquals("one", info.workflowId());
        assertEquals(RunStatus.SUCCEEDED, info.status());
        assertEquals(1, info.stepCount());
        assertEquals(Map.of(StepStatus.SUCCEEDED, 1), info.counts());
        assertTrue(info.ended().isPresent());
        assertNotEquals("", info.definition());
        assertEquals(StepStatus.SUCCEEDED, baton.run(first).step("a").status());
        assertThrows(UnknownRunException.class, () -> baton.run("no-such-run"));
        assertThrows(IllegalArgumentException.class, () -> baton.run(first).step("b"));
    }

    @Test
    void registeringAgainReplacesTheCode() {
        baton.register(Workflow.named("v").step("a", s -> s.java(ctx -> ctx.output("v", 1))).build());
        assertEquals(1L, baton.start("v").await(WAIT).orThrow().step("a").output("v"));
        baton.register(Workflow.named("v").step("a", s -> s.java(ctx -> ctx.output("v", 2))).build());
        assertEquals(2L, baton.start("v").await(WAIT).orThrow().step("a").output("v"));
    }

    @Test
    void afterCloseEveryMethodThrows() {
        Workflow w = Workflow.named("w").step("a", s -> s.noop()).build();
        baton.register(w);
        Run run = baton.start("w");
        baton.close();
        baton.close(); // idempotent

        assertTrue(baton.isClosed());
        List<Runnable> calls = List.of(
                () -> baton.register(w),
                () -> baton.validate(w),
                () -> baton.start("w"),
                () -> baton.run(run.id()),
                baton::runs,
                baton::recover,
                baton::stepTypes,
                () -> run.await(WAIT),
                run::await);
        for (Runnable call : calls) {
            IllegalStateException e = assertThrows(IllegalStateException.class, call::run);
            assertTrue(e.getMessage().contains("closed"), e.getMessage());
        }
    }

    @Test
    void closeEndsTheThreadsItStarted() throws Exception {
        Set<Thread> before = Set.copyOf(Thread.getAllStackTraces().keySet());
        Baton other = Baton.inMemory();
        other.register(Workflow.named("w").step("a", s -> s.java(ctx -> {})).build());
        other.start("w").await(WAIT).orThrow();
        List<Thread> started = new ArrayList<>();
        for (Thread t : Thread.getAllStackTraces().keySet()) {
            if (!before.contains(t) && t.getName().startsWith("baton-")) {
                assertTrue(t.isDaemon(), t.getName() + " is not a daemon");
                started.add(t);
            }
        }
        assertTrue(started.stream().anyMatch(t -> t.getName().startsWith("baton-dispatch")), started::toString);
        assertTrue(started.stream().anyMatch(t -> t.getName().startsWith("baton-step")), started::toString);

        other.close();

        for (Thread t : started) {
            t.join(10_000);
            assertFalse(t.isAlive(), t.getName() + " outlived close");
        }
    }
}
