package dev.baton;

/**
 * A start refused by the workflow's run strategy: under {@link RunStrategy#FIRST_ONLY} a new run
 * is refused while one is going on. The message names the run going on.
 *
 * <pre>{@code
 * try {
 *     baton.start("refresh-cache");
 * } catch (RunRejectedException e) {
 *     // one is going on already: nothing to do
 * }
 * }</pre>
 */
public class RunRejectedException extends BatonException {
    private static final long serialVersionUID = 1L;

    public RunRejectedException(String message) {
        super(message);
    }
}
