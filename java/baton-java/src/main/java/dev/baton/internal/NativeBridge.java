package dev.baton.internal;

/**
 * The native engine's entry points ({@code native/baton-jni}). Not an API: {@code dev.baton.Baton}
 * is. Every call but the three hot ones ({@link #nextTasks}, {@link #complete}, {@link #waiting})
 * answers with a JSON envelope, {@code {"ok": value}} or {@code {"error": {"kind", "message",
 * "errors"?}}}, which {@link Envelope#unwrap} turns into a value or a typed exception.
 *
 * <p>Engines are opaque {@code long} handles: a handle closed or unknown gives the error kind
 * {@code closed} (an {@link IllegalStateException} on the hot paths), never a crash.
 *
 * <pre>{@code
 * NativeLoader.load();
 * long handle = Envelope.unwrap(NativeBridge.open(null, null)).asLong();
 * }</pre>
 */
public final class NativeBridge {

    private NativeBridge() {}

    /**
     * Opens an engine on the store at {@code store}, a directory or a database URL ({@code
     * null}: in memory); ok = the handle. {@code optionsJson} ({@code null}: the defaults) is an
     * object of optional texts: {@code store_engine} ({@code redb}, {@code sled}), {@code
     * retention} (as {@code baton serve --retain} takes it), {@code engine_id} (as {@code
     * --engine-id}) and {@code lease} (as {@code baton serve --lease}); an unknown field, a
     * retention, an engine id or a lease the core does not take is an error of kind {@code
     * invalid_request}.
     */
    public static native String open(String store, String optionsJson);

    /** Stops scheduling, waits for the run drivers and flushes the store; the handle is then invalid. */
    public static native String close(long handle);

    /**
     * Parses and validates a definition, YAML ({@code yaml}) or JSON, without an engine: a kind
     * that is not built in is taken for a host's, with {@code params} only (an engine checks it
     * again at {@link #register}). ok = the definition's JSON as the core writes it, durations in
     * their canonical form ({@code 90m}); or an error of kind {@code definition} listing every
     * problem, with file, line and column when {@code sourceName} is given. {@code sourceName}
     * null: {@code text} is the DSL's generated JSON, and problems carry no position.
     */
    public static native String check(String text, String sourceName, boolean yaml);

    /**
     * The model's shape, for the DSL's agreement test; ok = {@code {"model": {"workflow": [field
     * names], "step": [...], "trigger", "retry", "emit_signal", "failure_mode": [values],
     * "step_trigger", "backoff", "run_strategy", "misfire"}, "kinds": {"shell": ["command",
     * "env"], ...}}} (the optional fields each built-in kind takes).
     */
    public static native String schema();

    /** Validates a workflow against this engine's step types; ok = null. */
    public static native String validate(long handle, String workflowJson);

    /** Validates and registers a workflow by id: a new version if it changed; ok = the version (a number). */
    public static native String register(long handle, String workflowJson);

    /**
     * Declares a host step type: {@code {"params": {"name": default-or-null}}}; ok = null. A
     * built-in kind's name ({@code java} included) or a name that is not an id is refused, kind
     * {@code definition}.
     */
    public static native String registerStepType(long handle, String name, String specJson);

    /** One request of the control protocol, as JSON ({@code {"command": ...}}); ok = the response. */
    public static native String control(long handle, String requestJson);

    /**
     * Connects to the engine of another process that holds the store in {@code dir}, through its
     * control socket; ok = a handle for {@link #control} and {@link #close} only.
     */
    public static native String connect(String dir);

    /** Opens the control socket in the store directory; ok = its path, or null in memory. */
    public static native String serveControl(long handle);

    /** Starts a run of a registered workflow; ok = the run id. */
    public static native String start(long handle, String workflowId, String paramsJson);

    /** Waits for a run to end ({@code timeoutMillis < 0}: forever); ok = run details, or null on timeout. */
    public static native String await(long handle, String runId, long timeoutMillis);

    /** ok = a run's details: {@code {"run": {...}, "steps": [...]}}. */
    public static native String run(long handle, String runId);

    /** ok = every run record, oldest first. */
    public static native String runs(long handle);

    /** Resumes the unfinished runs not running here; ok = {@code [{"run_id", "error"?}]}. */
    public static native String recover(long handle);

    /** Sends the signal {@code name} with {@code paramsJson} (an object, or null); ok = the signal id. */
    public static native String signal(long handle, String name, String paramsJson);

    /** ok = the signals in the store named {@code name} (null: all), oldest first. */
    public static native String signals(long handle, String name);

    /**
     * Up to {@code max} step tasks or cancellations, waiting up to {@code timeoutMillis} for the
     * first: a line per item (see {@link Execution#parse}; empty if none came), or {@code null}
     * once the engine is closed.
     *
     * @throws IllegalStateException for an unknown handle
     */
    public static native String nextTasks(long handle, int max, long timeoutMillis);

    /** Ends the attempt behind {@code token}: {@code {"outputs": {...}}} or {@code {"error", "log_tail"}}. */
    public static native void complete(long handle, long token, String outcomeJson);

    /** Marks the attempt behind {@code token} WAITING for {@code reason}; {@code null}: RUNNING again. */
    public static native void waiting(long handle, long token, String reason);

    /**
     * The most verbose level of the engine's log records: {@code error}, {@code warn},
     * {@code info}, {@code debug}, {@code trace} or {@code off} (ignored when {@code BATON_LOG}
     * is set).
     */
    public static native void logLevel(String level);

    /** Up to {@code max} log records of the engine (all handles), waiting up to {@code timeoutMillis}. */
    public static native String nextLogs(int max, long timeoutMillis);

    /**
     * {@link #open}, on a virtual clock that reads {@code startMillis} (ms since the epoch) and
     * moves only by {@link #advanceClock} and {@link #runUntilIdle}; ok = the handle.
     */
    public static native String openVirtual(String store, String optionsJson, long startMillis);

    /** The virtual clock's time; ok = ms since the epoch. Error kind {@code state} on the system clock. */
    public static native String clockNow(long handle);

    /**
     * Moves the virtual clock forward by {@code millis}, firing each timer due by then in order,
     * and returns once the engine has reacted to each; ok = the new time. Waiting for the engine
     * gives up after {@code settleMillis} of real time ({@code < 0}: 30 s), error kind {@code timeout}.
     */
    public static native String advanceClock(long handle, long millis, long settleMillis);

    /** Fires the next timer until no run is unfinished or no timer is left; ok = the new time. */
    public static native String runUntilIdle(long handle, long settleMillis);

    /** Waits until the engine has nothing in motion, without moving time; ok = null. */
    public static native String awaitIdle(long handle, long settleMillis);

    /**
     * Runs the host step type {@code handler} (bound in the dispatcher) in place of the declared
     * kind of step {@code stepId} of {@code workflowId}, in attempts launched from now on;
     * {@code handler} null restores the declared kind. ok = null.
     */
    public static native String overrideStep(long handle, String workflowId, String stepId, String handler);

    /** Starts the scheduler of cron and signal triggers (once); ok = null. */
    public static native String startScheduler(long handle);

    /** Subscribes to the engine's events from now on; ok = the subscription id. */
    public static native String subscribe(long handle);

    /**
     * Up to {@code max} events of subscription {@code subscription}, waiting up to
     * {@code timeoutMillis} for the first; ok = {@code {"events": [...], "lagged": n}}, or null
     * once the subscription or the engine is gone.
     */
    public static native String nextEvents(long handle, long subscription, int max, long timeoutMillis);

    /** Ends a subscription; ok = null. */
    public static native String unsubscribe(long handle, long subscription);
}
