package dev.baton;

import java.util.Objects;

/**
 * One problem with a workflow definition: where it is (a step, a field, and for a file read
 * from disk its line and column) and what is wrong. Fields are named as in the JSON model, as a
 * dotted path ({@code retry.delay}, {@code depends_on.1}), so that the DSL and the engine
 * describe problems alike.
 *
 * <pre>{@code
 * catch (WorkflowDefinitionException e) {
 *     for (DefinitionError error : e.errors()) {
 *         System.err.println(error); // etl.yaml:7:11: step `load`: type: unknown step type ...
 *     }
 * }
 * }</pre>
 *
 * @param stepId the step the problem is in, or {@code null} for the workflow itself (or a
 *     step that has no id)
 * @param field the field, as a JSON path, or {@code null} for the whole definition (it is not
 *     JSON, say)
 * @param message what is wrong
 * @param file the file the definition was read from, or {@code null}
 * @param line the line in its text (that file's), from 1, or 0 if unknown
 * @param column the column in that line, from 1, or 0 if unknown
 */
public record DefinitionError(String stepId, String field, String message, String file, int line, int column) {

    public DefinitionError {
        Objects.requireNonNull(message, "message");
    }

    /** A problem in a definition that was not read from a file. */
    public DefinitionError(String stepId, String field, String message) {
        this(stepId, field, message, null, 0, 0);
    }

    /**
     * Reads {@code step `id`: field: message}, or {@code workflow: field: message}, after
     * {@code file:line:column: } when the definition came from a file, or after
     * {@code line L, column C: } for text that is not a file ({@link Workflow#fromJson(String)}).
     */
    @Override
    public String toString() {
        StringBuilder s = new StringBuilder();
        if (file != null) {
            s.append(file).append(':');
            if (line > 0) {
                s.append(line).append(':');
                if (column > 0) {
                    s.append(column).append(':');
                }
            }
            s.append(' ');
        } else if (line > 0) {
            s.append("line ").append(line);
            if (column > 0) {
                s.append(", column ").append(column);
            }
            s.append(": ");
        }
        s.append(stepId == null ? "workflow" : "step `" + stepId + "`");
        if (field != null) {
            s.append(": ").append(field);
        }
        return s.append(": ").append(message).toString();
    }
}
