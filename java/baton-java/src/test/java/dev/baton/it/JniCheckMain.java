package dev.baton.it;

import dev.baton.Baton;
import dev.baton.BatonOptions;
import dev.baton.InvalidParamException;
import dev.baton.InvalidRequestException;
import dev.baton.Retry;
import dev.baton.RunResult;
import dev.baton.RunStatus;
import dev.baton.RunTimeoutException;
import dev.baton.StepStatus;
import dev.baton.StepType;
import dev.baton.UnknownRunException;
import dev.baton.Workflow;
import dev.baton.WorkflowDefinitionException;
import dev.baton.internal.NativeBridge;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CountDownLatch;

/**
 * Every native entry point and error path once, for {@code -Xcheck:jni} (see JniCheckIT):
 * prints {@code OK} at the end, or dies with a stack trace.
 */
public final class JniCheckMain {

    private static final Duration WAIT = Duration.ofSeconds(30);

    public static void main(String[] args) throws Exception {
        try (Baton baton = Baton.inMemory()) {
            baton.stepTypes().register("sql", StepType.of(ctx -> ctx.output("q", ctx.param("query"))).param("query")
                    .param("cluster", "default"));
            baton.register(Workflow.named("all")
                    .param("n", 1)
                    .step("java", s -> s.java(ctx -> ctx.output("n", ctx.paramValue("n"))))
                    .step("shell", s -> s.dependsOn("java").shell("echo n=${java.n} >> \"$BATON_OUTPUT\""))
                    .step("sql", s -> s.dependsOn("shell").type("sql").param("query", "select ${shell.n}"))
                    .step("flaky", s -> s.retry(Retry.fixed(2, Duration.ofMillis(5))).java(ctx -> {
                        if (ctx.attempt() == 1) {
                            throw new IllegalStateException("first attempt");
                        }
                    }))
                    .step("slow", s -> s.timeout(Duration.ofMillis(100)).java(ctx -> Thread.sleep(10_000)))
                    .build());
            for (int i = 0; i < 50; i++) {
                RunResult r = baton.start("all", Map.of("n", i)).await(WAIT);
                check(r.status() == RunStatus.FAILED && r.step("slow").status() == StepStatus.FAILED, r);
                check(("select " + i).equals(r.step("sql").output("q")), r);
                check(r.step("flaky").status() == StepStatus.SUCCEEDED, r);
            }
            expect(WorkflowDefinitionException.class, () -> baton.register(
                    Workflow.named("bad").step("a", s -> s.dependsOn("zz").type("nope")).build()));
            expect(WorkflowDefinitionException.class, () -> Workflow.fromYaml("id: x\nsteps: [", "bad.yaml"));
            expect(WorkflowDefinitionException.class, () -> Workflow.fromJson("{\"id\": \"x\", \"steps\": []}"));
            expect(WorkflowDefinitionException.class, () -> baton.stepTypes().register("foreach", StepType.of(ctx -> {})));
            check(NativeBridge.schema().startsWith("{\"ok\":{\"model\":"), "schema"); // the jar's Jackson is shaded
            expect(InvalidParamException.class, () -> baton.start("all", Map.of("m", 1)));
            expect(UnknownRunException.class, () -> baton.run("nope"));
            check(baton.runs().size() == 50, baton.runs().size());

            CountDownLatch release = new CountDownLatch(1);
            baton.register(Workflow.named("held").step("h", s -> s.java(ctx -> release.await())).build());
            var held = baton.start("held");
            expect(RunTimeoutException.class, () -> held.await(Duration.ofMillis(50)));
            release.countDown();
            check(held.await(WAIT).succeeded(), held);

            // The hot paths' own errors: an unknown handle throws, stale tokens are ignored.
            expect(IllegalStateException.class, () -> NativeBridge.nextTasks(-1, 1, 0));
            expect(IllegalStateException.class, () -> NativeBridge.complete(-1, 1, "{\"outputs\": {}}"));
            check(NativeBridge.nextLogs(10, 0) != null, "logs");
        }

        // A persistent store: a run left unfinished, resumed in a second Baton with its code parked first.
        Path dir = Files.createTempDirectory("baton-jnicheck");
        // Open's own error path: an engine option the core refuses.
        expect(InvalidRequestException.class, () -> Baton.open(dir, BatonOptions.builder().engineId("not an id").build()));
        CountDownLatch started = new CountDownLatch(1);
        String runId;
        try (Baton baton = Baton.open(dir)) {
            baton.register(Workflow.named("durable").step("b", s -> s.java(ctx -> {
                started.countDown();
                Thread.sleep(60_000);
            })).build());
            runId = baton.start("durable").id();
            started.await();
        }
        Baton baton = Baton.open(dir);
        try {
            long deadline = System.nanoTime() + WAIT.toNanos();
            while (baton.run(runId).step("b").status() != StepStatus.WAITING && System.nanoTime() < deadline) {
                Thread.sleep(20);
            }
            check(baton.run(runId).step("b").status() == StepStatus.WAITING, baton.run(runId));
            baton.register(Workflow.named("durable").step("b", s -> s.java(ctx -> ctx.output("done", true))).build());
            while (!baton.run(runId).status().isFinal() && System.nanoTime() < deadline) {
                Thread.sleep(20);
            }
            check(baton.run(runId).succeeded(), baton.run(runId));
        } finally {
            baton.close();
        }
        expect(IllegalStateException.class, baton::runs);
        System.out.println("OK");
    }

    private static void check(boolean ok, Object what) {
        if (!ok) {
            throw new AssertionError("unexpected: " + what);
        }
    }

    private static void expect(Class<? extends Throwable> type, ThrowingRunnable call) {
        try {
            call.run();
        } catch (Throwable t) {
            if (type.isInstance(t)) {
                return;
            }
            throw new AssertionError("expected " + type.getName() + ", got " + t, t);
        }
        throw new AssertionError("expected " + type.getName() + ", got nothing");
    }

    @FunctionalInterface
    private interface ThrowingRunnable {
        void run() throws Exception;
    }
}
