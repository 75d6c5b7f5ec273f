package dev.baton;

/**
 * Where a run is in its life. {@link #SUCCEEDED}, {@link #FAILED}, {@link #STOPPED} and
 * {@link #KILLED} are final.
 *
 * <pre>{@code
 * if (baton.run(runId).status().isFinal()) { ... }
 * }</pre>
 */
public enum RunStatus {
    /** Waiting for its turn under the workflow's run strategy (e.g. {@code sequential}). */
    QUEUED,
    /** Recorded, not started yet. */
    CREATED,
    /** Its steps are being scheduled. */
    RUNNING,
    /** Scheduling is suspended; running steps finish. */
    PAUSED,
    SUCCEEDED,
    /** A step failed (after its retries), or the run timed out. */
    FAILED,
    /** Stopped on request: running steps were asked to stop. */
    STOPPED,
    /** Killed: running steps were ended at once. */
    KILLED;

    /** True for a status a run never leaves. */
    public boolean isFinal() {
        return this == SUCCEEDED || this == FAILED || this == STOPPED || this == KILLED;
    }
}
