package dev.baton;

/**
 * An action asked of a run or a step in a state that does not allow it: pausing a run that
 * has ended, continuing a step that is not at a breakpoint, retrying a step that did not fail.
 * The message names the run or step, the action and the state it is in.
 *
 * <pre>{@code
 * try {
 *     baton.pause(runId);
 * } catch (IllegalActionException e) {
 *     // "cannot pause run 01J...: it is SUCCEEDED"
 * }
 * }</pre>
 */
public class IllegalActionException extends BatonException {
    private static final long serialVersionUID = 1L;

    public IllegalActionException(String message) {
        super(message);
    }
}
