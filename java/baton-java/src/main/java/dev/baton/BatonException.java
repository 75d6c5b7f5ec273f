package dev.baton;

/**
 * The base of every exception Baton throws. All of them are unchecked: catch the subclass you
 * can act on.
 *
 * <pre>{@code
 * try {
 *     workflow = Workflow.fromJson(text);
 * } catch (BatonException e) {
 *     log.error("cannot use the workflow", e);
 * }
 * }</pre>
 */
public class BatonException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public BatonException(String message) {
        super(message);
    }

    public BatonException(String message, Throwable cause) {
        super(message, cause);
    }
}
