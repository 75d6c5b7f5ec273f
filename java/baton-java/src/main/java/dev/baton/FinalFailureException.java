package dev.baton;

/**
 * Thrown by a Java step whose failure no retry can mend (a bad argument, a missing table): the
 * step fails at once, whatever its {@link Retry} policy says. {@link StepContext#fail} throws it.
 *
 * <pre>{@code
 * .step("load", s -> s.retry(Retry.exponential(5, Duration.ofSeconds(1))).java(ctx -> {
 *     if (!tableExists(ctx.param("table"))) {
 *         ctx.fail("table " + ctx.param("table") + " does not exist");   // no retry
 *     }
 *     load(ctx.param("table"));                                          // retried if it throws
 * }))
 * }</pre>
 */
public class FinalFailureException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    /** A failure saying why; it is the step's error. */
    public FinalFailureException(String message) {
        super(message);
    }

    /** A failure saying why, with its cause. */
    public FinalFailureException(String message, Throwable cause) {
        super(message, cause);
    }
}
