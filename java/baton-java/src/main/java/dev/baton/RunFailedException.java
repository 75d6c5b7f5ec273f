package dev.baton;

/**
 * A run that the caller waited for ended without succeeding (failed, stopped or killed).
 *
 * <pre>{@code
 * } catch (RunFailedException e) {
 *     System.err.println(e.getMessage()); // which steps failed, and why
 * }
 * }</pre>
 */
public class RunFailedException extends BatonException {
    private static final long serialVersionUID = 1L;

    public RunFailedException(String message) {
        super(message);
    }

    public RunFailedException(String message, Throwable cause) {
        super(message, cause);
    }
}
