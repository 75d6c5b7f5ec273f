package dev.baton;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.baton.internal.Envelope;
import dev.baton.internal.NativeBridge;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.Parameter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The JNI boundary under misuse (issue 13, item 9): nulls, closed and made-up handles,
 * {@code close()} racing steps and other threads, huge strings, lone UTF-16 surrogates, and step
 * code that throws {@link Error}s. Each gives a typed exception or a failed step, never a JVM
 * crash. Surefire runs this suite under {@code -Xcheck:jni}, and {@code CheckJniReportIT} fails
 * the build if the JVM reported a JNI warning.
 */
@Timeout(120)
class JniMisuseTest {

    private static final Duration WAIT = Duration.ofSeconds(60);
    /** How long a {@code close()} may take while steps run (the engine waits for none of them). */
    private static final Duration CLOSE_LIMIT = Duration.ofSeconds(15);

    private Baton baton;

    @BeforeEach
    void open() {
        baton = Baton.inMemory();
    }

    @AfterEach
    void close() {
        baton.close();
    }

    // ---- nulls --------------------------------------------------------------------------------

    @Test
    void everyPublicMethodReachingTheEngineRefusesANullArgumentByItsName() throws Exception {
        Workflow w = Workflow.named("w").step("a", s -> s.noop()).build();
        baton.register(w);
        Run run = baton.start("w");
        try (Baton virtual = Baton.inMemory(BatonOptions.builder().virtualClock(Instant.EPOCH).build())) {
            List<String> checked = new ArrayList<>();
            // `signals(null)` lists every signal; `Workflow.named(null)` is the core's to report.
            checked.addAll(refusesNulls(baton, Baton.class, Set.of("signals")));
            checked.addAll(refusesNulls(null, Baton.class, Set.of()));
            checked.addAll(refusesNulls(baton.stepTypes(), StepTypes.class, Set.of()));
            checked.addAll(refusesNulls(virtual.virtualClock(), VirtualClock.class, Set.of()));
            checked.addAll(refusesNulls(run, Run.class, Set.of()));
            // `step(id)` only reads the definition: no step has a null id.
            checked.addAll(refusesNulls(w, Workflow.class, Set.of("step")));
            checked.addAll(refusesNulls(null, Workflow.class, Set.of("named")));
            assertTrue(checked.size() > 60, checked::toString);
            assertTrue(checked.contains("Baton.start(workflowId)") && checked.contains("Baton.start(options)"), checked::toString);
        }
    }

    @Test
    void aWorkflowWithoutIdIsADefinitionError() {
        WorkflowDefinitionException e = assertThrows(WorkflowDefinitionException.class,
                () -> Workflow.named(null).step("a", s -> s.noop()).build());
        assertEquals("id", e.errors().get(0).field(), e::getMessage);
    }

    @Test
    void aNullOutputKeyFailsTheStepNamingIt() {
        baton.register(Workflow.named("w").step("a", s -> s.java(ctx -> ctx.output(null, 1))).build());
        StepResult a = baton.start("w").await(WAIT).step("a");
        assertEquals(StepStatus.FAILED, a.status());
        assertEquals("java.lang.NullPointerException: key", a.error().orElseThrow());
    }

    @Test
    void theBridgeSurvivesNullsPassedToItDirectly() {
        long h = baton.handle();
        // Each string argument that must be given, as null: an `internal` error naming it.
        Map<String, Runnable> calls = Map.ofEntries(
                Map.entry("the definition", () -> Envelope.unwrap(NativeBridge.check(null, null, false))),
                Map.entry("the workflow", () -> Envelope.unwrap(NativeBridge.validate(h, null))),
                Map.entry("the workflow ", () -> Envelope.unwrap(NativeBridge.register(h, null))),
                Map.entry("the step type name", () -> Envelope.unwrap(NativeBridge.registerStepType(h, null, "{}"))),
                Map.entry("the step type", () -> Envelope.unwrap(NativeBridge.registerStepType(h, "t", null))),
                Map.entry("the request", () -> Envelope.unwrap(NativeBridge.control(h, null))),
                Map.entry("the workflow id", () -> Envelope.unwrap(NativeBridge.start(h, null, null))),
                Map.entry("the run id", () -> Envelope.unwrap(NativeBridge.await(h, null, 0))),
                Map.entry("the run id ", () -> Envelope.unwrap(NativeBridge.run(h, null))),
                Map.entry("the signal name", () -> Envelope.unwrap(NativeBridge.signal(h, null, null))),
                Map.entry("the workflow id ", () -> Envelope.unwrap(NativeBridge.overrideStep(h, null, "a", null))),
                Map.entry("the step id", () -> Envelope.unwrap(NativeBridge.overrideStep(h, "w", null, null))));
        calls.forEach((what, call) -> {
            BatonException e = assertThrows(BatonException.class, call::run, what);
            assertEquals(BatonException.class, e.getClass(), what);
            assertEquals(what.trim() + " is null", e.getMessage());
        });
        // The hot path's argument: an IllegalStateException, as its other errors.
        IllegalStateException outcome = assertThrows(IllegalStateException.class, () -> NativeBridge.complete(h, 1, null));
        assertEquals("the outcome is null", outcome.getMessage());
        // Optional ones: null means none.
        assertInstanceOf(UnknownWorkflowException.class, assertThrows(BatonException.class,
                () -> Envelope.unwrap(NativeBridge.start(h, "nope", null))));
        assertTrue(Envelope.unwrap(NativeBridge.signals(h, null)).isArray());
        NativeBridge.waiting(h, 12345, null);
        long other = Envelope.unwrap(NativeBridge.open(null, null)).asLong();
        assertTrue(Envelope.unwrap(NativeBridge.close(other)).isNull());
        // And the engine goes on.
        baton.register(Workflow.named("after").step("a", s -> s.java(ctx -> ctx.output("ok", true))).build());
        assertEquals(true, baton.start("after").await(WAIT).orThrow().step("a").output("ok"));
    }

    // ---- closed and stale handles ---------------------------------------------------------------

    @Test
    void afterCloseEveryMethodReachingTheEngineThrowsIllegalState() throws Exception {
        Workflow w = Workflow.named("w").step("a", s -> s.noop()).build();
        baton.register(w);
        Run run = baton.start("w");
        StepTypes types = baton.stepTypes();
        Baton virtual = Baton.inMemory(BatonOptions.builder().virtualClock(Instant.EPOCH).build());
        VirtualClock clock = virtual.virtualClock();
        baton.close();
        virtual.close();

        List<String> called = new ArrayList<>();
        Set<String> notNative = Set.of("close", "isClosed", "toString", "equals", "hashCode", "names");
        called.addAll(throwsWhenClosed(baton, Baton.class, notNative));
        called.addAll(throwsWhenClosed(types, StepTypes.class, notNative));
        called.addAll(throwsWhenClosed(clock, VirtualClock.class, notNative));
        called.addAll(throwsWhenClosed(run, Run.class, Set.of("id", "toString", "workflowId")));
        assertTrue(called.size() > 40, called::toString);
    }

    @Test
    void aStaleOrMadeUpHandleFindsNothing() throws Exception {
        Baton first = Baton.inMemory();
        long stale = first.handle();
        first.close();
        long live = baton.handle();
        assertNotEquals(stale, live, "handles are never reused");
        for (long handle : new long[] {stale, 0, -1, live + 1_000_000, Long.MAX_VALUE, Long.MIN_VALUE}) {
            for (Method m : NativeBridge.class.getMethods()) {
                if (!Modifier.isNative(m.getModifiers()) || m.getParameterCount() == 0
                        || !m.getParameters()[0].getName().equals("handle")) {
                    continue;
                }
                Object[] args = dummies(m, -1);
                args[0] = handle;
                if (Set.of("close", "unsubscribe").contains(m.getName())) {
                    // Nothing to close: done already.
                    assertTrue(Envelope.unwrap((String) m.invoke(null, args)).isNull(), m.getName());
                    continue;
                }
                IllegalStateException e = assertThrows(IllegalStateException.class, () -> {
                    Object answer = unwrapped(m, args);
                    if (answer instanceof String s) {
                        Envelope.unwrap(s);
                    }
                }, m.getName() + " with handle " + handle);
                assertEquals("this Baton instance is closed", e.getMessage(), m.getName());
            }
        }
        // The live engine did not notice.
        baton.register(Workflow.named("w").step("a", s -> s.java(ctx -> ctx.output("ok", 1))).build());
        assertEquals(1L, baton.start("w").await(WAIT).orThrow().step("a").output("ok"));
    }

    // ---- close() while steps run, from many threads, racing start and await ----------------------

    @Test
    void closeWhileJavaAndShellStepsRunReturnsAtOnceAndTheRunResumes(@TempDir Path dir) throws Exception {
        Path gate = dir.resolve("gate");
        Path pid = dir.resolve("shell.pid");
        CountDownLatch javaStarted = new CountDownLatch(1);
        AtomicBoolean interrupted = new AtomicBoolean();
        AtomicBoolean stubborn = new AtomicBoolean();
        // Runs until released, or until interrupted: the gate file exists only for the resumed run.
        Workflow busy = Workflow.named("busy")
                .step("java", s -> s.java(ctx -> {
                    javaStarted.countDown();
                    try {
                        Thread.sleep(60_000);
                    } catch (InterruptedException e) {
                        interrupted.set(ctx.isStopRequested());
                        throw e;
                    }
                }))
                .step("stubborn", s -> s.java(ctx -> {
                    // Ignores the interrupt for a while, then answers: after close, the answer is dropped.
                    long end = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(500);
                    while (System.nanoTime() < end) {
                        Thread.onSpinWait();
                    }
                    stubborn.set(true);
                    ctx.output("late", true);
                }))
                .step("shell", s -> s.shell("test -e '" + gate + "' || { echo $$ > '" + pid + "'; exec sleep 60; }"))
                .build();
        Baton durable = Baton.open(dir.resolve("store"));
        String runId;
        try {
            durable.register(busy);
            runId = durable.start("busy").id();
            assertTrue(javaStarted.await(30, TimeUnit.SECONDS));
            awaitFile(pid);
        } finally {
            long started = System.nanoTime();
            durable.close();
            Duration took = Duration.ofNanos(System.nanoTime() - started);
            assertTrue(took.compareTo(CLOSE_LIMIT) < 0, "close took " + took);
        }
        // The interrupt is delivered by close; the step's thread sees it a moment later.
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!interrupted.get()) {
            assertTrue(System.nanoTime() < deadline, "the running Java step was asked to stop and interrupted");
            pause(Duration.ofMillis(10));
        }
        // The step that ignored the interrupt ends on its own; its answer finds the engine gone.
        while (!stubborn.get()) {
            assertTrue(System.nanoTime() < deadline, "the stubborn step never ended");
            pause(Duration.ofMillis(10));
        }
        long shell = Long.parseLong(Files.readString(pid).trim());
        assertTrue(ProcessHandle.of(shell).map(p -> !p.isAlive()).orElse(true), "the shell step's process outlived close");

        // The next open resumes the run; this time every step finishes.
        Files.createFile(gate);
        try (Baton again = Baton.open(dir.resolve("store"))) {
            again.register(Workflow.named("busy")
                    .step("java", s -> s.java(ctx -> {}))
                    .step("stubborn", s -> s.java(ctx -> {}))
                    .step("shell", s -> s.shell("test -e '" + gate + "' || { echo $$ > '" + pid + "'; exec sleep 60; }"))
                    .build());
            assertEquals(RunStatus.SUCCEEDED, again.await(runId, WAIT).status());
        }
    }

    @Test
    void closeFromManyThreadsAtOnceReturnsInEveryOneOnlyOnceTheStoreIsReleased(@TempDir Path dir) throws Exception {
        int threads = 12;
        for (int round = 0; round < 2; round++) {
            Baton shared = Baton.open(dir);
            CountDownLatch started = new CountDownLatch(1);
            CountDownLatch listening = new CountDownLatch(1);
            // A listener busy with its first event holds the first close() up (it waits for
            // listeners) for longer than an open waits for this process's own lock (0.5 s).
            shared.onEvent(e -> {
                if (listening.getCount() > 0) {
                    listening.countDown();
                    pause(Duration.ofMillis(1500));
                }
            });
            shared.register(Workflow.named("w").step("a", s -> s.java(ctx -> {
                started.countDown();
                Thread.sleep(60_000);
            })).build());
            shared.start("w");
            assertTrue(started.await(30, TimeUnit.SECONDS));
            assertTrue(listening.await(30, TimeUnit.SECONDS));
            CyclicBarrier together = new CyclicBarrier(threads);
            Object reopening = new Object();
            ConcurrentLinkedQueue<Throwable> failures = new ConcurrentLinkedQueue<>();
            List<Thread> closers = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                Thread closer = new Thread(() -> {
                    try {
                        together.await();
                        shared.close();
                        // Returned: the store is free, whichever thread did the closing.
                        synchronized (reopening) {
                            Baton.open(dir).close();
                        }
                    } catch (Throwable e) {
                        failures.add(e);
                    }
                }, "closer-" + t);
                closer.start();
                closers.add(closer);
            }
            for (Thread closer : closers) {
                closer.join(TimeUnit.SECONDS.toMillis(60));
                assertTrue(!closer.isAlive(), closer.getName() + " is stuck");
            }
            assertEquals(List.of(), List.copyOf(failures));
            assertTrue(shared.isClosed());
        }
    }

    @Test
    void closeRacingStartAndAwaitGivesIllegalStateOrAResult() throws Exception {
        baton.register(Workflow.named("w").step("a", s -> s.java(ctx -> ctx.output("ok", true)))
                .step("b", s -> s.dependsOn("a").noop()).build());
        int threads = 8;
        AtomicInteger finished = new AtomicInteger();
        CountDownLatch enough = new CountDownLatch(1);
        ConcurrentLinkedQueue<Throwable> unexpected = new ConcurrentLinkedQueue<>();
        List<Thread> workers = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            Thread worker = new Thread(() -> {
                for (int i = 0; i < 10_000; i++) {
                    try {
                        RunResult r = baton.start("w").await(WAIT);
                        if (r.status() != RunStatus.SUCCEEDED) {
                            unexpected.add(new AssertionError("run " + r));
                        }
                        if (finished.incrementAndGet() >= 200) {
                            enough.countDown();
                        }
                    } catch (IllegalStateException closed) {
                        assertTrue(closed.getMessage().contains("closed"), closed.getMessage());
                        return;
                    } catch (Throwable e) {
                        unexpected.add(e);
                        return;
                    }
                }
            }, "racer-" + t);
            worker.start();
            workers.add(worker);
        }
        assertTrue(enough.await(60, TimeUnit.SECONDS), "runs went on before close");
        CyclicBarrier together = new CyclicBarrier(4);
        List<Thread> closers = new ArrayList<>();
        for (int t = 0; t < 4; t++) {
            Thread closer = new Thread(() -> {
                try {
                    together.await();
                    baton.close();
                } catch (Throwable e) {
                    unexpected.add(e);
                }
            });
            closer.start();
            closers.add(closer);
        }
        for (Thread t : concat(workers, closers)) {
            t.join(TimeUnit.SECONDS.toMillis(60));
            assertTrue(!t.isAlive(), t.getName() + " is stuck");
        }
        assertEquals(List.of(), List.copyOf(unexpected));
    }

    // ---- huge strings ---------------------------------------------------------------------------

    @Test
    void aFiftyMegabyteParamReachesTheStepWhole() {
        String blob = "x".repeat(50 << 20);
        baton.register(Workflow.named("big").param("blob", "")
                .step("measure", s -> s.java(ctx -> ctx.output("length", (long) ctx.param("blob").length())))
                .build());
        RunResult r = baton.start("big", Map.of("blob", blob)).await(WAIT);
        assertEquals(50L << 20, r.orThrow().step("measure").output("length"));
        // The engine is as it was.
        assertEquals(1L, baton.start("big", Map.of("blob", "x")).await(WAIT).step("measure").output("length"));
    }

    @Test
    void aTenMegabyteIdIsADefinitionErrorThatDoesNotRepeatIt() {
        String huge = "w".repeat(10 << 20);
        String tooLong = "`wwwwwwwwwwwwwwwwwwww...` (10485760 characters): at most 255 characters";
        WorkflowDefinitionException workflow = assertThrows(WorkflowDefinitionException.class,
                () -> Workflow.named(huge).step("a", s -> s.noop()).build());
        DefinitionError id = workflow.errors().get(0);
        assertEquals("id", id.field());
        assertEquals("invalid workflow id " + tooLong, id.message());

        WorkflowDefinitionException step = assertThrows(WorkflowDefinitionException.class,
                () -> Workflow.named("w").step(huge, s -> s.noop()).build());
        assertEquals("invalid step id " + tooLong, step.errors().get(0).message());

        assertThrows(UnknownWorkflowException.class, () -> baton.start(huge));
        // An id of the longest length is fine.
        String longest = "w".repeat(255);
        baton.register(Workflow.named(longest).step("a", s -> s.noop()).build());
        assertTrue(baton.start(longest).await(WAIT).succeeded());
    }

    // ---- lone surrogates --------------------------------------------------------------------------

    /** A lone high surrogate, a lone low one, and a pair (U+1F600), which is kept. */
    private static final String LONE = "a\uD800b\uDC00c\uD83D\uDE00";
    /** What the engine makes of it: each lone surrogate is U+FFFD. */
    private static final String REPLACED = "a\uFFFDb\uFFFDc\uD83D\uDE00";

    @Test
    void loneSurrogatesInValuesBecomeReplacementCharacters() {
        baton.register(Workflow.named("text").param("p", "")
                .step("java", s -> s.java(ctx -> {
                    ctx.output("seen", ctx.param("p"));
                    ctx.output("made", LONE);
                    ctx.output("key" + LONE, 1);
                }))
                .step("shell", s -> s.dependsOn("java").shell("printf '%s|%s' ${p} ${java.made}"))
                .step("fail", s -> s.dependsOn("java").java(ctx -> {
                    throw new IllegalStateException("bad " + LONE);
                }))
                .build());
        RunResult r = baton.start("text", Map.of("p", LONE)).await(WAIT);

        assertEquals(REPLACED, r.params().get("p"));
        StepResult java = r.step("java");
        assertEquals(REPLACED, java.output("seen"), "the param as the step read it");
        assertEquals(REPLACED, java.output("made"));
        assertEquals(1L, java.output("key" + REPLACED));
        assertEquals(REPLACED + "|" + REPLACED, r.step("shell").logTail().orElseThrow().trim());
        assertEquals("java.lang.IllegalStateException: bad " + REPLACED, r.step("fail").error().orElseThrow());
        assertTrue(r.step("fail").logTail().orElseThrow().contains("bad " + REPLACED));
    }

    @Test
    void loneSurrogatesInIdsAreDefinitionErrors() {
        WorkflowDefinitionException workflow = assertThrows(WorkflowDefinitionException.class,
                () -> Workflow.named("w" + LONE).step("a", s -> s.noop()).build());
        assertTrue(workflow.errors().get(0).message().startsWith("invalid workflow id `w" + REPLACED + "`"),
                workflow::getMessage);
        WorkflowDefinitionException step = assertThrows(WorkflowDefinitionException.class,
                () -> Workflow.named("w").step("s" + LONE, s -> s.noop()).build());
        assertTrue(step.errors().get(0).message().startsWith("invalid step id `s" + REPLACED + "`"), step::getMessage);
        assertThrows(UnknownWorkflowException.class, () -> baton.start("w" + LONE));
    }

    @Test
    void aSignalWithLoneSurrogatesKeepsItsParamsWithReplacementCharactersAndRefusesSuchAName() {
        baton.signal("s", Map.of("v", LONE));
        SignalInfo signal = baton.signals("s").get(0);
        assertEquals("s", signal.name());
        assertEquals(Map.of("v", REPLACED), signal.params());
        InvalidRequestException refused = assertThrows(InvalidRequestException.class, () -> baton.signal("s" + LONE, Map.of()));
        assertTrue(refused.getMessage().startsWith("invalid signal name `s" + REPLACED + "`"), refused::getMessage);
    }

    // ---- step code that throws Errors -----------------------------------------------------------

    /** An Error of the step's own. */
    static final class CustomError extends Error {
        private static final long serialVersionUID = 1L;

        CustomError(String message) {
            super(message);
        }
    }

    /** An exception that cannot even say what it is. */
    static final class Unprintable extends RuntimeException {
        private static final long serialVersionUID = 1L;

        @Override
        public String getMessage() {
            throw new IllegalStateException("no message for you");
        }
    }

    private static long deeper(long n) {
        return deeper(n + 1) + 1;
    }

    @Test
    void stepsThatThrowErrorsFailNamingThemAndTheEngineGoesOn() {
        AtomicInteger listenerCalls = new AtomicInteger();
        baton.onEvent(e -> {
            if (listenerCalls.incrementAndGet() <= 2) {
                throw new CustomError("a listener that throws");
            }
        });
        baton.stepTypes().register("explode", StepType.of(ctx -> {
            throw new CustomError("from a step type");
        }));
        baton.register(Workflow.named("errors")
                .step("oom", s -> s.java(ctx -> ctx.output("size", new long[1 << 30].length)))
                .step("stack", s -> s.java(ctx -> ctx.output("depth", deeper(0))))
                .step("custom", s -> s.java(ctx -> {
                    throw new CustomError("custom");
                }))
                .step("runtime", s -> s.java(ctx -> {
                    throw new IllegalArgumentException("runtime");
                }))
                .step("unprintable", s -> s.java(ctx -> {
                    throw new Unprintable();
                }))
                .step("typed", s -> s.type("explode"))
                .build());
        baton.register(Workflow.named("healthy").step("a", s -> s.java(ctx -> ctx.output("ok", true))).build());

        for (int round = 0; round < 3; round++) {
            RunResult r = baton.start("errors").await(WAIT);
            assertEquals(RunStatus.FAILED, r.status());
            Map<String, String> errors = Map.of(
                    "oom", "java.lang.OutOfMemoryError: Java heap space",
                    "stack", "java.lang.StackOverflowError",
                    "custom", CustomError.class.getName() + ": custom",
                    "runtime", "java.lang.IllegalArgumentException: runtime",
                    "unprintable", Unprintable.class.getName() + " (which could not be described: java.lang.IllegalStateException)",
                    "typed", CustomError.class.getName() + ": from a step type");
            errors.forEach((step, error) -> {
                assertEquals(StepStatus.FAILED, r.step(step).status(), step);
                assertEquals(error, r.step(step).error().orElseThrow(), step);
            });
            assertTrue(r.step("stack").logTail().orElseThrow().contains("at dev.baton.JniMisuseTest.deeper"));
            assertTrue(baton.start("healthy").await(WAIT).succeeded(), "later runs work");
        }
        assertTrue(listenerCalls.get() > 2, "a listener that throws goes on receiving");
    }

    // ---- helpers ----------------------------------------------------------------------------------

    /**
     * Calls each public method of {@code type} declared there (static ones if {@code target} is
     * null, else instance ones) once per reference parameter, that one null and the others
     * plausible: each must throw a NullPointerException with the parameter's name. Returns
     * {@code Type.method(param)} for each.
     */
    private static List<String> refusesNulls(Object target, Class<?> type, Set<String> nullable) throws Exception {
        List<String> checked = new ArrayList<>();
        for (Method m : type.getDeclaredMethods()) {
            if (!Modifier.isPublic(m.getModifiers()) || Modifier.isStatic(m.getModifiers()) != (target == null)
                    || nullable.contains(m.getName()) || m.isSynthetic()) {
                continue;
            }
            Parameter[] params = m.getParameters();
            for (int i = 0; i < params.length; i++) {
                if (params[i].getType().isPrimitive()) {
                    continue;
                }
                String what = type.getSimpleName() + "." + m.getName() + "(" + params[i].getName() + ")";
                Object[] args = dummies(m, i);
                try {
                    m.invoke(target, args);
                    fail(what + " took null");
                } catch (InvocationTargetException e) {
                    Throwable cause = e.getCause();
                    assertEquals(NullPointerException.class, cause.getClass(), () -> what + ": " + cause);
                    assertEquals(params[i].getName(), cause.getMessage(), what);
                }
                checked.add(what);
            }
        }
        return checked;
    }

    /** Calls each public instance method of {@code type} not in {@code except}: each must throw IllegalStateException. */
    private static List<String> throwsWhenClosed(Object target, Class<?> type, Set<String> except) throws Exception {
        List<String> called = new ArrayList<>();
        for (Method m : type.getDeclaredMethods()) {
            if (!Modifier.isPublic(m.getModifiers()) || Modifier.isStatic(m.getModifiers()) || except.contains(m.getName())) {
                continue;
            }
            String what = type.getSimpleName() + "." + m.getName() + Arrays.toString(m.getParameterTypes());
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> unwrapped(target, m, dummies(m, -1)), what);
            assertTrue(e.getMessage().contains("closed"), what + ": " + e.getMessage());
            called.add(what);
        }
        return called;
    }

    private static Object unwrapped(Method m, Object[] args) throws Throwable {
        return unwrapped(null, m, args);
    }

    /** Invokes {@code m}, throwing what it threw. */
    private static Object unwrapped(Object target, Method m, Object[] args) throws Throwable {
        try {
            return m.invoke(target, args);
        } catch (InvocationTargetException e) {
            throw e.getCause();
        }
    }

    /** Plausible arguments for {@code m}, with null at {@code nullAt}. */
    private static Object[] dummies(Method m, int nullAt) {
        Class<?>[] types = m.getParameterTypes();
        Object[] args = new Object[types.length];
        for (int i = 0; i < types.length; i++) {
            args[i] = i == nullAt ? null : dummy(types[i]);
        }
        return args;
    }

    private static Object dummy(Class<?> type) {
        if (type == String.class) {
            return "x";
        } else if (type == int.class) {
            return 1;
        } else if (type == long.class) {
            return 0L;
        } else if (type == boolean.class) {
            return false;
        } else if (type == Map.class) {
            return Map.of();
        } else if (type == Duration.class) {
            return Duration.ofMillis(1);
        } else if (type == Instant.class) {
            return Instant.EPOCH;
        } else if (type == ZoneId.class) {
            return ZoneId.of("UTC");
        } else if (type == Path.class) {
            return Path.of("unused");
        } else if (type == Workflow.class) {
            return Workflow.named("x").step("a", s -> s.noop()).build();
        } else if (type == JavaStep.class) {
            return (JavaStep) ctx -> {};
        } else if (type == Consumer.class) {
            return (Consumer<?>) e -> {};
        } else if (type == StepType.class) {
            return StepType.of(ctx -> {});
        } else if (type == StartOptions.class) {
            return StartOptions.defaults();
        } else if (type == BatonOptions.class) {
            return BatonOptions.defaults();
        }
        throw new AssertionError("no dummy value for " + type + ": add one");
    }

    /** Waits (bounded) for a file a step writes: the step has started. */
    private static void awaitFile(Path file) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!Files.exists(file) || file.toFile().length() == 0) {
            assertTrue(System.nanoTime() < deadline, "no " + file);
            Thread.sleep(10);
        }
    }

    /** Holds the calling thread for {@code time}, as slow user code would. */
    private static void pause(Duration time) {
        try {
            new CountDownLatch(1).await(time.toMillis(), TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static List<Thread> concat(List<Thread> a, List<Thread> b) {
        List<Thread> all = new ArrayList<>(a);
        all.addAll(b);
        return all;
    }
}
