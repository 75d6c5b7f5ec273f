package dev.baton;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Durable Java steps: a run left unfinished continues in the next Baton on the same store. */
@Timeout(60)
class ResumeTest {

    private static final Duration WAIT = Duration.ofSeconds(30);

    @TempDir
    Path store;

    private static Workflow workflow(JavaStep b) {
        return Workflow.named("durable")
                .step("a", s -> s.java(ctx -> ctx.output("x", 1)))
                .step("b", s -> s.dependsOn("a").java(b))
                .step("c", s -> s.dependsOn("b").shell("echo done"))
                .build();
    }

    @Test
    void aRunLeftUnfinishedByCloseCompletesAfterReopenAndRegister() throws Exception {
        CountDownLatch started = new CountDownLatch(1);
        AtomicBoolean stoppedAtClose = new AtomicBoolean();
        List<String> keys = new CopyOnWriteArrayList<>();
        String runId;
        try (Baton baton = Baton.open(store)) {
            baton.register(workflow(ctx -> {
                keys.add(ctx.idempotencyKey());
                started.countDown();
                try {
                    Thread.sleep(60_000);
                } catch (InterruptedException e) {
                    stoppedAtClose.set(ctx.isStopRequested());
                    throw e;
                }
            }));
            runId = baton.start("durable").id();
            assertTrue(started.await(20, TimeUnit.SECONDS));
            assertEquals(StepStatus.RUNNING, baton.run(runId).step("b").status());
        }
        assertTrue(stoppedAtClose.get(), "the step's code was asked to stop at close");

        try (Baton baton = Baton.open(store)) {
            // Resumed on open, but this JVM has no code for `b` yet: the step waits, saying why.
            RunResult waiting = eventually(() -> baton.run(runId), r -> r.step("b").status() == StepStatus.WAITING);
            assertEquals(RunStatus.RUNNING, waiting.status());
            assertEquals("Java code for step `b` of workflow `durable` is not registered in this JVM: "
                    + "call baton.register(...) with the workflow", waiting.step("b").waitingFor().orElseThrow());
            assertTrue(waiting.toString().contains("waiting for: Java code for step `b`"), waiting::toString);

            baton.register(workflow(ctx -> {
                keys.add(ctx.idempotencyKey());
                ctx.output("from", ctx.input("a", "x"));
            }));
            RunResult done = baton.run(runId);
            done = eventually(() -> baton.run(runId), r -> r.status().isFinal());

            assertEquals(RunStatus.SUCCEEDED, done.status(), done::toString);
            assertEquals(1L, done.step("b").output("from"));
            assertEquals(StepStatus.SUCCEEDED, done.step("c").status());
            assertTrue(done.step("b").waitingFor().isEmpty());
        }
        // The relaunched attempt has the key of the interrupted one.
        assertEquals(List.of(runId + "/b/1", runId + "/b/1"), keys);
    }

    @Test
    void aRunOfAHostTypeResumesOnceTheTypeIsRegistered() throws Exception {
        CountDownLatch started = new CountDownLatch(1);
        String runId;
        try (Baton baton = Baton.open(store)) {
            baton.stepTypes().register("slow_sql", StepType.of(ctx -> {
                started.countDown();
                Thread.sleep(60_000);
            }).param("query"));
            baton.register(Workflow.named("sql").step("q", s -> s.type("slow_sql").param("query", "select 1")).build());
            runId = baton.start("sql").id();
            assertTrue(started.await(20, TimeUnit.SECONDS));
        }
        try (Baton baton = Baton.open(store)) {
            // Not resumed by open: the type is unknown until registered.
            Map<String, String> recovered = baton.recover();
            assertNotNull(recovered.get(runId), recovered::toString);
            assertTrue(recovered.get(runId).contains("slow_sql"), recovered::toString);

            baton.stepTypes().register("slow_sql", StepType.of(ctx -> ctx.output("q", ctx.param("query"))).param("query"));
            RunResult done = eventually(() -> baton.run(runId), r -> r.status().isFinal());

            assertEquals(RunStatus.SUCCEEDED, done.status(), done::toString);
            assertEquals("select 1", done.step("q").output("q"));
            assertNull(baton.recover().get(runId));
        }
    }

    @Test
    void aStoreHeldByAnOpenBatonCannotBeOpenedAgain() {
        try (Baton baton = Baton.open(store)) {
            StoreException e = assertThrows(StoreException.class, () -> Baton.open(store));
            assertTrue(e.getMessage().contains("already open in this process"), e.getMessage());
            assertEquals(List.of(), baton.runs()); // the first is unharmed
        }
        try (Baton again = Baton.open(store, BatonOptions.builder().build())) {
            assertEquals(List.of(), again.runs());
        }
    }

    @Test
    void runsSurviveCloseAndEitherStoreEngine() {
        for (String engine : List.of("redb", "sled")) {
            Path dir = store.resolve(engine);
            BatonOptions options = BatonOptions.builder().storeEngine(engine).build();
            String runId;
            try (Baton baton = Baton.open(dir, options)) {
                baton.register(workflow(ctx -> ctx.output("engine", engine)));
                runId = baton.start("durable").await(WAIT).orThrow().id();
            }
            try (Baton baton = Baton.open(dir, options)) {
                assertEquals(engine, baton.run(runId).step("b").output("engine"));
            }
        }
    }

    static <T> T eventually(Supplier<T> read, java.util.function.Predicate<T> done) throws InterruptedException {
        long deadline = System.nanoTime() + WAIT.toNanos();
        T value = read.get();
        while (!done.test(value)) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("not reached in " + WAIT + ": " + value);
            }
            Thread.sleep(20);
            value = read.get();
        }
        return value;
    }
}
