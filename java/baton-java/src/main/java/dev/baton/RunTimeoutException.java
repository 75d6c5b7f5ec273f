package dev.baton;

/**
 * {@link Run#await(java.time.Duration)} gave up: the run had not ended in time. The run goes
 * on; wait again, or look at it with {@link Baton#run(String)}.
 *
 * <pre>{@code
 * try {
 *     run.await(Duration.ofMinutes(10));
 * } catch (RunTimeoutException e) {
 *     log.warn("still running: {}", baton.run(run.id()));
 * }
 * }</pre>
 */
public class RunTimeoutException extends BatonException {
    private static final long serialVersionUID = 1L;

    public RunTimeoutException(String message) {
        super(message);
    }

    public RunTimeoutException(String message, Throwable cause) {
        super(message, cause);
    }
}
