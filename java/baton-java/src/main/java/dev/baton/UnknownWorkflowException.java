package dev.baton;

/**
 * No workflow of this id is registered with the {@link Baton} asked to start it.
 *
 * <pre>{@code
 * baton.register(etl);          // first
 * baton.start("nightly-etl");   // then
 * }</pre>
 */
public class UnknownWorkflowException extends BatonException {
    private static final long serialVersionUID = 1L;

    public UnknownWorkflowException(String message) {
        super(message);
    }

    public UnknownWorkflowException(String message, Throwable cause) {
        super(message, cause);
    }
}
