package dev.baton;

import dev.baton.internal.Durations;
import dev.baton.internal.JsonValues;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.OptionalLong;
import java.util.function.Consumer;

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
 * <p>Control flow steps run a nested body of steps, or a registered workflow:
 *
 * <pre>{@code
 * .step("per_partition", s -> s.dependsOn("list")
 *     .foreach("${range(0, list.count)}", "partition", body -> body
 *         .step("process", p -> p.java(ctx -> ctx.output("rows", 100L))))
 *     .maxParallel(4))
 * .step("events_ready", s -> s.waitSignal("table_ready").match("${signal.table == 'events'}"))
 * .step("load", s -> s.subworkflow("load-table").param("table", "events")
 *     .emitSignal("loaded", Map.of("table", "events")))
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
    /** The kind of a step that runs its body once per item of a list. */
    public static final String FOREACH = "foreach";
    /** The kind of a step that runs its body while a condition holds. */
    public static final String WHILE = "while";
    /** The kind of a step that runs a registered workflow, or a definition file, as a child run. */
    public static final String SUBWORKFLOW = "subworkflow";
    /** The kind of a step that waits for a signal ({@link Baton#signal}). */
    public static final String WAIT_SIGNAL = "wait_signal";

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
    private final String over;
    private final String as;
    private final List<Step> body;
    private final String workflow;
    private final String file;
    private final Integer maxParallel;
    private final boolean failFast;
    private final String condition;
    private final Long maxIterations;
    private final String signal;
    private final String match;
    private final List<EmitSignal> emitSignals;
    private final List<String> tags;

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
        this.over = b.over;
        this.as = b.as;
        this.body = b.body == null ? List.of() : b.body.steps.stream().map(Builder::build).toList();
        this.workflow = b.workflow;
        this.file = b.file;
        this.maxParallel = b.maxParallel;
        this.failFast = b.failFast;
        this.condition = b.condition;
        this.maxIterations = b.maxIterations;
        this.signal = b.signal;
        this.match = b.match;
        this.emitSignals = List.copyOf(b.emitSignals);
        this.tags = List.copyOf(b.tags);
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

    /** The list a {@code foreach} step iterates over, {@code ${...}}. */
    public Optional<String> over() {
        return Optional.ofNullable(over);
    }

    /** The name of the current item in a {@code foreach} body (the engine's default: {@code item}). */
    public Optional<String> as() {
        return Optional.ofNullable(as);
    }

    /** The nested steps a {@code foreach} or {@code while} step runs per iteration; empty if none. */
    public List<Step> body() {
        return body;
    }

    /** The registered workflow a {@code subworkflow} step runs, or a loop runs as its body. */
    public Optional<String> workflow() {
        return Optional.ofNullable(workflow);
    }

    /** The definition file a {@code subworkflow} step runs, as written (relative to the workflow's file). */
    public Optional<String> file() {
        return Optional.ofNullable(file);
    }

    /** Iterations of a {@code foreach} running at once. */
    public OptionalInt maxParallel() {
        return maxParallel == null ? OptionalInt.empty() : OptionalInt.of(maxParallel);
    }

    /** Whether the first failed iteration of a {@code foreach} stops the others. */
    public boolean failFast() {
        return failFast;
    }

    /** What keeps a {@code while} step going, {@code ${...}}. */
    public Optional<String> condition() {
        return Optional.ofNullable(condition);
    }

    /** The most iterations a {@code while} step may run. */
    public OptionalLong maxIterations() {
        return maxIterations == null ? OptionalLong.empty() : OptionalLong.of(maxIterations);
    }

    /** The signal a {@code wait_signal} step waits for. */
    public Optional<String> signal() {
        return Optional.ofNullable(signal);
    }

    /** Which signals a {@code wait_signal} step accepts, {@code ${...}} over {@code signal.<param>}. */
    public Optional<String> match() {
        return Optional.ofNullable(match);
    }

    /** The signals the step sends when it succeeds, in order. */
    public List<EmitSignal> emitSignals() {
        return emitSignals;
    }

    /** The step's tags: {@link Baton#limit} caps the running steps with a tag across all runs. */
    public List<String> tags() {
        return tags;
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
                && trigger == s.trigger
                && Objects.equals(over, s.over)
                && Objects.equals(as, s.as)
                && body.equals(s.body)
                && Objects.equals(workflow, s.workflow)
                && Objects.equals(file, s.file)
                && Objects.equals(maxParallel, s.maxParallel)
                && failFast == s.failFast
                && Objects.equals(condition, s.condition)
                && Objects.equals(maxIterations, s.maxIterations)
                && Objects.equals(signal, s.signal)
                && Objects.equals(match, s.match)
                && emitSignals.equals(s.emitSignals)
                && tags.equals(s.tags);
    }

    @Override
    public int hashCode() {
        return Objects.hash(id, kind, command, duration, params, dependsOn, body);
    }

    /**
     * A signal a step sends when it succeeds. String values of {@code params} may use
     * {@code ${...}}, with the step's own outputs visible.
     *
     * @param name the signal's name
     * @param params its parameters, in their JSON form
     */
    public record EmitSignal(String name, Map<String, Object> params) {
        public EmitSignal {
            Objects.requireNonNull(name, "name");
            params = Collections.unmodifiableMap(new LinkedHashMap<>(params));
        }
    }

    /**
     * The nested steps of a {@code foreach} or {@code while} step: a small DAG built like a
     * workflow's, run once per iteration. Its steps see the loop's item (or {@code iteration})
     * as a parameter, and the outer workflow's parameters and upstream steps in {@code ${...}}.
     *
     * <pre>{@code
     * body -> body
     *     .step("extract", s -> s.java(ctx -> ctx.output("rows", 100L)))
     *     .step("load", s -> s.dependsOn("extract").shell("echo ${extract.rows}"))
     * }</pre>
     */
    public static final class Body {
        private final List<Builder> steps = new ArrayList<>();

        Body() {}

        /** Adds the step {@code id}, configured by {@code step}, as {@link Workflow.Builder#step} does. */
        public Body step(String id, Consumer<Builder> step) {
            Objects.requireNonNull(step, "step");
            Builder builder = new Builder(id);
            step.accept(builder);
            steps.add(builder);
            return this;
        }

        List<Builder> steps() {
            return steps;
        }
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
        private String over;
        private String as;
        private Body body;
        private String workflow;
        private String file;
        private Integer maxParallel;
        private boolean failFast;
        private String condition;
        private Long maxIterations;
        private String signal;
        private String match;
        private final List<EmitSignal> emitSignals = new ArrayList<>();
        private final List<String> tags = new ArrayList<>();

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

        /**
         * A {@code foreach} step: runs {@code body} once per item of {@code over} (a list
         * expression, {@code ${...}}), the item being the parameter {@code as} of the body.
         *
         * <pre>{@code
         * s.foreach("${partitions}", "partition", body -> body
         *     .step("process", p -> p.java(ctx -> ctx.param("partition"))))
         * }</pre>
         */
        public Builder foreach(String over, String as, Consumer<Body> body) {
            return type(FOREACH).over(over).as(as).steps(body);
        }

        /** A {@code foreach} step whose body is the registered workflow {@code workflowId}. */
        public Builder foreach(String over, String as, String workflowId) {
            return type(FOREACH).over(over).as(as).workflow(workflowId);
        }

        /**
         * A {@code while} step: runs {@code body} while {@code condition} ({@code ${...}},
         * evaluated before each iteration) holds. The body sees {@code iteration}, from 0, and
         * the outputs of its previous iteration.
         */
        public Builder whileLoop(String condition, Consumer<Body> body) {
            return type(WHILE).condition(condition).steps(body);
        }

        /** A {@code while} step whose body is the registered workflow {@code workflowId}. */
        public Builder whileLoop(String condition, String workflowId) {
            return type(WHILE).condition(condition).workflow(workflowId);
        }

        /**
         * A {@code subworkflow} step: runs the registered workflow {@code workflowId} as a child
         * run, with the step's {@link #param params}; downstream steps see its steps' outputs as
         * {@code ${step.child_step.output}}.
         */
        public Builder subworkflow(String workflowId) {
            return type(SUBWORKFLOW).workflow(workflowId);
        }

        /** A {@code subworkflow} step running the definition in {@code file}. */
        public Builder subworkflowFile(Path file) {
            return type(SUBWORKFLOW).file(Objects.requireNonNull(file, "file").toString());
        }

        /** A {@code wait_signal} step: waits for the signal {@code name} (see {@link #match}). */
        public Builder waitSignal(String name) {
            return type(WAIT_SIGNAL).signal(name);
        }

        /** The {@code over} field: the list a {@code foreach} iterates over; {@link #foreach} sets it. */
        public Builder over(String over) {
            this.over = Objects.requireNonNull(over, "over");
            return this;
        }

        /** The {@code as} field: the name of a {@code foreach} body's item; {@link #foreach} sets it. */
        public Builder as(String as) {
            this.as = Objects.requireNonNull(as, "as");
            return this;
        }

        /** The nested {@code steps} of a loop; {@link #foreach} and {@link #whileLoop} set them. */
        public Builder steps(Consumer<Body> body) {
            Objects.requireNonNull(body, "body");
            this.body = new Body();
            body.accept(this.body);
            return this;
        }

        /** The {@code workflow} field: a registered workflow a loop or subworkflow runs. */
        public Builder workflow(String workflowId) {
            this.workflow = Objects.requireNonNull(workflowId, "workflowId");
            return this;
        }

        /** The {@code file} field of a {@code subworkflow} step, as written; {@link #subworkflowFile} sets it. */
        public Builder file(String file) {
            this.file = Objects.requireNonNull(file, "file");
            return this;
        }

        /** Iterations of a {@code foreach} running at once (default: the workflow's max parallel); at least 1. */
        public Builder maxParallel(int maxParallel) {
            this.maxParallel = maxParallel;
            return this;
        }

        /** Whether the first failed iteration of a {@code foreach} stops the others (default false). */
        public Builder failFast(boolean failFast) {
            this.failFast = failFast;
            return this;
        }

        /** The {@code condition} of a {@code while} step; {@link #whileLoop} sets it. */
        public Builder condition(String condition) {
            this.condition = Objects.requireNonNull(condition, "condition");
            return this;
        }

        /** The most iterations a {@code while} step may run. */
        public Builder maxIterations(long maxIterations) {
            this.maxIterations = maxIterations;
            return this;
        }

        /** The {@code signal} a {@code wait_signal} step waits for; {@link #waitSignal} sets it. */
        public Builder signal(String name) {
            this.signal = Objects.requireNonNull(name, "name");
            return this;
        }

        /**
         * Which signals a {@code wait_signal} step accepts: an expression over
         * {@code signal.<param>}, e.g. {@code "${signal.table == 'events' && signal.date == date}"}.
         */
        public Builder match(String expression) {
            this.match = Objects.requireNonNull(expression, "expression");
            return this;
        }

        /**
         * Sends the signal {@code name} when this step succeeds; repeatable. String values of
         * {@code params} may use {@code ${...}}, the step's own outputs included.
         *
         * @throws IllegalArgumentException if JSON cannot carry a value
         */
        public Builder emitSignal(String name, Map<String, ?> params) {
            Objects.requireNonNull(name, "name");
            Objects.requireNonNull(params, "params");
            Map<String, Object> normalized = new LinkedHashMap<>();
            params.forEach((k, v) -> JsonValues.putParam(normalized, k, v,
                    "step `" + id + "`, signal `" + name + "`, param `" + k + "`"));
            emitSignals.add(new EmitSignal(name, normalized));
            return this;
        }

        /**
         * Tags the step; repeatable. {@link Baton#limit(String, int)} caps how many steps with a
         * tag run at once across all runs: {@code .tags("warehouse")}.
         */
        public Builder tags(String... tags) {
            for (String tag : Objects.requireNonNull(tags, "tags")) {
                this.tags.add(Objects.requireNonNull(tag, "tag"));
            }
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
            if (maxParallel != null && maxParallel < 1) {
                errors.add(new DefinitionError(stepId, prefix + "max_parallel", "must be at least 1, not " + maxParallel));
            }
            if (maxIterations != null && maxIterations < 0) {
                errors.add(new DefinitionError(stepId, prefix + "max_iterations", "must not be negative, not " + maxIterations));
            }
            if (body != null) {
                // Named as the engine names them: `outer/inner`, field `steps.N.<field>`.
                List<DefinitionError> inner = new ArrayList<>();
                checkAll(body.steps, inner);
                for (DefinitionError e : inner) {
                    String innerPrefix = e.field() != null && e.field().startsWith("steps.") ? "" : null;
                    int at = e.stepId() == null ? -1 : indexOf(body.steps, e.stepId());
                    String field = innerPrefix != null || at < 0 ? e.field() : "steps." + at + "." + e.field();
                    String where = e.stepId() == null ? stepId : stepId + "/" + e.stepId();
                    errors.add(new DefinitionError(where, prefix + field, e.message()));
                }
            }
        }

        private static int indexOf(List<Builder> steps, String stepId) {
            for (int i = 0; i < steps.size(); i++) {
                if (stepId.equals(steps.get(i).id)) {
                    return i;
                }
            }
            return -1;
        }

        /** Checks a list of steps (a workflow's or a body's): each step, and duplicate ids. */
        static void checkAll(List<Builder> steps, List<DefinitionError> errors) {
            Map<String, Integer> firstIndex = new java.util.HashMap<>();
            for (int i = 0; i < steps.size(); i++) {
                Builder step = steps.get(i);
                step.check(i, errors);
                if (step.id != null) {
                    Integer first = firstIndex.putIfAbsent(step.id, i);
                    if (first != null) {
                        errors.add(new DefinitionError(step.id, "id",
                                "duplicate step id: steps " + (first + 1) + " and " + (i + 1) + " are both `" + step.id + "`"));
                    }
                }
            }
        }

        /**
         * Adds the code of the Java steps among {@code steps} to {@code out}, by the workflow id
         * the engine runs them under: {@code workflowId}, and {@code <workflowId>.<step>} for
         * the body of a loop (recursively).
         */
        static void collectCode(String workflowId, List<Builder> steps, Map<String, Map<String, JavaStep>> out) {
            for (Builder step : steps) {
                if (step.code() != null) {
                    out.computeIfAbsent(workflowId, k -> new LinkedHashMap<>()).put(step.id, step.code());
                }
                if (step.body != null) {
                    collectCode(workflowId + "." + step.id, step.body.steps, out);
                }
            }
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
