package dev.baton;

import java.util.Locale;

/**
 * How a new run of a workflow relates to its runs already going on. The default is
 * {@link #PARALLEL}.
 *
 * <pre>{@code
 * Workflow.named("nightly-etl").runStrategy(RunStrategy.SEQUENTIAL)...
 * }</pre>
 */
public enum RunStrategy {
    /** One run at a time; new runs wait ({@link RunStatus#QUEUED}) in order. */
    SEQUENTIAL,
    /** Like {@link #SEQUENTIAL}, but a failed run holds the queue until {@link Baton#unblock}. */
    STRICT_SEQUENTIAL,
    /** A new run is refused ({@link RunRejectedException}) while one is going on. */
    FIRST_ONLY,
    /** A new run stops the one going on (and replaces any waiting). */
    LAST_ONLY,
    /** Runs go on side by side, {@code maxConcurrentRuns} at most (default: no limit). */
    PARALLEL;

    /** The name in the workflow's JSON and YAML form: {@code strict_sequential}. */
    public String jsonName() {
        return name().toLowerCase(Locale.ROOT);
    }

    /**
     * The strategy named {@code name} in the JSON and YAML form ({@code sequential}); case does
     * not matter.
     *
     * @throws IllegalArgumentException for an unknown name, listing the known ones
     */
    public static RunStrategy of(String name) {
        for (RunStrategy s : values()) {
            if (s.jsonName().equalsIgnoreCase(name)) {
                return s;
            }
        }
        throw new IllegalArgumentException("unknown run strategy `" + name
                + "`: use sequential, strict_sequential, first_only, last_only or parallel");
    }
}
