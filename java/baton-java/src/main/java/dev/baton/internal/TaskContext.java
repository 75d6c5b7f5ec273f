package dev.baton.internal;

import com.fasterxml.jackson.databind.JsonNode;
import dev.baton.StepContext;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * The {@link StepContext} of one attempt, made from a task of the engine: the run's params
 * overlaid with the step's, upstream outputs, and the outputs set so far. The task's JSON is
 * parsed when the code first reads params or inputs, not before.
 *
 * <pre>{@code
 * TaskContext ctx = new TaskContext(execution);
 * code.run(ctx);
 * String outcome = ctx.outcomeJson();
 * }</pre>
 */
final class TaskContext implements StepContext {

    private final Execution execution;
    private final Map<String, Object> outputs = new LinkedHashMap<>();
    /** Read from the task's body at the first use; guarded by {@code this}. */
    private Map<String, Object> params;
    private JsonNode inputs;

    TaskContext(Execution execution) {
        this.execution = execution;
    }

    private synchronized void read() {
        if (inputs != null) {
            return;
        }
        JsonNode body = JsonCodec.parse(execution.body);
        Map<String, Object> merged = new LinkedHashMap<>(JsonCodec.toMap(body.get("params")));
        merged.putAll(JsonCodec.toMap(body.get("step_params")));
        params = Collections.unmodifiableMap(merged);
        inputs = body.path("inputs");
    }

    @Override
    public synchronized Map<String, Object> params() {
        read();
        return params;
    }

    @Override
    public Object input(String stepId, String key) {
        JsonNode outputs = inputTree().get(stepId);
        if (outputs == null || !outputs.has(key)) {
            java.util.List<String> known = new java.util.ArrayList<>();
            inputTree().properties().forEach(step -> step.getValue().fieldNames()
                    .forEachRemaining(k -> known.add(step.getKey() + "." + k)));
            throw new IllegalArgumentException("step `" + stepId() + "` has no input `" + stepId + "." + key + "`"
                    + Suggest.didYouMean(stepId + "." + key, known) + "; the outputs of its upstream steps: "
                    + (known.isEmpty() ? "none" : String.join(", ", known)));
        }
        return JsonCodec.toJava(outputs.get(key));
    }

    @Override
    public Map<String, Map<String, Object>> inputs() {
        Map<String, Map<String, Object>> all = new LinkedHashMap<>();
        inputTree().properties().forEach(e -> all.put(e.getKey(), JsonCodec.toMap(e.getValue())));
        return Collections.unmodifiableMap(all);
    }

    private synchronized JsonNode inputTree() {
        read();
        return inputs;
    }

    @Override
    public void output(String key, Object value) {
        Objects.requireNonNull(key, "key");
        Object normalized;
        try {
            normalized = JsonValues.normalize(value);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("output `" + key + "`: " + e.getMessage(), e);
        }
        synchronized (outputs) {
            outputs.put(key, normalized);
        }
    }

    /** The outputs set so far, as the JSON {@code {"outputs": {...}}} ({@code {}} for none). */
    String outcomeJson() {
        synchronized (outputs) {
            return outputs.isEmpty() ? "{}" : JsonCodec.write(Map.of("outputs", outputs));
        }
    }

    @Override
    public String idempotencyKey() {
        return execution.idempotencyKey;
    }

    @Override
    public String runId() {
        return execution.runId;
    }

    @Override
    public String workflowId() {
        return execution.workflowId;
    }

    @Override
    public String stepId() {
        return execution.stepId;
    }

    @Override
    public int attempt() {
        return execution.attempt;
    }

    @Override
    public boolean isStopRequested() {
        return execution.isStopRequested();
    }

    @Override
    public String toString() {
        return "StepContext[" + execution.workflowId + "/" + execution.stepId + ", run " + execution.runId
                + ", attempt " + execution.attempt + "]";
    }
}
