package dev.baton;

/**
 * A run was started with a parameter its workflow does not declare (the message suggests
 * the closest one) or with a value of the wrong type.
 *
 * <pre>{@code
 * baton.start("nightly-etl", Map.of("dat", "2026-11-25"));
 * // InvalidParamException: unknown parameter `dat` (did you mean `date`?) ...
 * }</pre>
 */
public class InvalidParamException extends BatonException {
    private static final long serialVersionUID = 1L;

    public InvalidParamException(String message) {
        super(message);
    }

    public InvalidParamException(String message, Throwable cause) {
        super(message, cause);
    }
}
