package dev.baton;

import java.time.Duration;
import java.util.Objects;

/**
 * A run started by {@link Baton#start}: its id, and a way to wait for its end. Cheap and
 * immutable; the state is in the engine.
 *
 * <pre>{@code
 * Run run = baton.start("nightly-etl", Map.of("date", "2026-11-25"));
 * RunResult result = run.await(Duration.ofMinutes(10));
 * }</pre>
 */
public final class Run {

    private final Baton baton;
    private final String id;
    /** Null until asked for, for a run whose workflow the caller did not know (a restart). */
    private volatile String workflowId;

    Run(Baton baton, String id, String workflowId) {
        this.baton = baton;
        this.id = id;
        this.workflowId = workflowId;
    }

    /** The run's id: unique, and sortable by creation time. */
    public String id() {
        return id;
    }

    public String workflowId() {
        String id = workflowId;
        if (id == null) {
            id = baton.run(this.id).workflowId();
            workflowId = id;
        }
        return id;
    }

    /**
     * Waits up to {@code timeout} for the run to end, and returns it with its steps.
     *
     * @throws RunTimeoutException if it has not ended by then (it goes on)
     * @throws IllegalStateException if the {@link Baton} is closed, before or while waiting (the
     *     run resumes at the next open)
     * @throws BatonException if the waiting thread is interrupted (its interrupt flag set again)
     */
    public RunResult await(Duration timeout) {
        Objects.requireNonNull(timeout, "timeout");
        RunResult result = baton.awaitRun(id, timeout.isNegative() ? Duration.ZERO : timeout);
        if (result == null) {
            throw new RunTimeoutException("run " + id + " of `" + workflowId() + "` has not ended after " + timeout
                    + "; it goes on (see Baton.run(\"" + id + "\"))");
        }
        return result;
    }

    /** Waits for the run to end, however long it takes; see {@link #await(Duration)}. */
    public RunResult await() {
        return baton.awaitRun(id, null);
    }

    /** The run as it is now, without waiting. */
    public RunResult result() {
        return baton.run(id);
    }

    @Override
    public String toString() {
        return "Run[" + id + (workflowId == null ? "" : ", " + workflowId) + "]";
    }
}
