package dev.baton;

import java.util.Objects;

/**
 * One problem with a workflow definition: where it is (a step, a field) and what is wrong.
 * Fields are named as in the JSON model, as a dotted path ({@code retry.delay},
 * {@code depends_on.1}), so that the DSL and the engine describe problems alike.
 *
 * <pre>{@code
 * catch (WorkflowDefinitionException e) {
 *     for (DefinitionError error : e.errors()) {
 *         System.err.println(error); // step `load`: type: no step kind ...
 *     }
 * }
 * }</pre>
 *
 * @param stepId the step the problem is in, or {@code null} for the workflow itself (or a
 *     step that has no id)
 * @param field the field, as a JSON path, or {@code null} for the whole definition (it is not
 *     JSON, say)
 * @param message what is wrong
 */
public record DefinitionError(String stepId, String field, String message) {

    public DefinitionError {
        Objects.requireNonNull(message, "message");
    }

    /** Reads {@code step `id`: field: message}, or {@code workflow: field: message}. */
    @Override
    public String toString() {
        String where = stepId == null ? "workflow" : "step `" + stepId + "`";
        return field == null ? where + ": " + message : where + ": " + field + ": " + message;
    }
}
