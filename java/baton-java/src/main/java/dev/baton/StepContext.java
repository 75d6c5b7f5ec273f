package dev.baton;

import java.util.Map;

/**
 * What one attempt of a {@link JavaStep} is given, and where it puts its outputs.
 *
 * <pre>{@code
 * .step("load", s -> s.dependsOn("extract").java(ctx -> {
 *     long rows = (Long) ctx.input("extract", "rows");
 *     warehouse.load(ctx.param("date"), rows, ctx.idempotencyKey());
 *     ctx.output("loaded", rows);
 * }))
 * }</pre>
 *
 * <p>A context belongs to one attempt; {@link #output} may be called from any thread until the
 * step returns.
 *
 * <pre>{@code
 * .step("poll", s -> s.java(ctx -> {
 *     while (!ctx.isStopRequested() && !done()) {
 *         Thread.sleep(1_000);
 *     }
 * }))
 * }</pre>
 */
public interface StepContext {

    /** A parameter as text ({@link String#valueOf(Object)} of its value), or {@code null} if absent. */
    default String param(String name) {
        Object value = paramValue(name);
        return value == null ? null : String.valueOf(value);
    }

    /**
     * A parameter's value in its JSON form ({@code String}, {@code Long}, {@code Double},
     * {@code Boolean}, {@code List}, {@code Map}), or {@code null} if absent.
     */
    default Object paramValue(String name) {
        return params().get(name);
    }

    /**
     * The parameters this step sees: the run's parameters (the workflow's defaults with the
     * run's overrides), then the step's own {@code params}, which win.
     */
    Map<String, Object> params();

    /** An output of the upstream step {@code stepId}, or {@code null} if it has no such output. */
    Object input(String stepId, String key);

    /**
     * Every output of the direct upstream steps, by step id then key (steps without outputs are
     * absent); unmodifiable.
     */
    default Map<String, Map<String, Object>> inputs() {
        throw new UnsupportedOperationException("inputs() is not implemented by " + getClass().getName());
    }

    /** Sets an output, for downstream steps ({@link #input}) and expressions ({@code ${step.key}}). */
    void output(String key, Object value);

    /**
     * Stable across relaunches of the same attempt after a crash (run, step, iteration and
     * attempt): a key for making side effects happen exactly once.
     */
    String idempotencyKey();

    String runId();

    String workflowId();

    String stepId();

    /** 1 for the first attempt. */
    int attempt();

    /**
     * True once the engine no longer wants this attempt: it timed out, its run is stopping, or
     * the {@link Baton} is closing. The thread running the step is interrupted at the same
     * moment; a long step checks this (or {@link Thread#isInterrupted()}) and returns. What it
     * does after is ignored.
     */
    boolean isStopRequested();
}
