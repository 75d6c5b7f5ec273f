package dev.baton;

import dev.baton.internal.Durations;
import dev.baton.internal.JsonValues;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * One step of a {@link Workflow}, as the engine sees it: an id, a kind ({@code type}) and the
 * fields of the JSON model. Immutable; made by {@link Workflow.Builder#step}.
 *
 * <pre>{@code
 * Workflow.named("etl")
 *     .step("extract", s -> s.shell("./extract.sh ${date}")
 *         .retry(Retry.fixed(3, Duration.ofSeconds(10)))
 *         .timeout(Duration.ofMinutes(10)))
 *     .step("wait", s -> s.dependsOn("extract").sleep(Duration.ofSeconds(30)))
 *     .step("report", s -> s.dependsOn("wait").type("spark_sql").param("query", "select 1"))
 *     .build();
 * }</pre>
 *
 * <p>A {@code java} step's code is not part of the step: it is in {@link Workflow#javaSteps()}.
 */
public final class Step {

    /** The kind of a step that does nothing (a join point). */
    public static final String NOOP = "noop";
    /** The kind of a step that waits for its {@code duration}. */
    public static final String SLEEP = "sleep";
    /** The kind of a step that runs its {@code command} with {@code sh -c}. */
    public static final String SHELL = "shell";
    /** The kind of a step whose code is a {@link JavaStep}. */
    public static final String JAVA = "java";

    private final String id;
    private final String kind;
    private final String description;
    private final String command;
    private final Duration duration;
    private final Map<String, String> env;
    private final Map<String, Object> params;
    private final Retry retry;
    private final Duration timeout;
    private final List<String> dependsOn;
    private final FailureMode failureMode;
    private final String when;
    private final Trigger trigger;

    private Step(Builder b) {
        this.id = b.id;
        this.kind = b.kind;
        this.description = b.description;
        this.command = b.command;
        this.duration = b.duration;
        this.env = Collections.unmodifiableMap(new LinkedHashMap<>(b.env));
        this.params = Collections.unmodifiableMap(new LinkedHashMap<>(b.params));
        this.retry = b.retry;
        this.timeout = b.timeout;
        this.dependsOn = List.copyOf(b.dependsOn);
        this.failureMode = b.failureMode;
        this.when = b.when;
        this.trigger = b.trigger;
    }

    public String id() {
        return id;
    }

    /** The step kind, the JSON {@code type}: {@code noop}, {@code sleep}, {@code shell}, {@code java} or a host's. */
    public String kind() {
        return kind;
    }

    /** True for a step whose code is a {@link JavaStep}. */
    public boolean isJava() {
        return JAVA.equals(kind);
    }

    public Optional<String> description() {
        return Optional.ofNullable(description);
    }

    /** The shell command ({@code shell} steps). */
    public Optional<String> command() {
        return Optional.ofNullable(command);
    }

    /** How long to wait ({@code sleep} steps). */
    public Optional<Duration> duration() {
        return Optional.ofNullable(duration);
    }

    /** Environment variables, in the order set. */
    public Map<String, String> env() {
        return env;
    }

    /** The step's own parameters, in their JSON form (see {@link Workflow#params()}). */
    public Map<String, Object> params() {
        return params;
    }

    public Optional<Retry> retry() {
        return Optional.ofNullable(retry);
    }

    /** The limit on one attempt. */
    public Optional<Duration> timeout() {
        return Optional.ofNullable(timeout);
    }

    /** The ids of the steps this one runs after. */
    public List<String> dependsOn() {
        return dependsOn;
    }

    public FailureMode failureMode() {
        return failureMode;
    }

    /** The condition ({@code ${...}}) that must be true for the step to run. */
    public Optional<String> when() {
        return Optional.ofNullable(when);
    }

    public Trigger trigger() {
        return trigger;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Step s
                && id.equals(s.id)
                && kind.equals(s.kind)
                && Objects.equals(description, s.description)
                && Objects.equals(command, s.command)
                && Objects.equals(duration, s.duration)
                && env.equals(s.env)
                && params.equals(s.params)
                && Objects.equals(retry, s.retry)
                && Objects.equals(timeout, s.timeout)
                && dependsOn.equals(s.dependsOn)
                && failureMode == s.failureMode
                && Objects.equals(when, s.when)
                && trigger == s.trigger;
    }

    @Override
    public int hashCode() {
        return Objects.hash(id, kind, command, duration, params, dependsOn);
    }

    @Override
    public String toString() {
        return "Step[" + id + ": " + kind + (dependsOn.isEmpty() ? "" : " after " + dependsOn) + "]";
    }

    /**
     * Configures one step. Set its kind once ({@link #shell}, {@link #noop}, {@link #sleep},
     * {@link #java} or {@link #type}); everything else is optional. Problems with ids and kinds
     * are reported together by {@link Workflow.Builder#build()}; a {@code null} argument is a
     * {@link NullPointerException} at once.
     *
     * <pre>{@code
     * .step("load", s -> s.dependsOn("transform")
     *     .shell("./load.sh")
     *     .env("TARGET", "${target}")
     *     .timeout(Duration.ofMinutes(30))
     *     .failureMode(FailureMode.FAIL_IMMEDIATELY))
     * }</pre>
     */
    public static final class Builder {
        private final String id;
        private String kind;
        private final List<String> kindsSet = new ArrayList<>();
        private JavaStep code;
        private String description;
        private String command;
        private Duration duration;
        private final Map<String, String> env = new LinkedHashMap<>();
        private final Map<String, Object> params = new LinkedHashMap<>();
        private Retry retry;
        private Duration timeout;
        private final List<String> dependsOn = new ArrayList<>();
        private FailureMode failureMode = FailureMode.FAIL_AFTER_RUNNING;
        private String when;
        private Trigger trigger = Trigger.ALL_SUCCESS;

        Builder(String id) {
            this.id = id;
        }

        /** A {@code shell} step running {@code command} with {@code sh -c}; {@code ${...}} is substituted. */
        public Builder shell(String command) {
            return type(SHELL).command(command);
        }

        /** A {@code noop} step: it does nothing, and is useful to join branches. */
        public Builder noop() {
            return type(NOOP);
        }

        /** A {@code sleep} step, waiting {@code duration}. */
        public Builder sleep(Duration duration) {
            return type(SLEEP).duration(duration);
        }

        /** A {@code java} step running {@code code}. */
        public Builder java(JavaStep code) {
            this.code = Objects.requireNonNull(code, "code");
            return type(JAVA);
        }

        /** A step of a kind the host registered ({@code spark_sql}, ...); see {@link #param}. */
        public Builder type(String kind) {
            Objects.requireNonNull(kind, "kind");
            if (!kindsSet.contains(kind)) {
                kindsSet.add(kind);
            }
            this.kind = kind;
            return this;
        }

        /** The {@code command} field, for a host kind that takes one; {@link #shell} sets it too. */
        public Builder command(String command) {
            this.command = Objects.requireNonNull(command, "command");
            return this;
        }

        /** The {@code duration} field, for a host kind that takes one; {@link #sleep} sets it too. */
        public Builder duration(Duration duration) {
            this.duration = Objects.requireNonNull(duration, "duration");
            return this;
        }

        /**
         * A parameter of the step, for host kinds and Java steps: a String, number, Boolean, or
         * a List or Map of them. Strings may use {@code ${...}}.
         *
         * @throws IllegalArgumentException if JSON cannot carry the value
         */
        public Builder param(String name, Object value) {
            JsonValues.putParam(params, name, value, "step `" + id + "`, param `" + name + "`");
            return this;
        }

        /** Steps that must finish before this one starts; adds to those already given. */
        public Builder dependsOn(String... stepIds) {
            for (String stepId : stepIds) {
                dependsOn.add(Objects.requireNonNull(stepId, "stepId"));
            }
            return this;
        }

        /** How failed attempts are retried (by default they are not). */
        public Builder retry(Retry retry) {
            this.retry = Objects.requireNonNull(retry, "retry");
            return this;
        }

        /** The limit on one attempt. */
        public Builder timeout(Duration timeout) {
            this.timeout = Objects.requireNonNull(timeout, "timeout");
            return this;
        }

        /** An environment variable of the step's process; {@code ${...}} is substituted. */
        public Builder env(String name, String value) {
            env.put(Objects.requireNonNull(name, "name"), Objects.requireNonNull(value, "value"));
            return this;
        }

        /** What a failure of this step does to the run (default {@link FailureMode#FAIL_AFTER_RUNNING}). */
        public Builder failureMode(FailureMode failureMode) {
            this.failureMode = Objects.requireNonNull(failureMode, "failureMode");
            return this;
        }

        public Builder description(String description) {
            this.description = Objects.requireNonNull(description, "description");
            return this;
        }

        /** A condition, e.g. {@code "${extract.rows > 0}"}: false skips the step. */
        public Builder when(String condition) {
            this.when = Objects.requireNonNull(condition, "condition");
            return this;
        }

        /** Which outcomes of the upstream steps let this step run (default {@link Trigger#ALL_SUCCESS}). */
        public Builder trigger(Trigger trigger) {
            this.trigger = Objects.requireNonNull(trigger, "trigger");
            return this;
        }

        /** Adds this step's problems to {@code errors}; {@code index} is its position, from 0. */
        void check(int index, List<DefinitionError> errors) {
            String stepId = id;
            String prefix = id == null ? "steps." + index + "." : "";
            String idProblem = Workflow.idProblem(id, "step " + (index + 1));
            if (idProblem != null) {
                errors.add(new DefinitionError(stepId, prefix + "id", idProblem));
            }
            if (kindsSet.isEmpty()) {
                errors.add(new DefinitionError(stepId, prefix + "type",
                        "no step kind: call shell(), noop(), sleep(), java() or type()"));
            } else if (kindsSet.size() > 1) {
                errors.add(new DefinitionError(stepId, prefix + "type",
                        "the step kind is set more than once: " + String.join(", then ", kindsSet)));
            } else if (kind.isBlank()) {
                errors.add(new DefinitionError(stepId, prefix + "type", "the step kind is blank"));
            }
            checkDuration(stepId, prefix + "duration", duration, errors);
            checkDuration(stepId, prefix + "timeout", timeout, errors);
        }

        private static void checkDuration(String stepId, String field, Duration d, List<DefinitionError> errors) {
            String problem = d == null ? null : Durations.problem(d);
            if (problem != null) {
                errors.add(new DefinitionError(stepId, field, problem));
            }
        }

        String id() {
            return id;
        }

        /** The step's code if it is a Java step given code, else {@code null}. */
        JavaStep code() {
            return JAVA.equals(kind) ? code : null;
        }

        /** The step; only after {@link #check} found nothing. */
        Step build() {
            return new Step(this);
        }
    }
}
