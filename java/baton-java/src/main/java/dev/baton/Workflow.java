package dev.baton;

import com.fasterxml.jackson.databind.JsonNode;
import dev.baton.internal.Durations;
import dev.baton.internal.Envelope;
import dev.baton.internal.JsonValues;
import dev.baton.internal.NativeBridge;
import dev.baton.internal.NativeLoader;
import dev.baton.internal.WorkflowJson;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.ZoneId;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.function.Consumer;
import java.util.regex.Pattern;

/**
 * A workflow definition: parameters and a graph of steps. It is the engine's JSON model
 * ({@link #toJson()}, {@link #fromJson(String)}) plus the code of its Java steps
 * ({@link #javaSteps()}). Immutable and thread safe.
 *
 * <pre>{@code
 * Workflow etl = Workflow.named("nightly-etl")
 *     .param("date", "2026-11-24")
 *     .step("extract", s -> s.java(ctx -> ctx.output("rows", 42L))
 *         .retry(Retry.exponential(3, Duration.ofSeconds(1))).timeout(Duration.ofMinutes(5)))
 *     .step("transform", s -> s.dependsOn("extract").java(ctx -> {}))
 *     .step("load", s -> s.dependsOn("transform").shell("echo load ${date}"))
 *     .build();
 * }</pre>
 *
 * <p>{@link Builder#build()} checks only what it can see cheaply (ids, kinds, durations); the
 * engine checks the rest (unknown dependencies, cycles, expressions) when it is given the
 * workflow, and reports every problem at once either way.
 */
public final class Workflow {

    private static final Pattern ID = Pattern.compile("[A-Za-z0-9_.-]+");

    private final String id;
    private final String description;
    private final Map<String, Object> params;
    private final Integer maxParallel;
    private final Duration timeout;
    private final Duration signalRetention;
    private final List<Step> steps;
    private final List<WorkflowTrigger> triggers;
    private final RunStrategy runStrategy;
    private final Integer maxConcurrentRuns;
    /** Java step code by the workflow id the engine runs the step under, then step id. */
    private final Map<String, Map<String, JavaStep>> code;

    private Workflow(Builder b, List<Step> steps, Map<String, Map<String, JavaStep>> code) {
        this.id = b.id;
        this.description = b.description;
        this.params = Collections.unmodifiableMap(new LinkedHashMap<>(b.params));
        this.maxParallel = b.maxParallel;
        this.timeout = b.timeout;
        this.signalRetention = b.signalRetention;
        this.steps = List.copyOf(steps);
        this.triggers = List.copyOf(b.triggers);
        this.runStrategy = b.runStrategy;
        this.maxConcurrentRuns = b.maxConcurrentRuns;
        this.code = frozen(code);
    }

    private Workflow(Workflow w, Map<String, Map<String, JavaStep>> code) {
        this.id = w.id;
        this.description = w.description;
        this.params = w.params;
        this.maxParallel = w.maxParallel;
        this.timeout = w.timeout;
        this.signalRetention = w.signalRetention;
        this.steps = w.steps;
        this.triggers = w.triggers;
        this.runStrategy = w.runStrategy;
        this.maxConcurrentRuns = w.maxConcurrentRuns;
        this.code = frozen(code);
    }

    private static Map<String, Map<String, JavaStep>> frozen(Map<String, Map<String, JavaStep>> code) {
        Map<String, Map<String, JavaStep>> copy = new LinkedHashMap<>();
        code.forEach((workflowId, steps) -> copy.put(workflowId, Collections.unmodifiableMap(new LinkedHashMap<>(steps))));
        return Collections.unmodifiableMap(copy);
    }

    /** Starts a workflow with id {@code id} ({@code [A-Za-z0-9_.-]+}). */
    public static Builder named(String id) {
        return new Builder(id);
    }

    /**
     * Reads the engine's JSON form. Java steps come without code: attach it with
     * {@link #bind(String, JavaStep)}.
     *
     * @throws WorkflowDefinitionException listing every problem: bad JSON, unknown fields,
     *     wrong types, and what {@link Builder#build()} checks
     */
    public static Workflow fromJson(String json) {
        return WorkflowJson.read(json);
    }

    /**
     * Reads a YAML file of the engine's model (as {@code baton run} reads it). Java steps come
     * without code: attach it with {@link #bind(String, JavaStep)}, or register the workflow as
     * is and bind later. Needs the native engine (the parser is the engine's).
     *
     * <pre>{@code
     * Workflow etl = Workflow.fromYaml(Path.of("workflows/etl.yaml"))
     *     .bind("extract", ctx -> ctx.output("rows", 42L));
     * }</pre>
     *
     * @throws WorkflowDefinitionException listing the problems, each with the file, line and
     *     column ({@link DefinitionError#line()})
     * @throws java.io.UncheckedIOException if the file cannot be read
     */
    public static Workflow fromYaml(Path file) {
        Objects.requireNonNull(file, "file");
        String text;
        try {
            text = Files.readString(file);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read the workflow " + file + ": " + e.getMessage(), e);
        }
        return fromYaml(text, file.toString());
    }

    /**
     * Reads YAML text of the engine's model; {@code sourceName} names it in errors (a file name).
     *
     * @throws WorkflowDefinitionException listing the problems, each with its line and column
     */
    public static Workflow fromYaml(String yaml, String sourceName) {
        Objects.requireNonNull(yaml, "yaml");
        NativeLoader.load();
        JsonNode json = Envelope.unwrap(NativeBridge.toJson(yaml, sourceName, true));
        return fromJson(json.toString());
    }

    /** The engine's JSON form: absent fields omitted, parameters and steps in their order. */
    public String toJson() {
        return WorkflowJson.write(this);
    }

    /**
     * A copy of this workflow in which the Java step {@code stepId} runs {@code code}. A step in
     * the body of a loop is named by its path, as errors name it: {@code "per_partition/process"}.
     *
     * @throws IllegalArgumentException if there is no such step, or it is not a {@code java} step
     */
    public Workflow bind(String stepId, JavaStep code) {
        Objects.requireNonNull(stepId, "stepId");
        Objects.requireNonNull(code, "code");
        String[] path = stepId.split("/");
        List<Step> scope = steps;
        String workflowId = id;
        Step step = null;
        for (int i = 0; i < path.length; i++) {
            String name = path[i];
            step = scope.stream().filter(s -> s.id().equals(name)).findFirst().orElseThrow(() ->
                    new IllegalArgumentException("workflow `" + id + "` has no step `" + stepId + "`"));
            if (i < path.length - 1) {
                workflowId = workflowId + "." + name;
                scope = step.body();
            }
        }
        if (!step.isJava()) {
            throw new IllegalArgumentException("step `" + stepId + "` is a `" + step.kind() + "` step, not a java step");
        }
        Map<String, Map<String, JavaStep>> bound = new LinkedHashMap<>(this.code);
        Map<String, JavaStep> steps = new LinkedHashMap<>(bound.getOrDefault(workflowId, Map.of()));
        steps.put(step.id(), code);
        bound.put(workflowId, steps);
        return new Workflow(this, bound);
    }

    public String id() {
        return id;
    }

    public Optional<String> description() {
        return Optional.ofNullable(description);
    }

    /**
     * Parameters and their default values, in their order and their JSON form: integers are
     * {@code Long}, floats {@code Double}, lists and maps unmodifiable.
     */
    public Map<String, Object> params() {
        return params;
    }

    /** How many steps of one run may run at once (the engine's default: the number of cores). */
    public OptionalInt maxParallel() {
        return maxParallel == null ? OptionalInt.empty() : OptionalInt.of(maxParallel);
    }

    /** The limit on a whole run. */
    public Optional<Duration> timeout() {
        return Optional.ofNullable(timeout);
    }

    /** How long ago a signal may have been sent and still match a {@code waitSignal} step (the engine's default: 1 day). */
    public Optional<Duration> signalRetention() {
        return Optional.ofNullable(signalRetention);
    }

    /** What starts runs on its own once registered: cron schedules and signals, in order. */
    public List<WorkflowTrigger> triggers() {
        return triggers;
    }

    /** How a new run relates to the runs already going on (default {@link RunStrategy#PARALLEL}). */
    public RunStrategy runStrategy() {
        return runStrategy;
    }

    /** Runs at once under {@link RunStrategy#PARALLEL} (default: no limit). */
    public OptionalInt maxConcurrentRuns() {
        return maxConcurrentRuns == null ? OptionalInt.empty() : OptionalInt.of(maxConcurrentRuns);
    }

    /** The steps, in definition order. */
    public List<Step> steps() {
        return steps;
    }

    /** The step with id {@code stepId}, if there is one. */
    public Optional<Step> step(String stepId) {
        return steps.stream().filter(s -> s.id().equals(stepId)).findFirst();
    }

    /**
     * The code of each Java step that has some, by step id. A Java step read with
     * {@link #fromJson} has none until {@link #bind bound}.
     */
    public Map<String, JavaStep> javaSteps() {
        return code.getOrDefault(id, Map.of());
    }

    /**
     * The code of every Java step, loop bodies included, by the workflow id the engine runs it
     * under, then step id: this workflow's id for its own steps, {@code <id>.<step>} for the body
     * of the loop {@code step} (and so on for nested bodies). What {@link Baton#register} binds.
     */
    public Map<String, Map<String, JavaStep>> javaStepsByWorkflow() {
        return code;
    }

    @Override
    public String toString() {
        return "Workflow[" + id + ", " + steps.size() + (steps.size() == 1 ? " step]" : " steps]");
    }

    /** What is wrong with {@code id} as the id of {@code what}, or {@code null} if nothing is. */
    static String idProblem(String id, String what) {
        if (id == null) {
            return what + " has no id";
        }
        if (id.isBlank()) {
            return "the id of " + what + " is blank";
        }
        if (!ID.matcher(id).matches()) {
            return "`" + id + "` is not a valid id: use letters, digits, `_`, `.` and `-`";
        }
        return null;
    }

    /**
     * Builds a {@link Workflow}. Every method returns this builder; {@link #build()} reports
     * every problem found at once. A builder may build several workflows, each independent of
     * later changes to it.
     *
     * <pre>{@code
     * Workflow w = Workflow.named("backfill")
     *     .description("reloads a month")
     *     .param("month", "2026-10")
     *     .maxParallel(4)
     *     .timeout(Duration.ofHours(6))
     *     .step("load", s -> s.shell("./load.sh ${month}"))
     *     .build();
     * }</pre>
     */
    public static final class Builder {
        private final String id;
        private String description;
        private final Map<String, Object> params = new LinkedHashMap<>();
        private Integer maxParallel;
        private Duration timeout;
        private Duration signalRetention;
        private final List<Step.Builder> steps = new ArrayList<>();
        private final List<WorkflowTrigger> triggers = new ArrayList<>();
        private RunStrategy runStrategy = RunStrategy.PARALLEL;
        private Integer maxConcurrentRuns;

        private Builder(String id) {
            this.id = id;
        }

        public Builder description(String description) {
            this.description = Objects.requireNonNull(description, "description");
            return this;
        }

        /**
         * A parameter and its default value: a String, number, Boolean, or a List or Map of
         * them. Steps refer to it as {@code ${name}}; a run may override it.
         *
         * @throws IllegalArgumentException if JSON cannot carry the value
         */
        public Builder param(String name, Object value) {
            JsonValues.putParam(params, name, value, "param `" + name + "`");
            return this;
        }

        /** How many steps of one run may run at once; at least 1. */
        public Builder maxParallel(int maxParallel) {
            this.maxParallel = maxParallel;
            return this;
        }

        /** The limit on a whole run. */
        public Builder timeout(Duration timeout) {
            this.timeout = Objects.requireNonNull(timeout, "timeout");
            return this;
        }

        /** How long ago a signal may have been sent and still match a {@code waitSignal} step (default 1 day). */
        public Builder signalRetention(Duration retention) {
            this.signalRetention = Objects.requireNonNull(retention, "retention");
            return this;
        }

        /**
         * Adds a trigger: once registered (and enabled), the engine's scheduler starts runs by it.
         *
         * <pre>{@code
         * .trigger(WorkflowTrigger.cron("0 2 * * *").param("date", "${format_date(trigger.scheduled_time, 'yyyy-MM-dd')}"))
         * }</pre>
         */
        public Builder trigger(WorkflowTrigger trigger) {
            triggers.add(Objects.requireNonNull(trigger, "trigger"));
            return this;
        }

        /**
         * A cron trigger in UTC: {@code .cron("0 2 * * *")} starts a run at 02:00 every day. See
         * {@link WorkflowTrigger#cron} for parameters and misfires.
         */
        public Builder cron(String expression) {
            return trigger(WorkflowTrigger.cron(expression));
        }

        /** A cron trigger read in {@code zone}: {@code .cron("0 2 * * *", ZoneId.of("Europe/Paris"))}. */
        public Builder cron(String expression, ZoneId zone) {
            return trigger(WorkflowTrigger.cron(expression).zone(zone));
        }

        /**
         * A signal trigger: a run for each signal {@code name} that {@code match} accepts
         * ({@code null}: every one), e.g. {@code .onSignal("table_ready", "${signal.table == 'events'}")}.
         */
        public Builder onSignal(String name, String match) {
            WorkflowTrigger t = WorkflowTrigger.signal(name);
            return trigger(match == null ? t : t.match(match));
        }

        /** How a new run relates to the runs going on: {@code .runStrategy(RunStrategy.SEQUENTIAL)}. */
        public Builder runStrategy(RunStrategy strategy) {
            this.runStrategy = Objects.requireNonNull(strategy, "strategy");
            return this;
        }

        /**
         * {@link #runStrategy(RunStrategy)} by its name in YAML: {@code .runStrategy("sequential")}.
         *
         * @throws IllegalArgumentException for an unknown name
         */
        public Builder runStrategy(String strategy) {
            return runStrategy(RunStrategy.of(Objects.requireNonNull(strategy, "strategy")));
        }

        /** Runs at once under {@link RunStrategy#PARALLEL}; at least 1: {@code .maxConcurrentRuns(2)}. */
        public Builder maxConcurrentRuns(int max) {
            this.maxConcurrentRuns = max;
            return this;
        }

        /**
         * Adds the step {@code id}, configured by {@code step}.
         *
         * <pre>{@code
         * .step("load", s -> s.dependsOn("transform").shell("./load.sh ${date}"))
         * }</pre>
         */
        public Builder step(String id, Consumer<Step.Builder> step) {
            Objects.requireNonNull(step, "step");
            Step.Builder builder = new Step.Builder(id);
            step.accept(builder);
            steps.add(builder);
            return this;
        }

        /**
         * The workflow.
         *
         * @throws WorkflowDefinitionException listing every problem: missing or malformed ids,
         *     duplicate step ids, steps without a kind, durations that cannot be written
         */
        public Workflow build() {
            List<DefinitionError> errors = new ArrayList<>();
            String idProblem = idProblem(id, "the workflow");
            if (idProblem != null) {
                errors.add(new DefinitionError(null, "id", idProblem));
            }
            if (maxParallel != null && maxParallel < 1) {
                errors.add(new DefinitionError(null, "max_parallel", "must be at least 1, not " + maxParallel));
            }
            if (maxConcurrentRuns != null && maxConcurrentRuns < 1) {
                errors.add(new DefinitionError(null, "max_concurrent_runs", "must be at least 1, not " + maxConcurrentRuns));
            }
            if (timeout != null && Durations.problem(timeout) != null) {
                errors.add(new DefinitionError(null, "timeout", Durations.problem(timeout)));
            }
            if (signalRetention != null && Durations.problem(signalRetention) != null) {
                errors.add(new DefinitionError(null, "signal_retention", Durations.problem(signalRetention)));
            }
            Step.Builder.checkAll(steps, errors);
            if (!errors.isEmpty()) {
                throw new WorkflowDefinitionException(id, errors);
            }
            List<Step> built = new ArrayList<>(steps.size());
            for (Step.Builder step : steps) {
                built.add(step.build());
            }
            Map<String, Map<String, JavaStep>> code = new LinkedHashMap<>();
            Step.Builder.collectCode(id, steps, code);
            return new Workflow(this, built, code);
        }
    }
}
