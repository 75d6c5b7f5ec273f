package dev.baton;

import java.util.Optional;

/**
 * A step's failure, as the cause of the {@link RunFailedException} of its run: which step, and
 * its error as recorded, split into the error's class (for a Java step that threw, such as
 * {@code java.lang.IllegalStateException}) and its message.
 *
 * <pre>{@code
 * try {
 *     baton.start("etl").await(timeout).orThrow();
 * } catch (RunFailedException e) {
 *     StepFailedException step = (StepFailedException) e.getCause();
 *     log.error("step {} failed: {}", step.stepId(), step.error());
 * }
 * }</pre>
 */
public class StepFailedException extends BatonException {
    private static final long serialVersionUID = 1L;

    private final String stepId;
    private final String error;
    private final String errorClass;

    /** The failure of step {@code stepId} with {@code error}, as the run records it. */
    public StepFailedException(String stepId, String error) {
        super("step `" + stepId + "` failed: " + error);
        this.stepId = stepId;
        this.error = error;
        this.errorClass = classOf(error);
    }

    /** The step's id ({@code loop/step} in a loop body). */
    public String stepId() {
        return stepId;
    }

    /** The error as recorded, e.g. {@code java.lang.IllegalStateException: boom} or {@code command exited with code 3}. */
    public String error() {
        return error;
    }

    /** The class of the exception a Java step threw, when the error names one. */
    public Optional<String> errorClass() {
        return Optional.ofNullable(errorClass);
    }

    /** The error without its class: what the exception said. */
    public String errorMessage() {
        return errorClass == null ? error : error.substring(errorClass.length()).replaceFirst("^: ?", "");
    }

    /** `a.b.SomeException: ...` or `a.b.SomeError` names a class: a qualified name, then `:` or the end. */
    private static String classOf(String error) {
        int colon = error.indexOf(':');
        String head = colon < 0 ? error : error.substring(0, colon);
        return head.matches("([\\p{L}_$][\\p{L}\\p{N}_$]*\\.)+[\\p{L}_$][\\p{L}\\p{N}_$]*") ? head : null;
    }
}
