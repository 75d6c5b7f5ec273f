package dev.baton;

/**
 * Which outcomes of a step's upstream steps let it run; a step that does not run is SKIPPED.
 * An upstream step that failed with {@link FailureMode#IGNORE_FAILURE} counts as succeeded.
 * The default is {@link #ALL_SUCCESS}.
 *
 * <pre>{@code
 * .step("big", s -> s.dependsOn("count").when("${count.rows > 1000}").shell("./big.sh"))
 * .step("small", s -> s.dependsOn("count").when("${count.rows <= 1000}").shell("./small.sh"))
 * .step("report", s -> s.dependsOn("big", "small").trigger(Trigger.NONE_FAILED).shell("./report.sh"))
 * }</pre>
 */
public enum Trigger {
    /** Every upstream step succeeded. */
    ALL_SUCCESS,
    /** Every upstream step is over, whatever its outcome. */
    ALL_DONE,
    /** One upstream step succeeded; the step starts at once. */
    ONE_SUCCESS,
    /** One upstream step failed; the step starts at once. */
    ONE_FAILED,
    /** Every upstream step is over and none failed (skipped ones are fine): the join of branches. */
    NONE_FAILED,
    /** Every upstream step is over, none failed, and at least one succeeded: the join of branches that may all be skipped. */
    NONE_FAILED_MIN_ONE_SUCCESS
}
