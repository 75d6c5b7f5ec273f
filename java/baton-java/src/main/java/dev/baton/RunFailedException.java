package dev.baton;

/**
 * A run that the caller waited for ended without succeeding (failed, stopped or killed). The
 * message names the run, its status and every failed step with its error.
 *
 * <pre>{@code
 * try {
 *     run.await(Duration.ofMinutes(10)).orThrow();
 * } catch (RunFailedException e) {
 *     System.err.println(e.getMessage()); // which steps failed, and why
 *     e.result();                         // the whole run, if known
 * }
 * }</pre>
 */
public class RunFailedException extends BatonException {
    private static final long serialVersionUID = 1L;

    private final transient RunResult result;

    public RunFailedException(String message) {
        this(message, (RunResult) null);
    }

    public RunFailedException(String message, Throwable cause) {
        super(message, cause);
        this.result = null;
    }

    /** A failure of the run {@code result}. */
    public RunFailedException(String message, RunResult result) {
        this(message, result, null);
    }

    /**
     * A failure of the run {@code result}; {@code cause} is the first failed step's failure
     * ({@link StepFailedException}), or {@code null}.
     */
    public RunFailedException(String message, RunResult result, StepFailedException cause) {
        super(message, cause);
        this.result = result;
    }

    /** The run that did not succeed, or {@code null} if not known (or this exception was deserialized). */
    public RunResult result() {
        return result;
    }
}
