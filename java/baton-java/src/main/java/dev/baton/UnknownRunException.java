package dev.baton;

/**
 * No run has this id in the store, or the run is not running in this process (it was
 * left unfinished by a {@link Baton} now closed).
 *
 * <pre>{@code
 * try {
 *     baton.run(runId);
 * } catch (UnknownRunException e) {
 *     // a typo, or another store
 * }
 * }</pre>
 */
public class UnknownRunException extends BatonException {
    private static final long serialVersionUID = 1L;

    public UnknownRunException(String message) {
        super(message);
    }

    public UnknownRunException(String message, Throwable cause) {
        super(message, cause);
    }
}
