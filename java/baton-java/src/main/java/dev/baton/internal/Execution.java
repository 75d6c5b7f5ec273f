package dev.baton.internal;

import com.fasterxml.jackson.databind.JsonNode;
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
 * <pre>{@code
 * Execution e = new Execution(dispatcher, task);
 * executor.execute(e);   // runs the code, then completes the token
 * e.cancel();            // from the dispatcher thread, on {"cancel": token}
 * }</pre>
 */
final class Execution implements Runnable {

    /** Stack traces longer than this are cut: the top of a trace says what matters. */
    static final int MAX_LOG_TAIL = 32 * 1024;

    final long token;
    final String type;
    final String workflowId;
    final String stepId;
    final JsonNode task;
    private final Dispatcher dispatcher;
    private volatile boolean stopRequested;
    /** The thread running the code, while it runs; guarded by {@code this}. */
    private Thread thread;
    private boolean started;

    Execution(Dispatcher dispatcher, JsonNode task) {
        this.dispatcher = dispatcher;
        this.task = task;
        this.token = task.path("token").asLong();
        this.type = task.path("type").asText();
        this.workflowId = task.path("workflow_id").asText();
        this.stepId = task.path("step_id").asText();
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
            synchronized (this) {
                thread = null;
            }
            // A cancel that raced the end of the code must not interrupt the pool's next task.
            Thread.interrupted();
        }
        dispatcher.complete(this, outcome);
    }

    /** The outcome of an attempt that threw {@code t}: its class and message, and its stack trace. */
    static String failure(Throwable t) {
        StringWriter trace = new StringWriter();
        t.printStackTrace(new PrintWriter(trace));
        String logTail = trace.toString();
        if (logTail.length() > MAX_LOG_TAIL) {
            logTail = logTail.substring(0, MAX_LOG_TAIL) + "\n\t... (stack trace cut at " + MAX_LOG_TAIL + " characters)";
        }
        Map<String, Object> outcome = new LinkedHashMap<>();
        outcome.put("error", t.toString());
        outcome.put("log_tail", logTail);
        return JsonCodec.write(outcome);
    }

    @Override
    public String toString() {
        return "task " + token + " (" + workflowId + "/" + stepId + ", " + type + ")";
    }
}
