package dev.baton;

import java.util.Set;

/**
 * The host-defined step types of one {@link Baton}: {@link Baton#stepTypes()}.
 *
 * <pre>{@code
 * baton.stepTypes().register("spark_sql", StepType.of(ctx -> runSql(ctx.param("query")))
 *     .param("query").param("cluster", "default"));
 * }</pre>
 */
public interface StepTypes {

    /**
     * Registers (or replaces) the step type {@code name}, then resumes the unfinished runs that
     * were waiting for it (see {@link Baton#recover()}).
     *
     * @throws WorkflowDefinitionException if {@code name} is a built-in kind ({@code shell},
     *     {@code java}, ...) or is not made of letters, digits, {@code _}, {@code .} and {@code -}
     * @throws IllegalStateException if the Baton is closed
     */
    void register(String name, StepType type);

    /** The names registered so far. */
    Set<String> names();
}
