package dev.baton.junit;

import dev.baton.StepContext;
import java.util.Map;

/**
 * One call of a mocked step, as the engine made it: which run and attempt, and what the step
 * saw. Immutable.
 *
 * <pre>{@code
 * StepCall load = env.calls("nightly-etl", "load").get(0);
 * load.param("date");                 // "2026-11-24"
 * load.input("extract", "rows");      // 42L
 * load.attempt();                     // 1
 * }</pre>
 */
public final class StepCall {

    private final String runId;
    private final String stepId;
    private final int attempt;
    private final String idempotencyKey;
    private final Map<String, Object> params;
    private final Map<String, Map<String, Object>> inputs;

    private StepCall(String runId, String stepId, int attempt, String idempotencyKey, Map<String, Object> params,
            Map<String, Map<String, Object>> inputs) {
        this.runId = runId;
        this.stepId = stepId;
        this.attempt = attempt;
        this.idempotencyKey = idempotencyKey;
        this.params = params;
        this.inputs = inputs;
    }

    static StepCall of(StepContext ctx) {
        return new StepCall(ctx.runId(), ctx.stepId(), ctx.attempt(), ctx.idempotencyKey(), ctx.params(), ctx.inputs());
    }

    public String runId() {
        return runId;
    }

    /** 1 for the first attempt. */
    public int attempt() {
        return attempt;
    }

    public String idempotencyKey() {
        return idempotencyKey;
    }

    /**
     * The params the step saw: the run's (defaults with the run's overrides), then the step's own
     * {@code params}, evaluated, which win. Values in their JSON form ({@code Long},
     * {@code Double}, {@code String}, ...).
     */
    public Map<String, Object> params() {
        return params;
    }

    /** A param's value, or {@code null}. */
    public Object param(String name) {
        return params.get(name);
    }

    /** Outputs of the direct upstream steps, by step id then key. */
    public Map<String, Map<String, Object>> inputs() {
        return inputs;
    }

    /** An output of the upstream step {@code stepId}, or {@code null}. */
    public Object input(String stepId, String key) {
        Map<String, Object> outputs = inputs.get(stepId);
        return outputs == null ? null : outputs.get(key);
    }

    @Override
    public String toString() {
        return "StepCall[" + stepId + ", run " + runId + ", attempt " + attempt + ", params " + params
                + (inputs.isEmpty() ? "" : ", inputs " + inputs) + "]";
    }
}
