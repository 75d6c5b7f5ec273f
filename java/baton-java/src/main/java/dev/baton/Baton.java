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
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;
import java.util.function.Function;
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
    /** Set first thing in {@link #close()}: from then on every other method throws. */
    private final AtomicBoolean closed = new AtomicBoolean();
    /** Held while closing, so that every {@link #close()} returns once the store is released. */
    private final Object closing = new Object();
    private final StepTypes stepTypes = new HostStepTypes();
    /** The engine's clock when it runs on virtual time, else null. */
    private final VirtualClock virtualClock;
    /** The listeners of {@link #onEvent}, each with its thread; closed before the engine. */
    private final Set<EventSubscription> subscriptions = ConcurrentHashMap.newKeySet();
    private final int instance;
    /** Connected to the engine of another process ({@link #connect}): it runs nothing here. */
    private final boolean connected;

    /** A Baton connected to the engine of another process: no executor, no dispatcher. */
    private Baton(long handle, String description) {
        this.handle = handle;
        this.description = description;
        this.virtualClock = null;
        this.instance = INSTANCES.incrementAndGet();
        this.ownExecutor = null;
        this.dispatcher = null;
        this.connected = true;
    }

    private Baton(long handle, String description, BatonOptions options) {
        this.handle = handle;
        this.description = description;
        this.connected = false;
        this.virtualClock = options.virtualClock().isPresent() ? new VirtualClock(this) : null;
        int n = INSTANCES.incrementAndGet();
        this.instance = n;
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
        String dispatch = n == 1 ? "baton-dispatch" : "baton-dispatch-" + n;
        this.dispatcher = ownExecutor instanceof ThreadPoolExecutor own
                ? new Dispatcher(handle, own, dispatch)
                : new Dispatcher(handle, options.executor().orElseThrow(), dispatch);
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

    /**
     * Opens the store at {@code location}: a directory, or a PostgreSQL database given by URL
     * ({@code postgresql://user@host/db}, {@code postgres://...}, or the JDBC form
     * {@code jdbc:postgresql://host/db?user=baton}); the password comes from the URL,
     * {@code PGPASSWORD} or {@code ~/.pgpass}.
     *
     * <p>Several engines may share one database: JVMs of a service, each opened with its own
     * {@link BatonOptions.Builder#engineId engineId}, and {@code baton serve} processes. Each
     * drives the runs it starts and takes a fair share of the runs nobody drives; when one dies,
     * the others take its unfinished runs over once its {@link BatonOptions.Builder#lease lease}
     * has passed. A run with Java steps goes only to engines that {@link #register registered}
     * its workflow, so register the same workflows in every JVM. {@link #engines()} lists the
     * engines, {@link RunInfo#engine()} says which drives a run.
     *
     * <pre>{@code
     * BatonOptions options = BatonOptions.builder().engineId("billing-1").lease(Duration.ofSeconds(10)).build();
     * try (Baton baton = Baton.open("jdbc:postgresql://db.internal/baton?user=baton", options)) { ... }
     * }</pre>
     *
     * @throws StoreException if the store cannot be opened, naming it (without its password)
     */
    public static Baton open(String location) {
        return open(location, BatonOptions.defaults());
    }

    /** {@link #open(String)} with options. */
    public static Baton open(String location, BatonOptions options) {
        Objects.requireNonNull(location, "location");
        return openStore(location, options);
    }

    /** An engine whose store is in memory: nothing survives {@link #close()}. For tests and scratch work. */
    public static Baton inMemory() {
        return inMemory(BatonOptions.defaults());
    }

    /** {@link #inMemory()} with options. */
    public static Baton inMemory(BatonOptions options) {
        return openStore(null, options);
    }

    /**
     * Connects to the live engine that holds the store in {@code dir}, in another process (a
     * {@code baton serve}, or a service that opened it with {@link #open(Path)}), through the
     * store's control socket, as the {@code baton} command does. The Baton returned queries runs,
     * registers and starts workflows, sends signals and acts on runs; the engine it talks to runs
     * them. It runs no steps itself, so what needs code in this JVM (Java steps, step types, test
     * doubles, {@link #onEvent} listeners, {@link #recover()}, a virtual clock) throws
     * {@link IllegalStateException}. Close it as any Baton; the engine goes on.
     *
     * <pre>{@code
     * try (Baton ops = Baton.connect(Path.of("/var/lib/myservice/baton"))) {
     *     ops.runs().forEach(System.out::println);
     *     ops.start("nightly-etl", Map.of("date", "2026-12-01")).await(Duration.ofHours(1));
     * }
     * }</pre>
     *
     * @throws StoreException if no live engine answers on the store's socket (open the store with
     *     {@link #open(Path)} then), naming the socket
     */
    public static Baton connect(Path dir) {
        Objects.requireNonNull(dir, "dir");
        NativeLoader.load();
        Logs.followConfiguration();
        String shown = dir.toAbsolutePath().toString();
        long handle = Envelope.unwrap(NativeBridge.connect(shown)).asLong();
        Baton baton = new Baton(handle, "connected to " + shown);
        Logs.acquire();
        opened(baton);
        return baton;
    }

    private static Baton openStore(String dir, BatonOptions options) {
        Objects.requireNonNull(options, "options");
        NativeLoader.load();
        Logs.followConfiguration();
        long handle = openEngine(dir, options);
        // A URL's password never reaches a message.
        String shown = dir == null ? "in memory"
                : dir.replaceAll("(://[^:/@?]+):[^@/?]*@", "$1:***@").replaceAll("(?i)([?&]password=)[^&]*", "$1***");
        Baton baton = new Baton(handle, shown, options);
        Logs.acquire();
        baton.dispatcher.start();
        opened(baton);
        try {
            baton.recover();
            if (options.scheduler()) {
                Envelope.unwrap(NativeBridge.startScheduler(handle));
            }
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
        if (connected) {
            // The engine's own step types are checked when it registers the workflow.
            open();
            Envelope.unwrap(NativeBridge.check(workflow.toJson(), null, false), workflow.id());
            return;
        }
        Envelope.unwrap(NativeBridge.validate(open(), workflow.toJson()), workflow.id());
    }

    /**
     * Validates and registers {@code workflow} by its id, and binds its Java steps' code. A
     * definition that differs from the latest version becomes a new version, the active one
     * (runs already started keep the version they started with); the same definition again
     * changes nothing and returns the same version. Steps of unfinished runs waiting for that
     * code then run. Once registered, the workflow's triggers fire (see {@link #disable}).
     *
     * <pre>{@code
     * int v1 = baton.register(etl);        // 1
     * int same = baton.register(etl);      // 1 again
     * int v2 = baton.register(etlChanged); // 2, now active
     * }</pre>
     *
     * @return the version the definition is, from 1
     * @throws WorkflowDefinitionException listing every problem, each naming its step and field;
     *     a {@code java} step with no code (a workflow read from JSON or YAML and not
     *     {@link Workflow#bind bound}) is one, naming the {@code bind} call to make
     */
    public int register(Workflow workflow) {
        Objects.requireNonNull(workflow, "workflow");
        List<DefinitionError> unbound = workflow.unboundJavaSteps().stream()
                .map(path -> new DefinitionError(path, "type", "this java step has no code: bind it before "
                        + "register, with workflow.bind(\"" + path + "\", ctx -> ...)"))
                .toList();
        if (!unbound.isEmpty()) {
            throw new WorkflowDefinitionException(workflow.id(), unbound);
        }
        if (connected) {
            if (workflow.javaStepsByWorkflow().values().stream().anyMatch(code -> !code.isEmpty())) {
                throw local("register a workflow with Java steps");
            }
            Map<String, Object> request = new LinkedHashMap<>();
            request.put("command", "register");
            request.put("definition", JsonCodec.parse(workflow.toJson()));
            return control(request, workflow.id()).path("version").asInt();
        }
        int version = Envelope.unwrap(NativeBridge.register(open(), workflow.toJson()), workflow.id()).asInt();
        // Loop bodies run as workflows of their own (`<id>.<step>`): bind their Java steps too.
        dispatcher.bind(workflow.id(), workflow.javaSteps());
        workflow.javaStepsByWorkflow().forEach((workflowId, code) -> {
            if (!workflowId.equals(workflow.id())) {
                dispatcher.bind(workflowId, code);
            }
        });
        return version;
    }

    /**
     * The registered workflows, by id.
     *
     * <pre>{@code
     * baton.workflows().forEach(w -> System.out.println(w.id() + " v" + w.activeVersion()));
     * }</pre>
     */
    public List<WorkflowInfo> workflows() {
        return listOf(control(Map.of("command", "workflows")), WorkflowInfo::of);
    }

    /**
     * The versions of the registered workflow {@code workflowId}, oldest first.
     *
     * <pre>{@code
     * int latest = baton.versions("nightly-etl").get(baton.versions("nightly-etl").size() - 1).version();
     * }</pre>
     *
     * @throws UnknownWorkflowException if no such workflow is registered
     */
    public List<WorkflowVersion> versions(String workflowId) {
        Objects.requireNonNull(workflowId, "workflowId");
        return listOf(control(Map.of("command", "versions", "workflow_id", workflowId)), WorkflowVersion::of);
    }

    /**
     * Makes {@code version} the version of {@code workflowId} that starts and fires: a roll back.
     *
     * <pre>{@code
     * baton.activate("nightly-etl", 1);
     * }</pre>
     *
     * @throws UnknownVersionException if the workflow has no such version
     * @throws UnknownWorkflowException if no such workflow is registered
     */
    public void activate(String workflowId, int version) {
        Objects.requireNonNull(workflowId, "workflowId");
        control(Map.of("command", "activate", "workflow_id", workflowId, "version", version));
    }

    /**
     * Lets the triggers of {@code workflowId} fire again (registered workflows are enabled).
     *
     * <pre>{@code
     * baton.enable("nightly-etl");
     * }</pre>
     *
     * @throws UnknownWorkflowException if no such workflow is registered
     */
    public void enable(String workflowId) {
        Objects.requireNonNull(workflowId, "workflowId");
        control(Map.of("command", "enable", "workflow_id", workflowId, "enabled", true));
    }

    /**
     * Keeps the triggers of {@code workflowId} from firing (their firings are recorded as
     * skipped); {@link #start} still starts runs.
     *
     * <pre>{@code
     * baton.disable("nightly-etl");
     * }</pre>
     *
     * @throws UnknownWorkflowException if no such workflow is registered
     */
    public void disable(String workflowId) {
        Objects.requireNonNull(workflowId, "workflowId");
        control(Map.of("command", "enable", "workflow_id", workflowId, "enabled", false));
    }

    /**
     * The firings of the triggers of {@code workflowId}, oldest first: each with the run it
     * started or why it started none.
     *
     * <pre>{@code
     * baton.firings("nightly-etl").forEach(f -> System.out.println(f.scheduledAt() + " " + f.runId()));
     * }</pre>
     *
     * @throws UnknownWorkflowException if no such workflow is registered
     */
    public List<Firing> firings(String workflowId) {
        Objects.requireNonNull(workflowId, "workflowId");
        return listOf(control(Map.of("command", "firings", "workflow_id", workflowId)), Firing::of);
    }

    /**
     * What the history of the registered workflow {@code workflowId}'s steps says: durations,
     * success and retry rates, trends, and how long a run takes along its critical path.
     *
     * @throws UnknownWorkflowException if no workflow has that id
     */
    public WorkflowInsights insights(String workflowId) {
        Objects.requireNonNull(workflowId, "workflowId");
        return WorkflowInsights.of(control(Map.of("command", "insights", "workflow_id", workflowId), workflowId));
    }

    /**
     * Why run {@code runId} failed, in plain words: the step that failed first, what it took
     * down, where its error was seen before, what mended it then, what changed since.
     *
     * @throws UnknownRunException if there is no such run
     */
    public Diagnosis diagnose(String runId) {
        Objects.requireNonNull(runId, "runId");
        return Diagnosis.of(control(Map.of("command", "diagnose", "run_id", runId)));
    }

    /**
     * When run {@code runId} should end, by its steps' history; empty for a run that is over
     * or waits in its workflow's queue.
     *
     * @throws UnknownRunException if there is no such run
     */
    public Optional<Eta> eta(String runId) {
        Objects.requireNonNull(runId, "runId");
        JsonNode eta = control(Map.of("command", "eta", "run_id", runId));
        return eta == null || eta.isNull() || eta.isMissingNode() ? Optional.empty() : Optional.of(Eta.of(eta));
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
        if (connected) {
            return start(workflowId, params, StartOptions.defaults());
        }
        String json = paramsJson(params, "cannot start `" + workflowId + "`");
        String runId = Envelope.unwrap(NativeBridge.start(open(), workflowId, json), workflowId).asText();
        return new Run(this, runId, workflowId);
    }

    /**
     * {@link #start(String, Map)} with options: a version other than the active one, and a
     * request id that makes the start idempotent (a request id used before returns the run of
     * that start, without starting another). Under a run strategy such as
     * {@link RunStrategy#SEQUENTIAL} the run may wait, {@link RunStatus#QUEUED}.
     *
     * <pre>{@code
     * Run run = baton.start("nightly-etl", Map.of("date", "2026-11-25"), StartOptions.requestId("etl-2026-11-25"));
     * Run again = baton.start("nightly-etl", Map.of("date", "2026-11-25"), StartOptions.requestId("etl-2026-11-25"));
     * run.id().equals(again.id());   // true
     * }</pre>
     *
     * @throws UnknownWorkflowException if no such workflow is registered
     * @throws UnknownVersionException if it has no such version
     * @throws InvalidParamException for a parameter the workflow does not declare, or a value of the wrong type
     * @throws RunRejectedException if the run strategy ({@link RunStrategy#FIRST_ONLY}) refuses it
     */
    public Run start(String workflowId, Map<String, ?> params, StartOptions options) {
        Objects.requireNonNull(workflowId, "workflowId");
        Objects.requireNonNull(params, "params");
        Objects.requireNonNull(options, "options");
        Map<String, Object> request = new LinkedHashMap<>();
        request.put("command", "start");
        request.put("workflow_id", workflowId);
        try {
            request.put("params", JsonValues.normalize(params));
        } catch (IllegalArgumentException e) {
            throw new InvalidParamException("cannot start `" + workflowId + "`: " + e.getMessage(), e);
        }
        options.version().ifPresent(v -> request.put("version", v));
        options.requestId().ifPresent(id -> request.put("request_id", id));
        String runId = control(request, workflowId).path("run_id").asText();
        return new Run(this, runId, workflowId);
    }

    /**
     * A run and its steps, as they are now.
     *
     * @throws UnknownRunException if the store has no such run
     */
    public RunResult run(String runId) {
        Objects.requireNonNull(runId, "runId");
        if (connected) {
            return RunResult.of(control(Map.of("command", "show", "run_id", runId)));
        }
        return RunResult.of(Envelope.unwrap(NativeBridge.run(open(), runId)));
    }

    /**
     * The engines of the store, by id: on a database shared by several engines, every engine
     * that has opened it (live, dead or stopped), with its last heartbeat, the runs it holds and
     * what it can run.
     *
     * <pre>{@code
     * long live = baton.engines().stream().filter(EngineInfo::alive).count();
     * }</pre>
     */
    public List<EngineInfo> engines() {
        return listOf(control(Map.of("command", "engines")), EngineInfo::of);
    }

    /** Every run in the store, oldest first. */
    public List<RunInfo> runs() {
        JsonNode runs = connected ? control(Map.of("command", "runs")) : Envelope.unwrap(NativeBridge.runs(open()));
        return listOf(runs, RunInfo::of);
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
        if (connected) {
            throw local("recover runs");
        }
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
        if (connected) {
            Map<String, Object> request = new LinkedHashMap<>();
            request.put("command", "signal");
            request.put("name", name);
            request.put("params", JsonCodec.parse(json));
            return control(request).path("id").asText();
        }
        return Envelope.unwrap(NativeBridge.signal(open(), name, json)).asText();
    }

    /** The signals in the store named {@code name} ({@code null}: all), oldest first. */
    public List<SignalInfo> signals(String name) {
        if (connected) {
            Map<String, Object> request = new LinkedHashMap<>();
            request.put("command", "signals");
            request.put("name", name);
            return listOf(control(request), SignalInfo::of);
        }
        return listOf(Envelope.unwrap(NativeBridge.signals(open(), name)), SignalInfo::of);
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

    /**
     * Ends the run {@code runId} at once, without cleanup: running steps are ended (a shell
     * command gets SIGKILL) and the run ends {@link RunStatus#KILLED}. {@link #stop} asks politely.
     *
     * <pre>{@code
     * baton.kill(runId);
     * }</pre>
     *
     * @throws UnknownRunException if the store has no such run
     * @throws IllegalActionException if the run has ended
     */
    public void kill(String runId) {
        runAction("kill", runId);
    }

    /**
     * Pauses the run {@code runId}: no new step starts until {@link #resume}; running steps
     * finish. The run is {@link RunStatus#PAUSED}.
     *
     * <pre>{@code
     * baton.pause(runId);
     * // ... fix the warehouse ...
     * baton.resume(runId);
     * }</pre>
     *
     * @throws UnknownRunException if the store has no such run
     * @throws IllegalActionException if the run is not running (it has ended, say)
     */
    public void pause(String runId) {
        runAction("pause", runId);
    }

    /**
     * Resumes the run {@code runId} paused by {@link #pause}.
     *
     * <pre>{@code
     * baton.resume(runId);
     * }</pre>
     *
     * @throws UnknownRunException if the store has no such run
     * @throws IllegalActionException if the run is not paused
     */
    public void resume(String runId) {
        runAction("resume", runId);
    }

    /**
     * A new run of the ended run {@code runId}'s workflow version and parameters that keeps the
     * steps that succeeded (their outputs too) and runs the others.
     *
     * <pre>{@code
     * Run again = baton.restart(failedRunId);
     * again.await(Duration.ofMinutes(10)).info().restartedFrom();   // Optional[failedRunId]
     * }</pre>
     *
     * @throws UnknownRunException if the store has no such run
     * @throws IllegalActionException if the run has not ended
     */
    public Run restart(String runId) {
        Objects.requireNonNull(runId, "runId");
        return new Run(this, control(Map.of("command", "restart", "run_id", runId)).path("run_id").asText(), null);
    }

    /**
     * {@link #restart(String)} that runs again {@code fromStep} and every step below it, keeping
     * the other succeeded steps.
     *
     * <pre>{@code
     * Run again = baton.restart(runId, "transform");   // extract kept, transform and load again
     * }</pre>
     *
     * @throws UnknownStepException if the workflow has no such step
     * @throws IllegalActionException if the run has not ended
     */
    public Run restart(String runId, String fromStep) {
        Objects.requireNonNull(runId, "runId");
        Objects.requireNonNull(fromStep, "fromStep");
        return new Run(this, control(Map.of("command", "restart", "run_id", runId, "from", fromStep)).path("run_id").asText(), null);
    }

    /**
     * Sets a breakpoint: runs of {@code workflowId} (those going on and those to come) stop
     * before step {@code stepId}, which waits ({@link StepStatus#WAITING}) until
     * {@link #continueStep}.
     *
     * <pre>{@code
     * baton.setBreakpoint("nightly-etl", "load");
     * Run run = baton.start("nightly-etl");
     * // ... look at what extract and transform did ...
     * baton.continueStep(run.id(), "load");
     * }</pre>
     */
    public void setBreakpoint(String workflowId, String stepId) {
        breakpoint(workflowId, stepId, true);
    }

    /**
     * Clears the breakpoint before {@code stepId} of {@code workflowId}; steps waiting at it go
     * on waiting until continued.
     *
     * <pre>{@code
     * baton.clearBreakpoint("nightly-etl", "load");
     * }</pre>
     */
    public void clearBreakpoint(String workflowId, String stepId) {
        breakpoint(workflowId, stepId, false);
    }

    private void breakpoint(String workflowId, String stepId, boolean on) {
        Objects.requireNonNull(workflowId, "workflowId");
        Objects.requireNonNull(stepId, "stepId");
        control(Map.of("command", "break", "workflow_id", workflowId, "step_id", stepId, "on", on), workflowId);
    }

    /**
     * The steps of {@code workflowId} with a breakpoint.
     *
     * <pre>{@code
     * baton.breakpoints("nightly-etl");   // ["load"]
     * }</pre>
     */
    public List<String> breakpoints(String workflowId) {
        Objects.requireNonNull(workflowId, "workflowId");
        return listOf(control(Map.of("command", "breakpoints", "workflow_id", workflowId)), JsonNode::asText);
    }

    /**
     * Lets step {@code stepId} of run {@code runId}, waiting at a breakpoint, run.
     *
     * <pre>{@code
     * baton.continueStep(runId, "load");
     * }</pre>
     *
     * @throws UnknownStepException if the run's workflow has no such step
     * @throws IllegalActionException if the step is not at a breakpoint
     */
    public void continueStep(String runId, String stepId) {
        stepAction("continue", runId, stepId);
    }

    /**
     * Marks step {@code stepId} of run {@code runId} SKIPPED without running it (or instead of
     * retrying it): the steps below go on as if it succeeded.
     *
     * <pre>{@code
     * baton.skipStep(runId, "notify");
     * }</pre>
     *
     * @throws UnknownStepException if the run's workflow has no such step
     * @throws IllegalActionException if the step has run already
     */
    public void skipStep(String runId, String stepId) {
        stepAction("skip", runId, stepId);
    }

    /**
     * A new attempt of the failed step {@code stepId} in the same run {@code runId} (which goes
     * on if it had ended FAILED).
     *
     * <pre>{@code
     * baton.retryStep(runId, "extract");
     * }</pre>
     *
     * @throws UnknownStepException if the run's workflow has no such step
     * @throws IllegalActionException if the step did not fail
     */
    public void retryStep(String runId, String stepId) {
        stepAction("retry_step", runId, stepId);
    }

    /**
     * Releases the queue of a {@link RunStrategy#STRICT_SEQUENTIAL} workflow held by a failed
     * run: the next queued run starts.
     *
     * <pre>{@code
     * baton.unblock("nightly-etl");
     * }</pre>
     *
     * @throws UnknownWorkflowException if no such workflow is registered
     */
    public void unblock(String workflowId) {
        Objects.requireNonNull(workflowId, "workflowId");
        control(Map.of("command", "unblock", "workflow_id", workflowId), workflowId);
    }

    /**
     * Caps at {@code max} the running steps tagged {@code tag} ({@link Step.Builder#tags}) across
     * all runs of this engine; the others wait READY for a slot. Durable; replaces a cap.
     *
     * <pre>{@code
     * baton.limit("warehouse", 2);
     * }</pre>
     *
     * @throws IllegalArgumentException if {@code max} is negative
     * @throws InvalidRequestException if {@code tag} is not {@code [A-Za-z0-9_.-]+}
     */
    public void limit(String tag, int max) {
        Objects.requireNonNull(tag, "tag");
        if (max < 0) {
            throw new IllegalArgumentException("a limit is at least 0, not " + max);
        }
        control(Map.of("command", "limit", "tag", tag, "max", max));
    }

    /**
     * Lifts the cap on the steps tagged {@code tag}.
     *
     * <pre>{@code
     * baton.clearLimit("warehouse");
     * }</pre>
     */
    public void clearLimit(String tag) {
        Objects.requireNonNull(tag, "tag");
        Map<String, Object> request = new LinkedHashMap<>();
        request.put("command", "limit");
        request.put("tag", tag);
        request.put("max", null);
        control(request);
    }

    /**
     * The caps set by {@link #limit}, by tag.
     *
     * <pre>{@code
     * baton.limits();   // {warehouse=2}
     * }</pre>
     */
    public Map<String, Integer> limits() {
        Map<String, Integer> limits = new LinkedHashMap<>();
        // Pairs [tag, max].
        control(Map.of("command", "limits")).forEach(pair -> limits.put(pair.path(0).asText(), pair.path(1).asInt()));
        return limits;
    }

    /**
     * Every status change of run {@code runId} and of its steps, in order (iterations of a
     * {@code foreach}/{@code while} have none: see the step's rollup).
     *
     * <pre>{@code
     * baton.timeline(runId).forEach(System.out::println);
     * }</pre>
     *
     * @throws UnknownRunException if the store has no such run
     */
    public List<RunEvent> timeline(String runId) {
        Objects.requireNonNull(runId, "runId");
        return listOf(control(Map.of("command", "timeline", "run_id", runId)), RunEvent::of);
    }

    /**
     * Calls {@code listener} with every status change of every run and step from now on, once
     * durable, in order, on a daemon thread of this Baton (one per listener; never an engine
     * thread). A listener that throws is logged and goes on receiving. Closing the returned
     * handle (or this Baton) unsubscribes and stops the thread.
     *
     * <p>The engine never waits for a listener: one that falls more than a few thousand events
     * behind misses some (a warning is logged). Keep it quick, or hand the events on.
     *
     * <p>A listener receives the events of the runs this engine drives. On a database shared by
     * several engines, the runs that other engines drive (those they started or claimed, and
     * those they took over from this one) are seen through {@link #runs()}, {@link #run(String)}
     * and {@link #timeline(String)}, not here; a run this engine takes over from another
     * delivers its events from the take-over on (see {@link RunEvent#engine()}).
     *
     * <pre>{@code
     * try (AutoCloseable sub = baton.onEvent(e -> log.info("{}", e))) {
     *     baton.start("nightly-etl").await(Duration.ofMinutes(10));
     * }
     * }</pre>
     */
    public AutoCloseable onEvent(Consumer<RunEvent> listener) {
        Objects.requireNonNull(listener, "listener");
        if (connected) {
            throw local("listen to events (timeline(runId) gives a run's events)");
        }
        long id = Envelope.unwrap(NativeBridge.subscribe(open())).asLong();
        EventSubscription subscription = new EventSubscription(id, listener);
        subscriptions.add(subscription);
        subscription.thread.start();
        return subscription;
    }

    /** True once {@link #close()} was called. */
    public boolean isClosed() {
        return closed.get();
    }

    /**
     * Stops scheduling, asks running steps to stop, flushes and releases the store. Unfinished
     * runs stay in the store and resume at the next {@link #open}. Idempotent; a call while
     * another thread closes returns once the store is released.
     */
    @Override
    public void close() {
        synchronized (closing) {
            if (closed.compareAndSet(false, true)) {
                closeEngine();
            }
        }
    }

    private void closeEngine() {
        for (EventSubscription subscription : new ArrayList<>(subscriptions)) {
            subscription.close();
        }
        String answer;
        if (connected) {
            try {
                answer = NativeBridge.close(handle);
            } finally {
                closed(this);
                Logs.release();
            }
            Envelope.unwrap(answer);
            return;
        }
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
     * @throws IllegalStateException if this Baton is closed, before or while waiting
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
        if (connected) {
            return pollRun(runId, deadline);
        }
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
            if (virtualClock != null) {
                stuckOnVirtualTime(runId);
            }
        }
    }

    /** Looks at a run driven by the engine this Baton is connected to until it ends, or the deadline. */
    private RunResult pollRun(String runId, long deadline) {
        while (true) {
            RunResult now = run(runId);
            if (now.status().isFinal()) {
                return now;
            }
            if (System.nanoTime() >= deadline) {
                return null;
            }
            try {
                Thread.sleep(Math.max(1, Math.min(100, (deadline - System.nanoTime()) / 1_000_000)));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new BatonException("interrupted while waiting for run " + runId, e);
            }
        }
    }

    /** What a Baton connected to another process's engine cannot do: {@code what} needs code here. */
    private IllegalStateException local(String what) {
        return new IllegalStateException("this Baton (" + description + ") runs no steps, so it cannot " + what
                + ": do it in the process that holds the store, or open the store with Baton.open");
    }

    /**
     * On a virtual clock, a run that is not finished once the engine is idle waits for time (or a
     * signal) that only the caller can bring: waiting longer would hang, so this says what to do.
     */
    private void stuckOnVirtualTime(String runId) {
        virtualClock.awaitIdle();
        JsonNode details = Envelope.unwrap(NativeBridge.await(open(), runId, 0));
        if (details.isNull()) {
            RunResult now = run(runId);
            throw new IllegalStateException("run " + runId + " of `" + now.workflowId() + "` is " + now.status()
                    + " and nothing moves it: on a virtual clock, time moves only when told. Advance it"
                    + " (env.clock().advance(...), or baton.virtualClock().advance(...)), finish the run"
                    + " (env.finish(run), or baton.virtualClock().runUntilIdle()), or send the signal it"
                    + " waits for; it is at " + virtualClock.now());
        }
    }

    /** Opens the native engine, on the virtual clock if the options ask for one; returns its handle. */
    private static long openEngine(String dir, BatonOptions options) {
        // The texts as given: what a valid retention, engine id or lease is, the core says.
        Map<String, String> engine = new LinkedHashMap<>();
        options.storeEngine().ifPresent(v -> engine.put("store_engine", v));
        options.retention().ifPresent(v -> engine.put("retention", v));
        options.engineId().ifPresent(v -> engine.put("engine_id", v));
        options.lease().ifPresent(v -> engine.put("lease", v));
        options.maxRuns().ifPresent(v -> engine.put("max_runs", Integer.toString(v)));
        String json = JsonCodec.write(engine);
        String answer = options.virtualClock()
                .map(start -> NativeBridge.openVirtual(dir, json, start.toEpochMilli()))
                .orElseGet(() -> NativeBridge.open(dir, json));
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
        if (connected) {
            throw local("override steps");
        }
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
            if (connected) {
                throw local("register step types");
            }
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
            return connected ? Set.of() : dispatcher.typeNames();
        }
    }

    /** The elements of a JSON array, each read by {@code of}; a mutable list. */
    private static <T> List<T> listOf(JsonNode array, Function<JsonNode, T> of) {
        List<T> list = new ArrayList<>();
        array.forEach(node -> list.add(of.apply(node)));
        return list;
    }

    /** Sends one request of the control protocol; returns the response's value (or null). */
    private JsonNode control(Map<String, ?> request) {
        return control(request, null);
    }

    /** {@link #control(Map)} about {@code workflowId}, for definition errors. */
    private JsonNode control(Map<String, ?> request, String workflowId) {
        return Envelope.unwrap(NativeBridge.control(open(), JsonCodec.write(request)), workflowId).path("value");
    }

    private void runAction(String command, String runId) {
        Objects.requireNonNull(runId, "runId");
        control(Map.of("command", command, "run_id", runId));
    }

    private void stepAction(String command, String runId, String stepId) {
        Objects.requireNonNull(runId, "runId");
        Objects.requireNonNull(stepId, "stepId");
        control(Map.of("command", command, "run_id", runId, "step_id", stepId));
    }

    /** A listener of {@link #onEvent} and the thread that feeds it from its subscription. */
    private final class EventSubscription implements AutoCloseable {
        private final long id;
        private final Consumer<RunEvent> listener;
        private final Thread thread;
        private final AtomicBoolean done = new AtomicBoolean();
        /** How many times the listener threw. */
        private final java.util.concurrent.atomic.AtomicLong thrown = new java.util.concurrent.atomic.AtomicLong();

        EventSubscription(long id, Consumer<RunEvent> listener) {
            this.id = id;
            this.listener = listener;
            this.thread = new Thread(this::pump, "baton-events-" + instance + "-" + id);
            this.thread.setDaemon(true);
        }

        private void pump() {
            try {
                pumpEvents();
            } finally {
                long n = thrown.get();
                if (n > 1) {
                    Logs.log(Level.WARNING, "dev.baton.Baton", "an event listener threw " + n + " times in all", null);
                }
            }
        }

        private void pumpEvents() {
            while (!done.get()) {
                JsonNode batch;
                try {
                    // Short native waits, so that a close is noticed soon.
                    batch = Envelope.unwrap(NativeBridge.nextEvents(handle, id, 256, 250));
                } catch (IllegalStateException closedEngine) {
                    return;
                } catch (RuntimeException e) {
                    Logs.log(Level.WARNING, "dev.baton.Baton", "event listener stopped: " + e.getMessage(), e);
                    return;
                }
                if (batch.isNull()) {
                    return;
                }
                long lagged = batch.path("lagged").asLong();
                if (lagged > 0) {
                    Logs.log(Level.WARNING, "dev.baton.Baton", "an event listener fell behind and missed " + lagged + " events", null);
                }
                for (JsonNode event : batch.path("events")) {
                    if (done.get()) {
                        return;
                    }
                    try {
                        listener.accept(RunEvent.of(event));
                    } catch (Throwable t) {
                        // One bad event must not cost the listener every later one, nor flood
                        // the log: the first is logged with its trace, the others counted.
                        if (thrown.getAndIncrement() == 0) {
                            Logs.log(Level.WARNING, "dev.baton.Baton", "an event listener threw; it keeps"
                                    + " receiving events, and its later failures are counted, not logged", t);
                        }
                    }
                }
            }
        }

        @Override
        public void close() {
            if (!done.compareAndSet(false, true)) {
                return;
            }
            subscriptions.remove(this);
            try {
                Envelope.unwrap(NativeBridge.unsubscribe(handle, id));
            } catch (RuntimeException ignored) {
                // the engine is gone: so is the subscription
            }
            if (Thread.currentThread() != thread) {
                try {
                    thread.join(5_000);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        }
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
