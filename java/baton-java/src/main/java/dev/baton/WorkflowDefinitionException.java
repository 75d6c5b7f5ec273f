package dev.baton;

import java.util.List;

/**
 * A workflow definition is not valid. It carries every problem the engine's core found, not
 * just the first, and its message lists them one per line.
 *
 * <pre>{@code
 * try {
 *     Workflow.named("etl").step("a", s -> {}).build();
 * } catch (WorkflowDefinitionException e) {
 *     e.errors(); // [step `a`: type: the step has no type; known types: foreach, noop, ...]
 * }
 * }</pre>
 */
public class WorkflowDefinitionException extends BatonException {
    private static final long serialVersionUID = 1L;

    private final String workflowId;
    private final List<DefinitionError> errors;

    /**
     * @param workflowId the workflow's id, or {@code null} if it has none
     * @param errors the problems, at least one
     */
    public WorkflowDefinitionException(String workflowId, List<DefinitionError> errors) {
        super(describe(workflowId, errors));
        this.workflowId = workflowId;
        this.errors = List.copyOf(errors);
    }

    /** The id of the workflow, or {@code null} if it has none. */
    public String workflowId() {
        return workflowId;
    }

    /** Every problem found, in definition order. */
    public List<DefinitionError> errors() {
        return errors;
    }

    private static String describe(String workflowId, List<DefinitionError> errors) {
        if (errors.isEmpty()) {
            throw new IllegalArgumentException("a definition exception needs at least one error");
        }
        StringBuilder message = new StringBuilder("invalid workflow");
        if (workflowId != null) {
            message.append(" `").append(workflowId).append('`');
        }
        message.append(errors.size() == 1 ? " (1 problem):" : " (" + errors.size() + " problems):");
        for (DefinitionError error : errors) {
            message.append("\n  ").append(error);
        }
        return message.toString();
    }
}
