package dev.baton;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.baton.internal.Durations;
import dev.baton.internal.JsonCodec;
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
 * fields of the JSON model. Immutable; made by {@link Workflow.Builder#step}. It is a view of
 * the step's object in the core's JSON: each getter reads one field, absent fields read as
 * the core's defaults, and two steps are equal when their JSON is.
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
 * <p>An {@code http} step sends one request; values in its URL are percent-encoded, a map body
 * is sent as JSON, and outputs are picked from the JSON response:
 *
 * <pre>{@code
 * .step("create", s -> s.http("POST", "https://api.example.com/items")
 *     .header("Authorization", "Bearer ${token}")
 *     .jsonBody(Map.of("name", "${name}"))
 *     .expect(201)
 *     .output("id", "data.id"))
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
    /** The kind of a step that sends one HTTP request to its {@code url}. */
    public static final String HTTP = "http";

    /** The step's object in the core's JSON; never changed once the step is made. */
    private final ObjectNode json;
    private final List<Step> body;

    /** A view of a step's object in the core's JSON. */
    Step(ObjectNode json) {
        this.json = json;
        this.body = list(json.get("steps"));
    }

    /** The steps of a JSON array of steps ({@code null}: none), unmodifiable. */
    static List<Step> list(JsonNode steps) {
        List<Step> list = new ArrayList<>();
        if (steps != null) {
            steps.forEach(step -> list.add(new Step((ObjectNode) step)));
        }
        return Collections.unmodifiableList(list);
    }

    public String id() {
        return json.get("id").asText();
    }

    /** The step kind, the JSON {@code type}: {@code noop}, {@code sleep}, {@code shell}, {@code java} or a host's. */
    public String kind() {
        return json.get("type").asText();
    }

    /** True for a step whose code is a {@link JavaStep}. */
    public boolean isJava() {
        return JAVA.equals(kind());
    }

    public Optional<String> description() {
        return JsonCodec.text(json, "description");
    }

    /** The shell command ({@code shell} steps). */
    public Optional<String> command() {
        return JsonCodec.text(json, "command");
    }

    /** How long to wait ({@code sleep} steps). */
    public Optional<Duration> duration() {
        return JsonCodec.duration(json, "duration");
    }

    /** Environment variables, in the order set. */
    public Map<String, String> env() {
        Map<String, String> env = new LinkedHashMap<>();
        json.path("env").properties().forEach(e -> env.put(e.getKey(), e.getValue().asText()));
        return Collections.unmodifiableMap(env);
    }

    /** The step's own parameters, in their JSON form (see {@link Workflow#params()}). */
    public Map<String, Object> params() {
        return JsonCodec.toMap(json.get("params"));
    }

    public Optional<Retry> retry() {
        return Optional.ofNullable((ObjectNode) json.get("retry")).map(Retry::new);
    }

    /** The limit on one attempt. */
    public Optional<Duration> timeout() {
        return JsonCodec.duration(json, "timeout");
    }

    /** How long a success of the step serves later runs from the result cache, if it is cached. */
    public Optional<Duration> cacheTtl() {
        return JsonCodec.duration(json.path("cache"), "ttl");
    }

    /** The key ({@code ${...}}) of a cached step's results, if it sets one. */
    public Optional<String> cacheKey() {
        return JsonCodec.text(json.path("cache"), "key");
    }

    /** The ids of the steps this one runs after. */
    public List<String> dependsOn() {
        return JsonCodec.texts(json, "depends_on");
    }

    public FailureMode failureMode() {
        return JsonCodec.choice(json, "failure_mode", FailureMode.class, FailureMode.FAIL_AFTER_RUNNING);
    }

    /** The condition ({@code ${...}}) that must be true for the step to run. */
    public Optional<String> when() {
        return JsonCodec.text(json, "when");
    }

    public Trigger trigger() {
        return JsonCodec.choice(json, "trigger", Trigger.class, Trigger.ALL_SUCCESS);
    }

    /** The list a {@code foreach} step iterates over, {@code ${...}}. */
    public Optional<String> over() {
        return JsonCodec.text(json, "over");
    }

    /** The name of the current item in a {@code foreach} body (the engine's default: {@code item}). */
    public Optional<String> as() {
        return JsonCodec.text(json, "as");
    }

    /** The nested steps a {@code foreach} or {@code while} step runs per iteration; empty if none. */
    public List<Step> body() {
        return body;
    }

    /** The registered workflow a {@code subworkflow} step runs, or a loop runs as its body. */
    public Optional<String> workflow() {
        return JsonCodec.text(json, "workflow");
    }

    /** The definition file a {@code subworkflow} step runs, as written (relative to the workflow's file). */
    public Optional<String> file() {
        return JsonCodec.text(json, "file");
    }

    /** The registered version a {@code subworkflow} step pins, if it pins one. */
    public OptionalInt version() {
        return JsonCodec.integer(json, "version");
    }

    /** Whether a {@code subworkflow} step passes its run's params down. */
    public boolean inheritParams() {
        return json.path("inherit_params").asBoolean(false);
    }

    /** Iterations of a {@code foreach} running at once. */
    public OptionalInt maxParallel() {
        return JsonCodec.integer(json, "max_parallel");
    }

    /** Whether the first failed iteration of a {@code foreach} stops the others. */
    public boolean failFast() {
        return json.path("fail_fast").asBoolean(false);
    }

    /** What keeps a {@code while} step going, {@code ${...}}. */
    public Optional<String> condition() {
        return JsonCodec.text(json, "condition");
    }

    /** The most iterations a {@code while} step may run. */
    public OptionalLong maxIterations() {
        return JsonCodec.longInteger(json, "max_iterations");
    }

    /** The signal a {@code wait_signal} step waits for. */
    public Optional<String> signal() {
        return JsonCodec.text(json, "signal");
    }

    /** Which signals a {@code wait_signal} step accepts, {@code ${...}} over {@code signal.<param>}. */
    public Optional<String> match() {
        return JsonCodec.text(json, "match");
    }

    /** The signals the step sends when it succeeds, in order. */
    public List<EmitSignal> emitSignals() {
        List<EmitSignal> signals = new ArrayList<>();
        json.path("emit_signals").forEach(s -> signals.add(new EmitSignal(s.get("name").asText(), JsonCodec.toMap(s.get("params")))));
        return Collections.unmodifiableList(signals);
    }

    /** The step's tags: {@link Baton#limit} caps the running steps with a tag across all runs. */
    public List<String> tags() {
        return JsonCodec.texts(json, "tags");
    }

    /** The method of an {@code http} step's request, if set (the engine's default: {@code GET}). */
    public Optional<String> method() {
        return JsonCodec.text(json, "method");
    }

    /** Where an {@code http} step sends its request, {@code ${...}} values percent-encoded. */
    public Optional<String> url() {
        return JsonCodec.text(json, "url");
    }

    /** The headers of an {@code http} step's request, in the order set. */
    public Map<String, String> headers() {
        Map<String, String> headers = new LinkedHashMap<>();
        json.path("headers").properties().forEach(e -> headers.put(e.getKey(), e.getValue().asText()));
        return Collections.unmodifiableMap(headers);
    }

    /**
     * The body of an {@code http} step's request: a String sent as text, or a Map or List sent
     * as JSON (see {@link Builder#jsonBody}). Not {@link #body()}, the nested steps of a loop.
     */
    public Optional<Object> requestBody() {
        return Optional.ofNullable(JsonCodec.toJava(json.get("body")));
    }

    /** The status codes an {@code http} step accepts; empty for the engine's default, any 2xx. */
    public List<Integer> expect() {
        List<Integer> codes = new ArrayList<>();
        json.path("expect").forEach(code -> codes.add(code.asInt()));
        return Collections.unmodifiableList(codes);
    }

    /** The outputs an {@code http} step picks from the JSON response body, by name: their paths. */
    public Map<String, String> outputs() {
        Map<String, String> outputs = new LinkedHashMap<>();
        json.path("outputs").properties().forEach(e -> outputs.put(e.getKey(), e.getValue().asText()));
        return Collections.unmodifiableMap(outputs);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Step s && json.equals(s.json);
    }

    @Override
    public int hashCode() {
        return json.hashCode();
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
            steps.add(Builder.of(id, step));
            return this;
        }
    }

    @Override
    public String toString() {
        List<String> after = dependsOn();
        return "Step[" + id() + ": " + kind() + (after.isEmpty() ? "" : " after " + after) + "]";
    }

    /**
     * Configures one step. Set its kind once ({@link #shell}, {@link #noop}, {@link #sleep},
     * {@link #http}, {@link #java} or {@link #type}); everything else is optional. Each setter writes one field
     * of the step's JSON, checked by the core at {@link Workflow.Builder#build()} with the rest
     * of the workflow; a {@code null} argument is a {@link NullPointerException} at once.
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
        /** The step's JSON but its body; an id or kind not given is {@code ""}, for the core to report. */
        private final ObjectNode json = JsonCodec.object();
        /** The kinds set, in order: more than one is a mistake JSON cannot show. */
        private final List<String> kindsSet = new ArrayList<>();
        private JavaStep code;
        private Body body;

        private Builder(String id) {
            json.put("id", id == null ? "" : id);
            json.put("type", "");
        }

        /** A builder for the step {@code id}, configured by {@code step}. */
        static Builder of(String id, Consumer<Builder> step) {
            Objects.requireNonNull(step, "step");
            Builder builder = new Builder(id);
            step.accept(builder);
            return builder;
        }

        private Builder put(String field, String value) {
            json.put(field, Objects.requireNonNull(value, field));
            return this;
        }

        private Builder put(String field, Duration value) {
            return put(field, Durations.format(Objects.requireNonNull(value, field)));
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
            return put("type", kind);
        }

        /** The {@code command} field, for a host kind that takes one; {@link #shell} sets it too. */
        public Builder command(String command) {
            return put("command", command);
        }

        /** The {@code duration} field, for a host kind that takes one; {@link #sleep} sets it too. */
        public Builder duration(Duration duration) {
            return put("duration", duration);
        }

        /**
         * A parameter of the step, for host kinds and Java steps: a String, number, Boolean, or
         * a List or Map of them. Strings may use {@code ${...}}.
         *
         * @throws IllegalArgumentException if JSON cannot carry the value
         */
        public Builder param(String name, Object value) {
            JsonValues.putParam(json.withObjectProperty("params"), name, value,
                    "step `" + json.get("id").asText() + "`, param `" + name + "`");
            return this;
        }

        /** Steps that must finish before this one starts; adds to those already given. */
        public Builder dependsOn(String... stepIds) {
            ArrayNode dependsOn = json.withArrayProperty("depends_on");
            for (String stepId : stepIds) {
                dependsOn.add(Objects.requireNonNull(stepId, "stepId"));
            }
            return this;
        }

        /** How failed attempts are retried (by default they are not). */
        public Builder retry(Retry retry) {
            json.set("retry", Objects.requireNonNull(retry, "retry").json());
            return this;
        }

        /** The limit on one attempt. */
        public Builder timeout(Duration timeout) {
            return put("timeout", timeout);
        }

        /**
         * Keeps the step's successes for {@code ttl} in the result cache: a later run with the
         * same key (its params, inputs and definition) is served the outputs, without calling
         * the step. See the README's "Result cache".
         */
        public Builder cache(Duration ttl) {
            json.withObjectProperty("cache").put("ttl", Durations.format(Objects.requireNonNull(ttl, "ttl")));
            return this;
        }

        /** {@link #cache(Duration)}, with the key {@code key} ({@code ${...}}) in place of its params and inputs. */
        public Builder cache(Duration ttl, String key) {
            cache(ttl);
            json.withObjectProperty("cache").put("key", Objects.requireNonNull(key, "key"));
            return this;
        }

        /** An environment variable of the step's process; {@code ${...}} is substituted. */
        public Builder env(String name, String value) {
            json.withObjectProperty("env").put(Objects.requireNonNull(name, "name"), Objects.requireNonNull(value, "value"));
            return this;
        }

        /** What a failure of this step does to the run (default {@link FailureMode#FAIL_AFTER_RUNNING}). */
        public Builder failureMode(FailureMode failureMode) {
            return put("failure_mode", JsonCodec.name(Objects.requireNonNull(failureMode, "failureMode")));
        }

        public Builder description(String description) {
            return put("description", description);
        }

        /** A condition, e.g. {@code "${extract.rows > 0}"}: false skips the step. */
        public Builder when(String condition) {
            return put("when", condition);
        }

        /** Which outcomes of the upstream steps let this step run (default {@link Trigger#ALL_SUCCESS}). */
        public Builder trigger(Trigger trigger) {
            return put("trigger", JsonCodec.name(Objects.requireNonNull(trigger, "trigger")));
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
            return put("over", over);
        }

        /**
         * The {@code over} field as lists whose cartesian product a {@code foreach} iterates
         * over, by the name each item takes in the body; each list is a {@code List} or a
         * {@code ${...}} giving one. The last list varies fastest (use a {@code LinkedHashMap}
         * to keep the order): {@code .over(Map.of("region", List.of("eu", "us")))}.
         */
        public Builder over(Map<String, ?> lists) {
            com.fasterxml.jackson.databind.node.ObjectNode over = json.putObject("over");
            Objects.requireNonNull(lists, "lists").forEach((name, list) -> JsonValues.putParam(over, name, list,
                    "step `" + json.get("id").asText() + "`, over `" + name + "`"));
            return this;
        }

        /** The {@code as} field: the name of a {@code foreach} body's item; {@link #foreach} sets it. */
        public Builder as(String as) {
            return put("as", as);
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
            return put("workflow", workflowId);
        }

        /** The {@code file} field of a {@code subworkflow} step, as written; {@link #subworkflowFile} sets it. */
        public Builder file(String file) {
            return put("file", file);
        }

        /** The registered version a {@code subworkflow} step runs (default: the active one); from 1. */
        public Builder version(int version) {
            json.put("version", version);
            return this;
        }

        /**
         * Whether a {@code subworkflow} step passes its run's params down to the child, for the
         * params the child declares; the step's own {@link #param params} win.
         */
        public Builder inheritParams(boolean inherit) {
            json.put("inherit_params", inherit);
            return this;
        }

        /**
         * Whether a {@code subworkflow} step waits for its child ({@code wait} in YAML; it does
         * unless told). {@code waitForChild(false)} starts a run of the registered workflow, under
         * its run strategy, and succeeds at once with its {@code run_id} as output; stopping
         * this run does not stop that one.
         */
        public Builder waitForChild(boolean wait) {
            json.put("wait", wait);
            return this;
        }

        /** Iterations of a {@code foreach} running at once (default: the workflow's max parallel); at least 1. */
        public Builder maxParallel(int maxParallel) {
            json.put("max_parallel", maxParallel);
            return this;
        }

        /** Whether the first failed iteration of a {@code foreach} stops the others (default false). */
        public Builder failFast(boolean failFast) {
            json.put("fail_fast", failFast);
            return this;
        }

        /** The {@code condition} of a {@code while} step; {@link #whileLoop} sets it. */
        public Builder condition(String condition) {
            return put("condition", condition);
        }

        /** The most iterations a {@code while} step may run. */
        public Builder maxIterations(long maxIterations) {
            json.put("max_iterations", maxIterations);
            return this;
        }

        /**
         * A value a {@code while} step carries from one iteration to the next, with its first
         * value (a literal, or {@code ${...}} from the run around the loop). The body and the
         * condition read it by name; after each iteration it takes the output of the same name
         * of the body's last step that has one.
         *
         * <pre>{@code
         * s.whileLoop("${cursor != 'end'}", body -> body.step("page", p -> p.java(ctx -> ctx.output("cursor", next(ctx.param("cursor"))))))
         *  .carry("cursor", "")
         * }</pre>
         */
        public Builder carry(String name, Object first) {
            JsonValues.putParam(json.withObjectProperty("carry"), name, first,
                    "step `" + json.get("id").asText() + "`, carry `" + name + "`");
            return this;
        }

        /**
         * An {@code http} step sending a {@code GET} to {@code url}. Each {@code ${...}} value
         * is percent-encoded, so a value stays one value (a param {@code x&admin=1} cannot add a
         * query parameter); {@code ${raw(base)}} writes a value in as it is, for a base URL.
         */
        public Builder http(String url) {
            return type(HTTP).url(url);
        }

        /** An {@code http} step sending {@code method} ({@code POST}, {@code PUT}, ...) to {@code url}. */
        public Builder http(String method, String url) {
            return http(url).method(method);
        }

        /** The method of an {@code http} step's request; {@link #http(String, String)} sets it. */
        public Builder method(String method) {
            return put("method", method);
        }

        /** The URL of an {@code http} step's request; {@link #http(String)} sets it. */
        public Builder url(String url) {
            return put("url", url);
        }

        /** A header of an {@code http} step's request; {@code ${...}} is substituted (secrets too). */
        public Builder header(String name, String value) {
            json.withObjectProperty("headers").put(Objects.requireNonNull(name, "name"), Objects.requireNonNull(value, "value"));
            return this;
        }

        /** The body of an {@code http} step's request, sent as text; {@code ${...}} is substituted. */
        public Builder body(String text) {
            return put("body", text);
        }

        /**
         * The body of an {@code http} step's request, sent as JSON: a Map or a List of JSON
         * values. Strings in it may use {@code ${...}}, each evaluated to a JSON value (a
         * whole-string {@code "${count}"} stays a number), never spliced into JSON text.
         *
         * @throws IllegalArgumentException if the value is not a Map or List, or JSON cannot carry it
         */
        public Builder jsonBody(Object value) {
            Objects.requireNonNull(value, "value");
            if (!(value instanceof Map || value instanceof List)) {
                throw new IllegalArgumentException("step `" + json.get("id").asText()
                        + "`: a JSON body is a Map or a List; use body(String) for text");
            }
            JsonValues.putParam(json, "body", value, "step `" + json.get("id").asText() + "`, body");
            return this;
        }

        /** The status codes that make an {@code http} step succeed (default: any 2xx); adds to those given. */
        public Builder expect(int... statusCodes) {
            ArrayNode expect = json.withArrayProperty("expect");
            for (int code : Objects.requireNonNull(statusCodes, "statusCodes")) {
                expect.add(code);
            }
            return this;
        }

        /**
         * An output of an {@code http} step picked from the JSON response body by {@code path}:
         * keys and list indices joined by {@code .} ({@code data.items.0.name}), or {@code .}
         * for the whole body. The status code is always the output {@code status}.
         */
        public Builder output(String name, String path) {
            json.withObjectProperty("outputs").put(Objects.requireNonNull(name, "name"), Objects.requireNonNull(path, "path"));
            return this;
        }

        /** The {@code signal} a {@code wait_signal} step waits for; {@link #waitSignal} sets it. */
        public Builder signal(String name) {
            return put("signal", name);
        }

        /**
         * Which signals a {@code wait_signal} step accepts: an expression over
         * {@code signal.<param>}, e.g. {@code "${signal.table == 'events' && signal.date == date}"}.
         */
        public Builder match(String expression) {
            return put("match", expression);
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
            ObjectNode signal = JsonCodec.object().put("name", name);
            params.forEach((k, v) -> JsonValues.putParam(signal.withObjectProperty("params"), k, v,
                    "step `" + json.get("id").asText() + "`, signal `" + name + "`, param `" + k + "`"));
            json.withArrayProperty("emit_signals").add(signal);
            return this;
        }

        /**
         * Tags the step; repeatable. {@link Baton#limit(String, int)} caps how many steps with a
         * tag run at once across all runs: {@code .tags("warehouse")}.
         */
        public Builder tags(String... tags) {
            ArrayNode array = json.withArrayProperty("tags");
            for (String tag : Objects.requireNonNull(tags, "tags")) {
                array.add(Objects.requireNonNull(tag, "tag"));
            }
            return this;
        }

        /** The step's JSON, its body included: what the core checks. */
        ObjectNode json() {
            ObjectNode copy = json.deepCopy();
            if (body != null) {
                ArrayNode steps = copy.putArray("steps");
                body.steps.forEach(step -> steps.add(step.json()));
            }
            return copy;
        }

        /**
         * Adds the problems among {@code steps} that JSON cannot show (a kind set twice), named
         * as the core names its problems: a step in a body is {@code outer/inner}, its fields
         * {@code steps.N.<field>} of the outer step. {@code outer} is the step whose body
         * {@code steps} is, or {@code null} for a workflow's steps; {@code prefix} its fields'.
         */
        static void builderProblems(List<Builder> steps, String outer, String prefix, List<DefinitionError> out) {
            for (int i = 0; i < steps.size(); i++) {
                Builder step = steps.get(i);
                String id = step.json.get("id").asText();
                String path = outer == null ? id : outer + "/" + id;
                String fields = outer == null ? "" : prefix + "steps." + i + ".";
                if (step.kindsSet.size() > 1) {
                    out.add(new DefinitionError(path, fields + "type",
                            "the step kind is set more than once: " + String.join(", then ", step.kindsSet)));
                }
                if (step.body != null) {
                    builderProblems(step.body.steps, path, fields, out);
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
                String id = step.json.get("id").asText();
                if (step.code != null && JAVA.equals(step.json.get("type").asText())) {
                    out.computeIfAbsent(workflowId, k -> new LinkedHashMap<>()).put(id, step.code);
                }
                if (step.body != null) {
                    collectCode(workflowId + "." + id, step.body.steps, out);
                }
            }
        }
    }
}
