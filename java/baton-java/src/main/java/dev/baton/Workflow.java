package dev.baton;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.baton.internal.Durations;
import dev.baton.internal.Envelope;
import dev.baton.internal.JsonCodec;
import dev.baton.internal.JsonValues;
import dev.baton.internal.NativeBridge;
import dev.baton.internal.NativeLoader;
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
 * <p>One model, one validator: the DSL ({@link Builder#build()}), {@link #fromJson} and
 * {@link #fromYaml} all hand the definition to the engine's core, which parses and checks it
 * (ids, kinds and their fields, durations, dependencies and cycles, {@code ${...}}, triggers)
 * and reports every problem at once. A {@code Workflow} holds the JSON the core gave back.
 * What only an engine knows, the step types a host registered and their parameters, is
 * checked by {@link Baton#register} and {@link Baton#validate}.
 */
public final class Workflow {

    /** The name {@link #fromJson(String)} gives its text, for positions; no file is named. */
    private static final String JSON_TEXT = "<json>";

    /** The core's JSON of the workflow; never changed once the workflow is made. */
    private final ObjectNode json;
    private final List<Step> steps;
    private final List<WorkflowTrigger> triggers;
    /** Java step code by the workflow id the engine runs the step under, then step id. */
    private final Map<String, Map<String, JavaStep>> code;

    private Workflow(ObjectNode json, Map<String, Map<String, JavaStep>> code) {
        this.json = json;
        this.steps = Step.list(json.get("steps"));
        List<WorkflowTrigger> triggers = new ArrayList<>();
        json.path("triggers").forEach(t -> triggers.add(new WorkflowTrigger((ObjectNode) t)));
        this.triggers = Collections.unmodifiableList(triggers);
        Map<String, Map<String, JavaStep>> copy = new LinkedHashMap<>();
        code.forEach((workflowId, steps) -> copy.put(workflowId, Collections.unmodifiableMap(new LinkedHashMap<>(steps))));
        this.code = Collections.unmodifiableMap(copy);
    }

    /** Starts a workflow with id {@code id} ({@code [A-Za-z0-9_.-]+}, at most 255 characters). */
    public static Builder named(String id) {
        return new Builder(id);
    }

    /**
     * Reads the engine's JSON form. Java steps come without code: attach it with
     * {@link #bind(String, JavaStep)}. Needs the native engine (the parser is the engine's).
     *
     * @throws WorkflowDefinitionException listing every problem, as {@link Builder#build()};
     *     a problem of JSON syntax or shape (an unknown field, a wrong type) comes alone, with
     *     its line and column
     */
    public static Workflow fromJson(String json) {
        try {
            return fromJson(json, JSON_TEXT);
        } catch (WorkflowDefinitionException e) {
            List<DefinitionError> unnamed = e.errors().stream()
                    .map(d -> new DefinitionError(d.stepId(), d.field(), d.message(), null, d.line(), d.column()))
                    .toList();
            throw new WorkflowDefinitionException(e.workflowId(), unnamed);
        }
    }

    /**
     * Reads JSON text of the engine's model; {@code sourceName} names it in errors (a file name),
     * which carry their line and column as {@link #fromYaml(String, String)}'s do.
     *
     * <pre>{@code
     * Workflow etl = Workflow.fromJson(Files.readString(file), file.toString());
     * }</pre>
     *
     * @throws WorkflowDefinitionException listing the problems, each with its line and column
     */
    public static Workflow fromJson(String json, String sourceName) {
        return checked(Objects.requireNonNull(json, "json"), Objects.requireNonNull(sourceName, "sourceName"), false);
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
        return checked(Objects.requireNonNull(yaml, "yaml"), Objects.requireNonNull(sourceName, "sourceName"), true);
    }

    /** The workflow the core reads in {@code text} and finds valid; its Java steps have no code. */
    private static Workflow checked(String text, String sourceName, boolean yaml) {
        NativeLoader.load();
        return new Workflow((ObjectNode) Envelope.unwrap(NativeBridge.check(text, sourceName, yaml)), Map.of());
    }

    /** The engine's JSON form, as the core writes it: absent and default fields omitted, parameters and steps in their order. */
    public String toJson() {
        return JsonCodec.write(json);
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
        String workflowId = id();
        Step step = null;
        for (int i = 0; i < path.length; i++) {
            String name = path[i];
            step = scope.stream().filter(s -> s.id().equals(name)).findFirst().orElseThrow(() ->
                    new IllegalArgumentException("workflow `" + id() + "` has no step `" + stepId + "`"
                            + pathsEndingWith(steps, "", stepId.substring(stepId.lastIndexOf('/') + 1)).stream()
                                    .filter(p -> !p.equals(stepId))
                                    .findFirst()
                                    .map(p -> "; did you mean `" + p + "` (a step in the body of a loop is named by its path)?")
                                    .orElse("")));
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
        return new Workflow(json, bound);
    }

    /** The paths (`loop/step`) of the steps named {@code name}, loop bodies included. */
    private static List<String> pathsEndingWith(List<Step> scope, String prefix, String name) {
        List<String> paths = new ArrayList<>();
        for (Step step : scope) {
            if (step.id().equals(name)) {
                paths.add(prefix + name);
            }
            paths.addAll(pathsEndingWith(step.body(), prefix + step.id() + "/", name));
        }
        return paths;
    }

    /**
     * The {@code java} steps that have no code, by path ({@code "per_partition/process"} in a
     * loop body), in definition order: what {@link Baton#register} refuses.
     */
    public List<String> unboundJavaSteps() {
        List<String> unbound = new ArrayList<>();
        collectUnbound(steps, "", id(), unbound);
        return unbound;
    }

    private void collectUnbound(List<Step> scope, String prefix, String workflowId, List<String> unbound) {
        Map<String, JavaStep> bound = code.getOrDefault(workflowId, Map.of());
        for (Step step : scope) {
            if (step.isJava() && !bound.containsKey(step.id())) {
                unbound.add(prefix + step.id());
            }
            collectUnbound(step.body(), prefix + step.id() + "/", workflowId + "." + step.id(), unbound);
        }
    }

    public String id() {
        return json.get("id").asText();
    }

    public Optional<String> description() {
        return JsonCodec.text(json, "description");
    }

    /**
     * Parameters and their default values, in their order and their JSON form: integers are
     * {@code Long}, floats {@code Double}, lists and maps unmodifiable.
     */
    public Map<String, Object> params() {
        return JsonCodec.toMap(json.get("params"));
    }

    /** The names of the secret parameters ({@link Builder#secretParam}), in their order. */
    public List<String> secretParams() {
        List<String> names = new ArrayList<>();
        JsonNode secrets = json.get("secrets");
        if (secrets != null) {
            secrets.forEach(name -> names.add(name.asText()));
        }
        return List.copyOf(names);
    }

    /** How many steps of one run may run at once (the engine's default: 128). */
    public OptionalInt maxParallel() {
        return JsonCodec.integer(json, "max_parallel");
    }

    /** The limit on a whole run. */
    public Optional<Duration> timeout() {
        return JsonCodec.duration(json, "timeout");
    }

    /** How long ago a signal may have been sent and still match a {@code waitSignal} step (the engine's default: 1 day). */
    public Optional<Duration> signalRetention() {
        return JsonCodec.duration(json, "signal_retention");
    }

    /** What starts runs on its own once registered: cron schedules and signals, in order. */
    public List<WorkflowTrigger> triggers() {
        return triggers;
    }

    /** How a new run relates to the runs already going on (default {@link RunStrategy#PARALLEL}). */
    public RunStrategy runStrategy() {
        return JsonCodec.choice(json, "run_strategy", RunStrategy.class, RunStrategy.PARALLEL);
    }

    /** Runs at once under {@link RunStrategy#PARALLEL} (default: no limit). */
    public OptionalInt maxConcurrentRuns() {
        return JsonCodec.integer(json, "max_concurrent_runs");
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
        return code.getOrDefault(id(), Map.of());
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
        return "Workflow[" + id() + ", " + steps.size() + (steps.size() == 1 ? " step]" : " steps]");
    }

    /**
     * Builds a {@link Workflow}. Every method writes a field of the workflow's JSON and returns
     * this builder; {@link #build()} hands the JSON to the engine's core, which reports every
     * problem at once. A builder may build several workflows, each independent of later
     * changes to it.
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
        /** The id given, or {@code null}: the exception's. */
        private final String id;
        /** The workflow's JSON but its steps; an id not given is {@code ""}, for the core to report. */
        private final ObjectNode json = JsonCodec.object();
        private final List<Step.Builder> steps = new ArrayList<>();

        private Builder(String id) {
            this.id = id;
            json.put("id", id == null ? "" : id);
        }

        public Builder description(String description) {
            json.put("description", Objects.requireNonNull(description, "description"));
            return this;
        }

        /**
         * A parameter and its default value: a String, number, Boolean, or a List or Map of
         * them. Steps refer to it as {@code ${name}}; a run may override it.
         *
         * @throws IllegalArgumentException if JSON cannot carry the value
         */
        public Builder param(String name, Object value) {
            JsonValues.putParam(json.withObjectProperty("params"), name, value, "param `" + name + "`");
            return this;
        }

        /**
         * A secret parameter: it has no default, every start gives it (a start without it is
         * refused), steps read it like any parameter ({@code ctx.param("token")}, {@code ${token}}
         * in a shell command, which reaches the command through its environment), and nothing the
         * engine stores or shows holds its value: runs, steps, outputs, errors, logs and events
         * show {@code ***} instead.
         *
         * <pre>{@code
         * Workflow.named("deploy").secretParam("token")
         *     .step("push", s -> s.java(ctx -> push(ctx.param("token"))))
         * }</pre>
         */
        public Builder secretParam(String name) {
            json.withArrayProperty("secrets").add(Objects.requireNonNull(name, "name"));
            return this;
        }

        /**
         * A parameter with no default, of a declared type: every start gives it, and a start
         * without it, or with a value of another type, is refused naming it.
         *
         * <pre>{@code
         * Workflow.named("load").requiredParam("day", ParamType.INTEGER)
         * }</pre>
         */
        public Builder requiredParam(String name, ParamType type) {
            json.withObjectProperty("required").put(Objects.requireNonNull(name, "name"),
                    dev.baton.internal.JsonCodec.name(Objects.requireNonNull(type, "type")));
            return this;
        }

        /**
         * A parameter computed when a run starts, unless the start gives it: a {@code ${...}}
         * expression that sees {@code now()}, {@code today()}, the parameters with defaults, the
         * required ones and the computed ones declared before it. The run keeps the value it
         * started with (a run resumed after a crash does not compute it again).
         *
         * <pre>{@code
         * Workflow.named("report").param("days", 7)
         *     .computedParam("since", "${date_add(today(), -days, 'days')}")
         * }</pre>
         */
        public Builder computedParam(String name, String expression) {
            json.withObjectProperty("computed").put(Objects.requireNonNull(name, "name"),
                    Objects.requireNonNull(expression, "expression"));
            return this;
        }

        /** How many steps of one run may run at once; at least 1. */
        public Builder maxParallel(int maxParallel) {
            json.put("max_parallel", maxParallel);
            return this;
        }

        /** The limit on a whole run. */
        public Builder timeout(Duration timeout) {
            json.put("timeout", Durations.format(Objects.requireNonNull(timeout, "timeout")));
            return this;
        }

        /** How long ago a signal may have been sent and still match a {@code waitSignal} step (default 1 day). */
        public Builder signalRetention(Duration retention) {
            json.put("signal_retention", Durations.format(Objects.requireNonNull(retention, "retention")));
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
            json.withArrayProperty("triggers").add(Objects.requireNonNull(trigger, "trigger").json());
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
            json.put("run_strategy", Objects.requireNonNull(strategy, "strategy").jsonName());
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
            json.put("max_concurrent_runs", max);
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
            steps.add(Step.Builder.of(id, step));
            return this;
        }

        /** The workflow's JSON, as the core is given it. */
        ObjectNode json() {
            ObjectNode copy = json.deepCopy();
            ArrayNode array = copy.putArray("steps");
            steps.forEach(step -> array.add(step.json()));
            return copy;
        }

        /**
         * The workflow, as the engine's core reads it from this builder's JSON.
         *
         * <pre>{@code
         * try {
         *     Workflow.named("w").step("a", s -> s.noop().dependsOn("b"))
         *         .step("b", s -> s.noop().dependsOn("a")).build();
         * } catch (WorkflowDefinitionException e) {
         *     e.errors(); // [step `a`: depends_on: dependency cycle: a -> b -> a]
         * }
         * }</pre>
         *
         * @throws WorkflowDefinitionException listing every problem the core finds (ids, kinds
         *     and their fields, durations, unknown dependencies, cycles, {@code ${...}} names,
         *     triggers), and those of this builder's use JSON cannot show (a step kind set twice)
         */
        public Workflow build() {
            List<DefinitionError> problems = new ArrayList<>();
            Step.Builder.builderProblems(steps, null, "", problems);
            NativeLoader.load();
            ObjectNode checked;
            try {
                checked = (ObjectNode) Envelope.unwrap(NativeBridge.check(JsonCodec.write(json()), null, false), id);
            } catch (WorkflowDefinitionException e) {
                problems.addAll(0, e.errors());
                throw new WorkflowDefinitionException(id, problems);
            }
            if (!problems.isEmpty()) {
                throw new WorkflowDefinitionException(id, problems);
            }
            Map<String, Map<String, JavaStep>> code = new LinkedHashMap<>();
            Step.Builder.collectCode(id, steps, code);
            return new Workflow(checked, code);
        }
    }
}
