package dev.baton;

/**
 * What a step that failed (after its retries) does to its run. The default is
 * {@link #FAIL_AFTER_RUNNING}.
 *
 * <pre>{@code
 * .step("notify", s -> s.shell("curl -fsS $HOOK").failureMode(FailureMode.IGNORE_FAILURE))
 * }</pre>
 */
public enum FailureMode {
    /** The run fails once the steps that can still run have run; downstream steps are skipped. */
    FAIL_AFTER_RUNNING,
    /** The run fails now: running steps are stopped, the rest skipped. */
    FAIL_IMMEDIATELY,
    /** The failure is recorded, and downstream steps run as if the step had succeeded. */
    IGNORE_FAILURE
}
