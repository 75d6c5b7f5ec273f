package dev.baton;

import dev.baton.internal.JsonValues;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * A step type the host application defines: its code and the parameters its steps take, each
 * required or with a default. Register it with {@link StepTypes#register}; workflows (DSL, YAML
 * or JSON) then use it as {@code type: <name>}. The engine checks that such steps give every
 * required parameter and no unknown one, and fills in the defaults. Immutable: {@link #param}
 * returns a copy.
 *
 * <pre>{@code
 * baton.stepTypes().register("spark_sql", StepType.of(ctx -> {
 *         ctx.output("rows", spark.sql(ctx.param("query")).count());
 *     })
 *     .param("query")                  // required
 *     .param("cluster", "default"));   // optional, with its default
 *
 * Workflow.named("report")
 *     .step("count", s -> s.type("spark_sql").param("query", "select * from sales where day = '${date}'"))
 *     .build();
 * }</pre>
 *
 * <p>The code sees the run's parameters overlaid with the step's ({@link StepContext#params()}),
 * and runs like a Java step: on the {@link BatonOptions#executor() executor}, with retries,
 * timeouts and outputs.
 */
public final class StepType {

    private final JavaStep handler;
    private final Map<String, Object> params;

    private StepType(JavaStep handler, Map<String, Object> params) {
        this.handler = handler;
        this.params = Collections.unmodifiableMap(params);
    }

    /** A step type running {@code handler}, with no parameters yet. */
    public static StepType of(JavaStep handler) {
        return new StepType(Objects.requireNonNull(handler, "handler"), new LinkedHashMap<>());
    }

    /** A copy that also takes the required parameter {@code name}. */
    public StepType param(String name) {
        Objects.requireNonNull(name, "name");
        Map<String, Object> copy = new LinkedHashMap<>(params);
        copy.put(name, null);
        return new StepType(handler, copy);
    }

    /**
     * A copy that also takes the parameter {@code name}, {@code defaultValue} when a step does
     * not give it: a String, number, Boolean, or a List or Map of them.
     *
     * @throws NullPointerException for a null default: use {@link #param(String)} for a
     *     required parameter
     * @throws IllegalArgumentException if JSON cannot carry the value
     */
    public StepType param(String name, Object defaultValue) {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(defaultValue, () -> "the default of `" + name + "` is null: use param(\"" + name
                + "\") for a required parameter");
        Map<String, Object> copy = new LinkedHashMap<>(params);
        try {
            copy.put(name, JsonValues.normalize(defaultValue));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("param `" + name + "`: " + e.getMessage(), e);
        }
        return new StepType(handler, copy);
    }

    /** The code of the type's steps. */
    public JavaStep handler() {
        return handler;
    }

    /** The parameters, in order, with their defaults; {@code null} marks a required one. */
    public Map<String, Object> params() {
        return params;
    }

    @Override
    public String toString() {
        return "StepType" + params.keySet();
    }
}
