package dev.baton.internal;

import com.fasterxml.jackson.databind.JsonNode;
import dev.baton.StepContext;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * The {@link StepContext} of one attempt, made from a task of the engine: the run's params
 * overlaid with the step's, upstream outputs, and the outputs set so far.
 *
 * <pre>{@code
 * TaskContext ctx = new TaskContext(task, stopFlag);
 * code.run(ctx);
 * String outcome = ctx.outputsJson();
 * }</pre>
 */
final class TaskContext implements StepContext {

    private final String runId;
    private final String workflowId;
    private final String stepId;
    private final int attempt;
    private final String idempotencyKey;
    private final Map<String, Object> params;
    private final JsonNode inputs;
    private final Map<String, Object> outputs = new LinkedHashMap<>();
    private final Execution execution;

    TaskContext(JsonNode task, Execution execution) {
        this.runId = task.path("run_id").asText();
        this.workflowId = task.path("workflow_id").asText();
        this.stepId = task.path("step_id").asText();
        this.attempt = task.path("attempt").asInt(1);
        this.idempotencyKey = task.path("idempotency_key").asText();
        Map<String, Object> merged = new LinkedHashMap<>(JsonCodec.toMap(task.get("params")));
        merged.putAll(JsonCodec.toMap(task.get("step_params")));
        this.params = Collections.unmodifiableMap(merged);
        this.inputs = task.path("inputs");
        this.execution = execution;
    }

    @Override
    public Map<String, Object> params() {
        return params;
    }

    @Override
    public Object input(String stepId, String key) {
        return JsonCodec.toJava(inputs.path(stepId).get(key));
    }

    @Override
    public Map<String, Map<String, Object>> inputs() {
        Map<String, Map<String, Object>> all = new LinkedHashMap<>();
        inputs.properties().forEach(e -> all.put(e.getKey(), JsonCodec.toMap(e.getValue())));
        return Collections.unmodifiableMap(all);
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

    /** The outputs set so far, as the JSON {@code {"outputs": {...}}}. */
    String outcomeJson() {
        synchronized (outputs) {
            return JsonCodec.write(Map.of("outputs", outputs));
        }
    }

    @Override
    public String idempotencyKey() {
        return idempotencyKey;
    }

    @Override
    public String runId() {
        return runId;
    }

    @Override
    public String workflowId() {
        return workflowId;
    }

    @Override
    public String stepId() {
        return stepId;
    }

    @Override
    public int attempt() {
        return attempt;
    }

    @Override
    public boolean isStopRequested() {
        return execution.isStopRequested();
    }

    @Override
    public String toString() {
        return "StepContext[" + workflowId + "/" + stepId + ", run " + runId + ", attempt " + attempt + "]";
    }
}
