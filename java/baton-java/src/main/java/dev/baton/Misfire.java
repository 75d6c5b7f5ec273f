package dev.baton;

/**
 * What a cron trigger does about the times it missed while no engine ran. The default is
 * {@link #RUN_ONCE}.
 *
 * <pre>{@code
 * .trigger(WorkflowTrigger.cron("0 2 * * *").misfire(Misfire.RUN_ALL))
 * }</pre>
 */
public enum Misfire {
    /** Start nothing; the missed times are recorded as skipped firings. */
    SKIP,
    /** One run, for the latest missed time. */
    RUN_ONCE,
    /** A run for every missed time (the latest 100 at most). */
    RUN_ALL
}
