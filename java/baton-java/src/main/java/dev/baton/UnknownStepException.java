package dev.baton;

/**
 * An action named a step that the run's workflow does not have. The message suggests the
 * closest step id.
 *
 * <pre>{@code
 * baton.skipStep(runId, "extarct");   // UnknownStepException: ... did you mean `extract`?
 * }</pre>
 */
public class UnknownStepException extends BatonException {
    private static final long serialVersionUID = 1L;

    public UnknownStepException(String message) {
        super(message);
    }
}
