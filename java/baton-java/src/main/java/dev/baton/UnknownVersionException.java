package dev.baton;

/**
 * A version of a registered workflow that does not exist: the message lists the versions that
 * do. A subclass of {@link UnknownWorkflowException}, so one catch covers both.
 *
 * <pre>{@code
 * baton.activate("nightly-etl", 7);   // UnknownVersionException: ... its versions: 1, 2
 * }</pre>
 */
public class UnknownVersionException extends UnknownWorkflowException {
    private static final long serialVersionUID = 1L;

    public UnknownVersionException(String message) {
        super(message);
    }
}
