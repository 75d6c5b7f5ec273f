package dev.baton.internal;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One attempt of a JVM step, from the moment the engine hands it over ({@code nextTasks}) to
 * its answer ({@code complete}): queued on the executor, parked (its code not registered),
 * or running. A cancellation sets the stop flag and interrupts the thread running it, only
 * while it runs.
 *
 * <p>A task comes as one line of tab-separated fields, the JSON of what the step may read
 * last ({@code native/baton-jni/src/host_steps.rs}): dispatching it parses no JSON, and a
 * step that reads no params or inputs never parses its body.
 *
 * <pre>{@code
 * Execution e = Execution.parse(dispatcher, line);
 * executor.execute(e);   // runs the code, then completes the token
 * e.cancel();            // from the dispatcher thread, on a cancellation line
 * }</pre>
 */
final class Execution implements Runnable {

    /** Stack traces longer than this are cut: the top of a trace says what matters. */
    static final int MAX_LOG_TAIL = 32 * 1024;

    /** The fields of a task line: a marker, then these, then the body. */
    private static final int FIELDS = 9;

    final long token;
    final String type;
    final String workflowId;
    final String stepId;
    final String runId;
    final int attempt;
    final String idempotencyKey;
    /** JSON: {@code {"params", "step_params", "inputs"}}. */
    final String body;
    private final Dispatcher dispatcher;
    private volatile boolean stopRequested;
    /** The thread running the code, while it runs; guarded by {@code this}. */
    private Thread thread;
    private boolean started;
    /** Still running well after it was asked to stop; guarded by {@code this}. */
    private boolean stuck;

    private Execution(Dispatcher dispatcher, String[] f) {
        this.dispatcher = dispatcher;
        this.token = Long.parseLong(f[1]);
        this.type = f[2];
        this.workflowId = f[3];
        this.stepId = f[4];
        this.runId = f[5];
        this.attempt = Integer.parseInt(f[6]);
        this.idempotencyKey = f[7];
        this.body = f[8];
    }

    /**
     * The attempt of a task line {@code T<TAB>token<TAB>type<TAB>workflow<TAB>step<TAB>run<TAB>attempt<TAB>key<TAB>body}.
     *
     * @throws IllegalStateException for a line of another shape (a bug of the native library)
     */
    static Execution parse(Dispatcher dispatcher, String line) {
        String[] f = new String[FIELDS];
        int start = 0;
        for (int i = 0; i < FIELDS - 1; i++) {
            int tab = line.indexOf('\t', start);
            if (tab < 0) {
                throw new IllegalStateException("malformed task from Baton's native library: " + line);
            }
            f[i] = line.substring(start, tab);
            start = tab + 1;
        }
        f[FIELDS - 1] = line.substring(start);
        if (!f[0].equals("T")) {
            throw new IllegalStateException("malformed task from Baton's native library: " + line);
        }
        return new Execution(dispatcher, f);
    }

    boolean isStopRequested() {
        return stopRequested;
    }

    /** Asks the attempt to stop: sets the flag, and interrupts the code if it is running. */
    void cancel() {
        synchronized (this) {
            stopRequested = true;
            if (thread != null) {
                thread.interrupt();
            }
        }
    }

    /**
     * Marks the attempt stuck if its code still runs; returns the thread running it, or
     * {@code null} if it has ended.
     */
    synchronized Thread markStuck() {
        stuck = thread != null;
        return thread;
    }

    @Override
    public void run() {
        synchronized (this) {
            if (stopRequested || started) {
                dispatcher.finished(this);
                return;
            }
            started = true;
            thread = Thread.currentThread();
        }
        String outcome;
        try {
            outcome = dispatcher.execute(this);
        } catch (Throwable t) {
            outcome = failure(t);
        } finally {
            boolean wasStuck;
            synchronized (this) {
                thread = null;
                wasStuck = stuck;
            }
            // A cancel that raced the end of the code must not interrupt the pool's next task.
            Thread.interrupted();
            if (wasStuck) {
                dispatcher.unstuck(this);
            }
        }
        dispatcher.complete(this, outcome);
    }

    /**
     * The outcome of an attempt that threw {@code t}: its class and message, and its stack
     * trace; only its class if describing it throws too (a {@code toString} that throws, no
     * memory left), so that the attempt still ends.
     */
    static String failure(Throwable t) {
        try {
            return described(t);
        } catch (Throwable describing) {
            return JsonCodec.write(Map.of("error", t.getClass().getName()
                    + " (which could not be described: " + describing.getClass().getName() + ")"));
        }
    }

    private static String described(Throwable t) {
        StringWriter trace = new StringWriter();
        t.printStackTrace(new PrintWriter(trace));
        String logTail = trace.toString();
        if (logTail.length() > MAX_LOG_TAIL) {
            logTail = logTail.substring(0, MAX_LOG_TAIL) + "\n\t... (stack trace cut at " + MAX_LOG_TAIL + " characters)";
        }
        Map<String, Object> outcome = new LinkedHashMap<>();
        outcome.put("error", t.toString());
        outcome.put("log_tail", logTail);
        if (t instanceof dev.baton.FinalFailureException) {
            outcome.put("final", true);
        }
        return JsonCodec.write(outcome);
    }

    @Override
    public String toString() {
        return "task " + token + " (" + workflowId + "/" + stepId + ", " + type + ")";
    }
}
