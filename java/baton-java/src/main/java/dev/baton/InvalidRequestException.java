package dev.baton;

/**
 * A request the engine cannot serve as asked: a tag name that is not
 * {@code [A-Za-z0-9_.-]+}, a trigger that cannot be evaluated, an operation this way of reaching
 * the engine does not offer. The engine's counterpart of {@link IllegalArgumentException}.
 *
 * <pre>{@code
 * baton.limit("db writes", 2);   // InvalidRequestException: invalid tag `db writes` ...
 * }</pre>
 */
public class InvalidRequestException extends BatonException {
    private static final long serialVersionUID = 1L;

    public InvalidRequestException(String message) {
        super(message);
    }
}
