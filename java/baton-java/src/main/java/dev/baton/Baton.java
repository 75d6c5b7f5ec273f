package dev.baton;

import com.fasterxml.jackson.databind.JsonNode;
import dev.baton.internal.Dispatcher;
import dev.baton.internal.Envelope;
import dev.baton.internal.JsonCodec;
import dev.baton.internal.JsonValues;
import dev.baton.internal.Logs;
import dev.baton.internal.NativeBridge;
import dev.baton.internal.NativeLoader;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.logging.Level;

/**
 * Baton's engine, in this process: it keeps workflows and runs in a store, schedules their
 * steps, and runs Java steps on an executor. Open one per store, share it between threads, and
 * close it (it holds the store and native resources).
 *
 * <pre>{@code
 * try (Baton baton = Baton.open(Path.of("/var/lib/myservice/baton"))) {  // Baton.inMemory() for tests
 *     Workflow etl = Workflow.named("nightly-etl")
 *         .param("date", "2026-11-24")
 *         .step("extract", s -> s.java(ctx -> ctx.output("rows", countRows(ctx.param("date")))))
 *         .step("load", s -> s.dependsOn("extract").shell("echo load ${date}"))
 *         .build();
 *     baton.register(etl);
 *     RunResult result = baton.start("nightly-etl", Map.of("date", "2026-11-25"))
 *         .await(Duration.ofMinutes(10));
 *     result.step("extract").output("rows");   // 42L
 * }
 * }</pre>
 *
 * <p>Durable: runs left unfinished by a process that died (or closed) resume when the store is
 * opened again. Their Java steps run once this JVM has their code: register the same
 * workflows ({@link #register}) and step types ({@link #stepTypes()}); until then such a step
 * shows {@link StepStatus#WAITING} with the reason. A step may run again after a crash, with
 * the same {@link StepContext#idempotencyKey()}.
 *
 * <p>Threads: a daemon thread ({@code baton-dispatch}) hands steps to the executor, and the
 * JVM can exit without {@link #close()}: a shutdown hook closes what is still open. Every
 * method is thread safe; after {@link #close()} every method but {@code close} throws
 * {@link IllegalStateException}.
 */
public final class Baton implements AutoCloseable {

    private static final AtomicInteger INSTANCES = new AtomicInteger();
    /** Open instances, for the shutdown hook; guarded by itself. */
    private static final Set<Baton> OPEN = new LinkedHashSet<>();
    private static Thread shutdownHook;

    private final long handle;
    private final String description;
    private final Dispatcher dispatcher;
    private final ExecutorService ownExecutor;
    private final AtomicBoolean closed = new AtomicBoolean();
    private final StepTypes stepTypes = new HostStepTypes();
    /** The engine's clock when it runs on virtual time, else null. */
    private final VirtualClock virtualClock;

    private Baton(long handle, String description, BatonOptions options) {
        this.handle = handle;
        this.description = description;
        this.virtualClock = options.virtualClock().isPresent() ? new VirtualClock(this) : null;
        int n = INSTANCES.incrementAndGet();
        if (options.executor().isPresent()) {
            this.ownExecutor = null;
        } else {
            AtomicInteger threads = new AtomicInteger();
            ThreadPoolExecutor pool = new ThreadPoolExecutor(options.stepThreads(), options.stepThreads(),
                    30, TimeUnit.SECONDS, new LinkedBlockingQueue<>(), r -> {
                        Thread t = new Thread(r, "baton-step-" + n + "-" + threads.incrementAndGet());
                        t.setDaemon(true);
                        return t;
                    });
            pool.allowCoreThreadTimeOut(true);
            this.ownExecutor = pool;
        }
        this.dispatcher = new Dispatcher(handle, options.executor().orElse(ownExecutor),
                n == 1 ? "baton-dispatch" : "baton-dispatch-" + n);
    }

    /**
     * Opens the store in {@code dir} (created if missing) and resumes its unfinished runs.
     *
     * @throws StoreException if the store cannot be opened: another process holds it (the
     *     message names its pid), or the directory is not writable
     * @throws NativeLibraryException if the engine cannot be loaded on this platform
     */
    public static Baton open(Path dir) {
        return open(dir, BatonOptions.defaults());
    }

    /** {@link #open(Path)} with options. */
    public static Baton open(Path dir, BatonOptions options) {
        Objects.requireNonNull(dir, "dir");
        return openStore(dir.toAbsolutePath().toString(), options);
    }

    /** An engine whose store is in memory: nothing survives {@link #close()}. For tests and scratch work. */
    public static Baton inMemory() {
        return inMemory(BatonOptions.defaults());
    }

    /** {@link #inMemory()} with options. */
    public static Baton inMemory(BatonOptions options) {
        return openStore(null, options);
    }

    private static Baton openStore(String dir, BatonOptions options) {
        Objects.requireNonNull(options, "options");
        NativeLoader.load();
        long handle = openEngine(dir, options);
        Baton baton = new Baton(handle, dir == null ? "in memory" : dir, options);
        Logs.acquire();
        baton.dispatcher.start();
        opened(baton);
        try {
            baton.recover();
            if (dir != null && options.controlEndpoint()) {
                Envelope.unwrap(NativeBridge.serveControl(handle));
            }
        } catch (RuntimeException e) {
            baton.close();
            throw e;
        }
        return baton;
    }

    /**
     * Checks {@code workflow} as {@link #register} would, without registering it: dependencies,
     * cycles, expressions, step types and their parameters.
     *
     * @throws WorkflowDefinitionException listing every problem, each naming its step and field
     */
    public void validate(Workflow workflow) {
        Objects.requireNonNull(workflow, "workflow");
        Envelope.unwrap(NativeBridge.validate(open(), workflow.toJson()), workflow.id());
    }

    /**
     * Validates and registers {@code workflow} by its id, replacing a workflow of the same id
     * (runs already started keep the version they started with), and binds its Java steps'
     * code. Steps of unfinished runs waiting for that code then run.
     *
     * @throws WorkflowDefinitionException listing every problem, each naming its step and field
     */
    public void register(Workflow workflow) {
        Objects.requireNonNull(workflow, "workflow");
        Envelope.unwrap(NativeBridge.register(open(), workflow.toJson()), workflow.id());
        // Loop bodies run as workflows of their own (`<id>.<step>`): bind their Java steps too.
        dispatcher.bind(workflow.id(), workflow.javaSteps());
        workflow.javaStepsByWorkflow().forEach((workflowId, code) -> {
            if (!workflowId.equals(workflow.id())) {
                dispatcher.bind(workflowId, code);
            }
        });
    }

    /** The host-defined step types of this engine. */
    public StepTypes stepTypes() {
        open();
        return stepTypes;
    }

    /**
     * Starts a run of the registered workflow {@code workflowId} with its default parameters.
     *
     * @throws UnknownWorkflowException if no such workflow is registered
     */
    public Run start(String workflowId) {
        return start(workflowId, Map.of());
    }

    /**
     * Starts a run of the registered workflow {@code workflowId}; {@code params} override its
     * defaults (a string for a number or boolean parameter is converted).
     *
     * @throws UnknownWorkflowException if no such workflow is registered
     * @throws InvalidParamException for a parameter the workflow does not declare, or a value
     *     of the wrong type
     */
    public Run start(String workflowId, Map<String, ?> params) {
        Objects.requireNonNull(workflowId, "workflowId");
        Objects.requireNonNull(params, "params");
        String json = paramsJson(params, "cannot start `" + workflowId + "`");
        String runId = Envelope.unwrap(NativeBridge.start(open(), workflowId, json), workflowId).asText();
        return new Run(this, runId, workflowId);
    }

    /**
     * A run and its steps, as they are now.
     *
     * @throws UnknownRunException if the store has no such run
     */
    public RunResult run(String runId) {
        Objects.requireNonNull(runId, "runId");
        return RunResult.of(Envelope.unwrap(NativeBridge.run(open(), runId)));
    }

    /** Every run in the store, oldest first. */
    public List<RunInfo> runs() {
        List<RunInfo> runs = new ArrayList<>();
        for (JsonNode run : Envelope.unwrap(NativeBridge.runs(open()))) {
            runs.add(RunInfo.of(run));
        }
        return runs;
    }

    /** The runs of the workflow {@code workflowId}, oldest first. */
    public List<RunInfo> runs(String workflowId) {
        Objects.requireNonNull(workflowId, "workflowId");
        List<RunInfo> runs = runs();
        runs.removeIf(r -> !r.workflowId().equals(workflowId));
        return runs;
    }

    /**
     * Resumes the unfinished runs of the store that are not running here. {@link #open} does
     * it, and so does {@link StepTypes#register}: a run whose workflow uses a step type not
     * registered yet cannot resume before.
     *
     * @return the runs resumed, by id, each with {@code null} or why it could not resume yet
     */
    public Map<String, String> recover() {
        Map<String, String> result = new LinkedHashMap<>();
        for (JsonNode r : Envelope.unwrap(NativeBridge.recover(open()))) {
            String error = r.hasNonNull("error") ? r.get("error").asText() : null;
            result.put(r.path("run_id").asText(), error);
            Logs.log(error == null ? Level.INFO : Level.FINE, "dev.baton.Baton",
                    "run " + r.path("run_id").asText() + (error == null ? " resumed" : " cannot resume yet: " + error), null);
        }
        return result;
    }

    /**
     * Sends the signal {@code name}: it releases the {@code waitSignal} steps waiting for it whose
     * {@code match} accepts {@code params}, and those that start within their workflow's signal
     * retention.
     *
     * <pre>{@code
     * baton.signal("table_ready", Map.of("table", "events", "date", "2026-11-24"));
     * }</pre>
     *
     * @return the signal's id
     * @throws InvalidParamException if JSON cannot carry a value of {@code params}
     */
    public String signal(String name, Map<String, ?> params) {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(params, "params");
        String json = paramsJson(params, "cannot send the signal `" + name + "`");
        return Envelope.unwrap(NativeBridge.signal(open(), name, json)).asText();
    }

    /** The signals in the store named {@code name} ({@code null}: all), oldest first. */
    public List<SignalInfo> signals(String name) {
        List<SignalInfo> signals = new ArrayList<>();
        for (JsonNode s : Envelope.unwrap(NativeBridge.signals(open(), name))) {
            signals.add(SignalInfo.of(s));
        }
        return signals;
    }

    /**
     * Stops the run {@code runId}: its running steps are asked to stop (a shell command gets
     * SIGTERM, then SIGKILL after a grace period; a Java step sees
     * {@link StepContext#isStopRequested()} and an interrupt), and the run ends
     * {@link RunStatus#STOPPED}. Returns at once; {@link Run#await} waits for the end.
     *
     * @throws UnknownRunException if the store has no such run
     */
    public void stop(String runId) {
        Objects.requireNonNull(runId, "runId");
        control(Map.of("command", "stop", "run_id", runId));
    }

    /** True once {@link #close()} was called. */
    public boolean isClosed() {
        return closed.get();
    }

    /**
     * Stops scheduling, asks running steps to stop, flushes and releases the store. Unfinished
     * runs stay in the store and resume at the next {@link #open}. Idempotent.
     */
    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) {
            return;
        }
        String answer;
        try {
            dispatcher.stopping();
            answer = NativeBridge.close(handle);
        } finally {
            dispatcher.stop(5_000);
            if (ownExecutor != null) {
                ownExecutor.shutdownNow();
            }
            closed(this);
            Logs.release();
        }
        Envelope.unwrap(answer);
    }

    @Override
    public String toString() {
        return "Baton[" + description + (closed.get() ? ", closed]" : "]");
    }

    /**
     * Waits up to {@code timeout} for the run {@code runId} to end: a run started by an earlier
     * process and resumed here, say. {@link Run#await(Duration)} for a run started here.
     *
     * <pre>{@code
     * for (String runId : baton.recover().keySet()) {
     *     baton.await(runId, Duration.ofHours(1)).orThrow();
     * }
     * }</pre>
     *
     * @throws RunTimeoutException if it has not ended by then
     * @throws UnknownRunException if the store has no such run, or it is not running here
     *     (a run left unfinished that could not resume: see {@link #recover()})
     */
    public RunResult await(String runId, Duration timeout) {
        Objects.requireNonNull(runId, "runId");
        Objects.requireNonNull(timeout, "timeout");
        RunResult result = awaitRun(runId, timeout.isNegative() ? Duration.ZERO : timeout);
        if (result == null) {
            throw new RunTimeoutException("run " + runId + " has not ended after " + timeout
                    + "; it goes on (see Baton.run(\"" + runId + "\"))");
        }
        return result;
    }

    /** Waits for a run; {@code null} on timeout; {@code timeout} null: forever. */
    RunResult awaitRun(String runId, Duration timeout) {
        long deadline = timeout == null ? Long.MAX_VALUE : System.nanoTime() + timeout.toNanos();
        while (true) {
            // Short native waits, so that an interrupt or a close is noticed.
            long left = timeout == null ? 1_000 : Math.max(0, (deadline - System.nanoTime()) / 1_000_000);
            JsonNode details = Envelope.unwrap(NativeBridge.await(open(), runId, Math.min(left, 1_000)));
            if (!details.isNull()) {
                return RunResult.of(details);
            }
            if (Thread.currentThread().isInterrupted()) {
                throw new BatonException("interrupted while waiting for run " + runId, new InterruptedException());
            }
            if (timeout != null && System.nanoTime() >= deadline) {
                return null;
            }
        }
    }

    /** Opens the native engine, on the virtual clock if the options ask for one; returns its handle. */
    private static long openEngine(String dir, BatonOptions options) {
        String storeEngine = options.storeEngine().orElse(null);
        String answer = options.virtualClock()
                .map(start -> NativeBridge.openVirtual(dir, storeEngine, start.toEpochMilli()))
                .orElseGet(() -> NativeBridge.open(dir, storeEngine));
        return Envelope.unwrap(answer).asLong();
    }

    /**
     * The engine's virtual clock, for a Baton opened with {@link BatonOptions.Builder#virtualClock}.
     *
     * <pre>{@code
     * try (Baton baton = Baton.inMemory(BatonOptions.builder().virtualClock(Instant.parse("2026-11-24T00:00:00Z")).build())) {
     *     baton.register(workflowWithOneHourSleep);
     *     Run run = baton.start("nightly", Map.of());
     *     baton.virtualClock().advance(Duration.ofHours(1));   // returns at once
     *     run.await();
     * }
     * }</pre>
     *
     * @throws IllegalStateException if this Baton runs on the system clock, or is closed
     */
    public VirtualClock virtualClock() {
        open();
        if (virtualClock == null) {
            throw new IllegalStateException("this Baton (" + description + ") runs on the system clock;"
                    + " open it with BatonOptions.builder().virtualClock(start) for a virtual one");
        }
        return virtualClock;
    }

    /**
     * Runs {@code code} in place of step {@code stepId} of workflow {@code workflowId}, whatever
     * its declared type ({@code shell}, {@code java}, a host type), in attempts launched from now
     * on: a test double. The step keeps its dependencies, retries and timeout; {@code code} sees
     * the run's params with the step's own {@code params}, and the outputs of upstream steps.
     * {@link #restoreStep} undoes it.
     *
     * <pre>{@code
     * baton.overrideStep("nightly-etl", "extract", ctx -> ctx.output("rows", 0));
     * }</pre>
     */
    public void overrideStep(String workflowId, String stepId, JavaStep code) {
        Objects.requireNonNull(workflowId, "workflowId");
        Objects.requireNonNull(stepId, "stepId");
        Objects.requireNonNull(code, "code");
        long h = open();
        // A handler name no step type can have: type names are plain identifiers.
        String handler = "override:" + workflowId + "/" + stepId;
        JavaStep previous = dispatcher.bindType(handler, code);
        try {
            Envelope.unwrap(NativeBridge.overrideStep(h, workflowId, stepId, handler), workflowId);
        } catch (RuntimeException e) {
            dispatcher.bindType(handler, previous);
            throw e;
        }
    }

    /**
     * Runs step {@code stepId} of workflow {@code workflowId} as declared again, in attempts
     * launched from now on (attempts already given to an override finish with it).
     */
    public void restoreStep(String workflowId, String stepId) {
        Objects.requireNonNull(workflowId, "workflowId");
        Objects.requireNonNull(stepId, "stepId");
        Envelope.unwrap(NativeBridge.overrideStep(open(), workflowId, stepId, null), workflowId);
    }

    /** The handle, for the virtual clock; throws if closed. */
    long handle() {
        return open();
    }

    /** The handle, if not closed. */
    private long open() {
        if (closed.get()) {
            throw new IllegalStateException("this Baton (" + description + ") is closed");
        }
        return handle;
    }

    private static void opened(Baton baton) {
        synchronized (OPEN) {
            OPEN.add(baton);
            if (shutdownHook == null) {
                shutdownHook = new Thread(Baton::closeAllAtExit, "baton-shutdown");
                try {
                    Runtime.getRuntime().addShutdownHook(shutdownHook);
                } catch (IllegalStateException exiting) {
                    shutdownHook = null;
                }
            }
        }
    }

    private static void closed(Baton baton) {
        synchronized (OPEN) {
            OPEN.remove(baton);
            if (OPEN.isEmpty() && shutdownHook != null && Thread.currentThread() != shutdownHook) {
                try {
                    Runtime.getRuntime().removeShutdownHook(shutdownHook);
                } catch (IllegalStateException exiting) {
                    // the hook is running or about to
                }
                shutdownHook = null;
            }
        }
    }

    /** The shutdown hook: closes (and so flushes) every Baton still open. */
    private static void closeAllAtExit() {
        List<Baton> open;
        synchronized (OPEN) {
            open = new ArrayList<>(OPEN);
        }
        for (Baton baton : open) {
            try {
                baton.close();
            } catch (Throwable t) {
                Logs.log(Level.WARNING, "dev.baton.Baton", "cannot close " + baton + " at exit", t);
            }
        }
    }

    private final class HostStepTypes implements StepTypes {
        @Override
        public void register(String name, StepType type) {
            Objects.requireNonNull(name, "name");
            Objects.requireNonNull(type, "type");
            long h = open();
            Map<String, Object> spec = new LinkedHashMap<>();
            spec.put("params", type.params());
            // The code first: the engine may hand out tasks of the type as soon as it knows it.
            JavaStep previous = dispatcher.bindType(name, type.handler());
            try {
                Envelope.unwrap(NativeBridge.registerStepType(h, name, JsonCodec.write(spec)));
            } catch (RuntimeException e) {
                dispatcher.bindType(name, previous);
                throw e;
            }
            recover();
        }

        @Override
        public Set<String> names() {
            return dispatcher.typeNames();
        }
    }

    /** Sends one request of the control protocol; returns the response's value (or null). */
    private JsonNode control(Map<String, ?> request) {
        return Envelope.unwrap(NativeBridge.control(open(), JsonCodec.write(request))).path("value");
    }

    /** {@code params} as JSON; a value JSON cannot carry is an {@link InvalidParamException} saying {@code what} failed. */
    private static String paramsJson(Map<String, ?> params, String what) {
        try {
            return JsonCodec.write(JsonValues.normalize(params));
        } catch (IllegalArgumentException e) {
            throw new InvalidParamException(what + ": " + e.getMessage(), e);
        }
    }
}
