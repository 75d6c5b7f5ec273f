package dev.baton;

import dev.baton.internal.JsonValues;
import dev.baton.internal.Suggest;
import java.util.Map;
import java.util.Optional;

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

    /**
     * Fails the step for good: no retry can mend this (a bad argument, a missing table), so its
     * {@link Retry} policy is not applied. Throws {@link FinalFailureException}; never returns.
     */
    default void fail(String message) {
        throw new FinalFailureException(message);
    }

    /**
     * A parameter as text ({@link String#valueOf(Object)} of its value; {@code null} for a null
     * value).
     *
     * @throws IllegalArgumentException if the step has no such parameter, with the one meant
     */
    default String param(String name) {
        Object value = paramValue(name);
        return value == null ? null : String.valueOf(value);
    }

    /**
     * A parameter's value in its JSON form ({@code String}, {@code Long}, {@code Double},
     * {@code Boolean}, {@code List}, {@code Map}).
     *
     * @throws IllegalArgumentException if the step has no such parameter, with the one meant
     */
    default Object paramValue(String name) {
        Map<String, Object> params = params();
        if (!params.containsKey(name)) {
            throw new IllegalArgumentException("step `" + stepId() + "` has no param `" + name + "`"
                    + Suggest.didYouMean(name, params.keySet()) + "; its params: " + String.join(", ", params.keySet()));
        }
        return params.get(name);
    }

    /**
     * A parameter as a {@code type}: a record or a bean (from a map), an enum (by name), a
     * java.time value (from its ISO-8601 text), a number of any width.
     *
     * <pre>{@code
     * LocalDate day = ctx.param("date", LocalDate.class);
     * }</pre>
     *
     * @throws IllegalArgumentException if there is no such parameter, or it does not convert
     */
    default <T> T param(String name, Class<T> type) {
        return JsonValues.convert(paramValue(name), type, "param `" + name + "`");
    }

    /** A parameter that may be absent (or null): its value in its JSON form, if it has one. */
    default Optional<Object> optionalParam(String name) {
        return Optional.ofNullable(params().get(name));
    }

    /**
     * The parameters this step sees: the run's parameters (the workflow's defaults with the
     * run's overrides), then the step's own {@code params}, which win.
     */
    Map<String, Object> params();

    /**
     * An output of the upstream step {@code stepId}, in its JSON form.
     *
     * @throws IllegalArgumentException if no upstream step has that output, with the one meant
     */
    Object input(String stepId, String key);

    /** {@link #input(String, String)} as a {@code type}, converted as {@link #param(String, Class)} does. */
    default <T> T input(String stepId, String key, Class<T> type) {
        return JsonValues.convert(input(stepId, key), type, "input `" + stepId + "." + key + "`");
    }

    /** An output of the upstream step {@code stepId} that may be absent (or null). */
    default Optional<Object> optionalInput(String stepId, String key) {
        Map<String, Object> outputs = inputs().get(stepId);
        return outputs == null ? Optional.empty() : Optional.ofNullable(outputs.get(key));
    }

    /**
     * Every output of the direct upstream steps, by step id then key (steps without outputs are
     * absent); unmodifiable.
     */
    default Map<String, Map<String, Object>> inputs() {
        throw new UnsupportedOperationException("inputs() is not implemented by " + getClass().getName());
    }

    /**
     * Sets an output, for downstream steps ({@link #input}) and expressions ({@code ${step.key}}):
     * a String, a number, a Boolean, a List or a Map, or what has a JSON form: a record or a bean
     * (a map of its properties), an enum (its name), a java.time value (ISO-8601 text), an
     * {@code Optional} (its value, or null).
     *
     * @throws IllegalArgumentException at once, naming the key and the type, for a value with no
     *     JSON form (NaN, a cycle, an object without properties)
     */
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
