package dev.baton.internal;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.baton.DefinitionError;
import dev.baton.FailureMode;
import dev.baton.Misfire;
import dev.baton.RunStrategy;
import dev.baton.WorkflowTrigger;
import dev.baton.Trigger;
import dev.baton.Retry;
import dev.baton.Step;
import dev.baton.Workflow;
import dev.baton.WorkflowDefinitionException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.function.Consumer;

/**
 * The engine's JSON model of a workflow (the core's {@code WorkflowDef}), written from and read
 * into the public DSL. Field names and order follow the core; absent and default fields are
 * omitted, as the core omits them.
 *
 * <pre>{@code
 * String json = WorkflowJson.write(workflow); // what Workflow.toJson() returns
 * Workflow back = WorkflowJson.read(json);    // Java steps without code
 * }</pre>
 */
public final class WorkflowJson {

    private static final ObjectMapper MAPPER = JsonMapper.builder()
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .build();

    private static final List<String> WORKFLOW_FIELDS =
            List.of("id", "description", "params", "max_parallel", "timeout", "signal_retention", "steps",
                    "triggers", "run_strategy", "max_concurrent_runs");
    private static final List<String> TRIGGER_FIELDS = List.of("cron", "timezone", "misfire", "signal", "match", "params");
    private static final List<String> STEP_FIELDS = List.of("id", "type", "description", "command", "duration",
            "env", "params", "retry", "timeout", "depends_on", "failure_mode", "when", "trigger",
            "over", "as", "steps", "workflow", "file", "max_parallel", "fail_fast", "condition", "max_iterations",
            "signal", "match", "emit_signals", "tags");
    private static final List<String> EMIT_SIGNAL_FIELDS = List.of("name", "params");
    private static final List<String> RETRY_FIELDS = List.of("max_attempts", "backoff", "delay", "max_delay");

    private WorkflowJson() {}

    /** The JSON text of {@code workflow}. */
    public static String write(Workflow workflow) {
        ObjectNode root = MAPPER.createObjectNode();
        root.put("id", workflow.id());
        workflow.description().ifPresent(d -> root.put("description", d));
        if (!workflow.params().isEmpty()) {
            root.set("params", MAPPER.valueToTree(workflow.params()));
        }
        workflow.maxParallel().ifPresent(n -> root.put("max_parallel", n));
        workflow.timeout().ifPresent(t -> root.put("timeout", Durations.format(t)));
        workflow.signalRetention().ifPresent(t -> root.put("signal_retention", Durations.format(t)));
        ArrayNode steps = root.putArray("steps");
        for (Step step : workflow.steps()) {
            steps.add(write(step));
        }
        if (!workflow.triggers().isEmpty()) {
            ArrayNode triggers = root.putArray("triggers");
            for (WorkflowTrigger t : workflow.triggers()) {
                ObjectNode out = triggers.addObject();
                t.cronExpression().ifPresent(c -> out.put("cron", c));
                t.zone().ifPresent(z -> out.put("timezone", z));
                t.misfire().ifPresent(m -> out.put("misfire", name(m)));
                t.signal().ifPresent(n -> out.put("signal", n));
                t.match().ifPresent(m -> out.put("match", m));
                if (!t.params().isEmpty()) {
                    out.set("params", MAPPER.valueToTree(t.params()));
                }
            }
        }
        if (workflow.runStrategy() != RunStrategy.PARALLEL) {
            root.put("run_strategy", workflow.runStrategy().jsonName());
        }
        workflow.maxConcurrentRuns().ifPresent(n -> root.put("max_concurrent_runs", n));
        try {
            return MAPPER.writeValueAsString(root);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("a JSON tree always serializes", e);
        }
    }

    private static ObjectNode write(Step step) {
        ObjectNode node = MAPPER.createObjectNode();
        node.put("id", step.id());
        node.put("type", step.kind());
        step.description().ifPresent(d -> node.put("description", d));
        step.command().ifPresent(c -> node.put("command", c));
        step.duration().ifPresent(d -> node.put("duration", Durations.format(d)));
        if (!step.env().isEmpty()) {
            ObjectNode env = node.putObject("env");
            step.env().forEach(env::put);
        }
        if (!step.params().isEmpty()) {
            node.set("params", MAPPER.valueToTree(step.params()));
        }
        step.retry().ifPresent(r -> {
            ObjectNode retry = node.putObject("retry");
            retry.put("max_attempts", r.maxAttempts());
            retry.put("backoff", name(r.backoff()));
            retry.put("delay", Durations.format(r.delay()));
            r.maxDelay().ifPresent(d -> retry.put("max_delay", Durations.format(d)));
        });
        step.timeout().ifPresent(t -> node.put("timeout", Durations.format(t)));
        if (!step.dependsOn().isEmpty()) {
            ArrayNode deps = node.putArray("depends_on");
            step.dependsOn().forEach(deps::add);
        }
        if (step.failureMode() != FailureMode.FAIL_AFTER_RUNNING) {
            node.put("failure_mode", name(step.failureMode()));
        }
        step.when().ifPresent(w -> node.put("when", w));
        if (step.trigger() != Trigger.ALL_SUCCESS) {
            node.put("trigger", name(step.trigger()));
        }
        step.over().ifPresent(o -> node.put("over", o));
        step.as().ifPresent(a -> node.put("as", a));
        if (!step.body().isEmpty()) {
            ArrayNode body = node.putArray("steps");
            step.body().forEach(inner -> body.add(write(inner)));
        }
        step.workflow().ifPresent(w -> node.put("workflow", w));
        step.file().ifPresent(f -> node.put("file", f));
        step.maxParallel().ifPresent(n -> node.put("max_parallel", n));
        if (step.failFast()) {
            node.put("fail_fast", true);
        }
        step.condition().ifPresent(c -> node.put("condition", c));
        step.maxIterations().ifPresent(n -> node.put("max_iterations", n));
        step.signal().ifPresent(n -> node.put("signal", n));
        step.match().ifPresent(m -> node.put("match", m));
        if (!step.emitSignals().isEmpty()) {
            ArrayNode signals = node.putArray("emit_signals");
            for (Step.EmitSignal signal : step.emitSignals()) {
                ObjectNode out = signals.addObject();
                out.put("name", signal.name());
                if (!signal.params().isEmpty()) {
                    out.set("params", MAPPER.valueToTree(signal.params()));
                }
            }
        }
        if (!step.tags().isEmpty()) {
            ArrayNode tags = node.putArray("tags");
            step.tags().forEach(tags::add);
        }
        return node;
    }

    /**
     * The workflow {@code json} describes; its Java steps have no code.
     *
     * @throws WorkflowDefinitionException with every problem found
     */
    public static Workflow read(String json) {
        Objects.requireNonNull(json, "json");
        JsonNode root;
        try {
            root = MAPPER.readTree(json);
        } catch (JsonProcessingException e) {
            JsonLocation at = e.getLocation();
            String where = at == null ? "" : " at line " + at.getLineNr() + ", column " + at.getColumnNr();
            throw new WorkflowDefinitionException(null,
                    List.of(new DefinitionError(null, null, "invalid JSON" + where + ": " + e.getOriginalMessage())));
        }
        if (root == null || !root.isObject()) {
            throw new WorkflowDefinitionException(null,
                    List.of(new DefinitionError(null, null, "a workflow must be a JSON object")));
        }
        return new Reader().workflow(root);
    }

    private static String name(Enum<?> value) {
        return value.name().toLowerCase(Locale.ROOT);
    }

    /** Reads one definition, collecting every problem rather than stopping at the first. */
    private static final class Reader {
        private final List<DefinitionError> errors = new ArrayList<>();

        Workflow workflow(JsonNode root) {
            At at = new At(null, "");
            unknownFields(at, root, WORKFLOW_FIELDS);
            String id = text(at, root, "id", true);
            Workflow.Builder builder = Workflow.named(id);
            optional(at, root, "description", this::text, builder::description);
            map(at, root, "params", (name, value) -> builder.param(name, toJava(value)));
            optional(at, root, "max_parallel", this::integer, builder::maxParallel);
            optional(at, root, "timeout", this::duration, builder::timeout);
            optional(at, root, "signal_retention", this::duration, builder::signalRetention);
            JsonNode steps = root.get("steps");
            if (steps == null || steps.isNull()) {
                error(at, "steps", "`steps` is missing");
            } else {
                steps(at, steps, builder::step);
            }
            JsonNode triggers = root.get("triggers");
            if (triggers != null && !triggers.isNull()) {
                if (!triggers.isArray()) {
                    error(at, "triggers", "must be an array of triggers");
                } else {
                    for (int i = 0; i < triggers.size(); i++) {
                        WorkflowTrigger t = trigger(new At(null, "triggers." + i + "."), triggers.get(i));
                        if (t != null) {
                            builder.trigger(t);
                        }
                    }
                }
            }
            optional(at, root, "run_strategy", (a, n, f) -> choice(a, n, f, RunStrategy.values()), builder::runStrategy);
            optional(at, root, "max_concurrent_runs", this::integer, builder::maxConcurrentRuns);
            Workflow workflow = null;
            List<DefinitionError> buildErrors = List.of();
            try {
                workflow = builder.build();
            } catch (WorkflowDefinitionException e) {
                buildErrors = e.errors();
            }
            if (errors.isEmpty() && workflow != null) {
                return workflow;
            }
            // The builder may see again what this reader reported (a step without a type): keep the reader's.
            Set<String> seen = new LinkedHashSet<>();
            errors.forEach(e -> seen.add(e.stepId() + "\0" + e.field()));
            for (DefinitionError e : buildErrors) {
                if (seen.add(e.stepId() + "\0" + e.field())) {
                    errors.add(e);
                }
            }
            throw new WorkflowDefinitionException(id, errors);
        }

        /**
         * Reads an array of steps, a workflow's ({@code at} the workflow) or a loop body's
         * ({@code at} the loop step: inner steps are then {@code outer/inner}, fields
         * {@code steps.N.<field>}, as the engine names them).
         */
        private void steps(At at, JsonNode steps, StepSink sink) {
            if (!steps.isArray()) {
                error(at, "steps", "must be an array of steps");
                return;
            }
            boolean nested = at.stepId != null || !at.prefix.isEmpty();
            for (int i = 0; i < steps.size(); i++) {
                JsonNode step = steps.get(i);
                if (!step.isObject()) {
                    error(at, "steps." + i, "a step must be a JSON object");
                    continue;
                }
                String stepId = step.path("id").isTextual() ? step.get("id").asText() : null;
                At stepAt;
                if (nested) {
                    String path = stepId == null ? at.stepId : at.stepId == null ? stepId : at.stepId + "/" + stepId;
                    stepAt = new At(path, at.prefix + "steps." + i + ".");
                } else {
                    stepAt = new At(stepId, stepId == null ? "steps." + i + "." : "");
                }
                sink.step(stepId, s -> step(stepAt, step, s));
            }
        }

        private void step(At at, JsonNode node, Step.Builder s) {
            unknownFields(at, node, STEP_FIELDS);
            text(at, node, "id", true);
            String kind = text(at, node, "type", true);
            if (kind != null) {
                s.type(kind);
            }
            optional(at, node, "description", this::text, s::description);
            optional(at, node, "command", this::text, s::command);
            optional(at, node, "duration", this::duration, s::duration);
            map(at, node, "env", (name, value) -> {
                if (value.isTextual() || value.isNumber() || value.isBoolean()) {
                    s.env(name, value.asText());
                } else {
                    error(at, "env." + name, "must be a string, number or boolean");
                }
            });
            map(at, node, "params", (name, value) -> s.param(name, toJava(value)));
            optional(at, node, "retry", this::retry, s::retry);
            optional(at, node, "timeout", this::duration, s::timeout);
            JsonNode deps = node.get("depends_on");
            if (deps != null && !deps.isNull()) {
                if (!deps.isArray()) {
                    error(at, "depends_on", "must be an array of step ids");
                } else {
                    for (int i = 0; i < deps.size(); i++) {
                        if (deps.get(i).isTextual()) {
                            s.dependsOn(deps.get(i).asText());
                        } else {
                            error(at, "depends_on." + i, "must be a step id (a string)");
                        }
                    }
                }
            }
            optional(at, node, "failure_mode",
                    (a, n, f) -> choice(a, n, f, FailureMode.values()), s::failureMode);
            optional(at, node, "when", this::text, s::when);
            optional(at, node, "trigger", (a, n, f) -> choice(a, n, f, Trigger.values()), s::trigger);
            optional(at, node, "over", this::text, s::over);
            optional(at, node, "as", this::text, s::as);
            JsonNode body = node.get("steps");
            if (body != null && !body.isNull()) {
                s.steps(b -> steps(at, body, b::step));
            }
            optional(at, node, "workflow", this::text, s::workflow);
            optional(at, node, "file", this::text, s::file);
            optional(at, node, "max_parallel", this::integer, s::maxParallel);
            optional(at, node, "fail_fast", this::bool, s::failFast);
            optional(at, node, "condition", this::text, s::condition);
            optional(at, node, "max_iterations", this::wholeNumber, s::maxIterations);
            optional(at, node, "signal", this::text, s::signal);
            optional(at, node, "match", this::text, s::match);
            JsonNode signals = node.get("emit_signals");
            if (signals != null && !signals.isNull()) {
                if (!signals.isArray()) {
                    error(at, "emit_signals", "must be an array of {name, params}");
                } else {
                    for (int i = 0; i < signals.size(); i++) {
                        emitSignal(new At(at.stepId, at.prefix + "emit_signals." + i + "."), signals.get(i), s);
                    }
                }
            }
            JsonNode tags = node.get("tags");
            if (tags != null && !tags.isNull()) {
                if (!tags.isArray()) {
                    error(at, "tags", "must be an array of tag names");
                } else {
                    for (int i = 0; i < tags.size(); i++) {
                        if (tags.get(i).isTextual()) {
                            s.tags(tags.get(i).asText());
                        } else {
                            error(at, "tags." + i, "must be a tag name (a string)");
                        }
                    }
                }
            }
        }

        /** A trigger: exactly one of {@code cron} and {@code signal}, as the engine's model says. */
        private WorkflowTrigger trigger(At at, JsonNode node) {
            if (!node.isObject()) {
                error(at, "cron", "a trigger must be an object with `cron` or `signal`");
                return null;
            }
            int before = errors.size();
            unknownFields(at, node, TRIGGER_FIELDS);
            String cron = text(at, node, "cron", false);
            String signal = text(at, node, "signal", false);
            if ((cron == null) == (signal == null)) {
                error(at, "cron", "a trigger has exactly one of `cron` and `signal`");
                return null;
            }
            WorkflowTrigger[] t = {cron != null ? WorkflowTrigger.cron(cron) : WorkflowTrigger.signal(signal)};
            String zone = text(at, node, "timezone", false);
            Misfire misfire = present(node, "misfire") ? choice(at, node.get("misfire"), "misfire", Misfire.values()) : null;
            String match = text(at, node, "match", false);
            map(at, node, "params", (k, v) -> t[0] = t[0].param(k, toJava(v)));
            if (errors.size() > before) {
                return null;
            }
            try {
                if (zone != null) {
                    t[0] = t[0].zone(java.time.ZoneId.of(zone));
                }
                if (misfire != null) {
                    t[0] = t[0].misfire(misfire);
                }
                if (match != null) {
                    t[0] = t[0].match(match);
                }
            } catch (IllegalArgumentException | java.time.DateTimeException e) {
                error(at, zone != null && cron != null ? "timezone" : "match", e.getMessage());
                return null;
            }
            return t[0];
        }

        private void emitSignal(At at, JsonNode node, Step.Builder s) {
            if (!node.isObject()) {
                error(at, "name", "a signal must be an object with `name`");
                return;
            }
            unknownFields(at, node, EMIT_SIGNAL_FIELDS);
            String name = text(at, node, "name", true);
            Map<String, Object> params = new LinkedHashMap<>();
            map(at, node, "params", (k, v) -> params.put(k, toJava(v)));
            if (name != null) {
                s.emitSignal(name, params);
            }
        }

        private Boolean bool(At at, JsonNode node, String field) {
            if (!node.isBoolean()) {
                error(at, field, "must be true or false");
                return null;
            }
            return node.booleanValue();
        }

        private Long wholeNumber(At at, JsonNode node, String field) {
            if (!node.isIntegralNumber() || !node.canConvertToLong()) {
                error(at, field, "must be a whole number");
                return null;
            }
            return node.longValue();
        }

        private Retry retry(At at, JsonNode node, String field) {
            if (!node.isObject()) {
                error(at, field, "must be an object with `max_attempts`");
                return null;
            }
            At in = new At(at.stepId, at.prefix + field + ".");
            int before = errors.size();
            unknownFields(in, node, RETRY_FIELDS);
            Integer attempts = null;
            if (present(node, "max_attempts")) {
                attempts = integer(in, node.get("max_attempts"), "max_attempts");
            } else {
                error(in, "max_attempts", "`max_attempts` is missing");
            }
            Retry.Backoff backoff = present(node, "backoff")
                    ? choice(in, node.get("backoff"), "backoff", Retry.Backoff.values())
                    : Retry.Backoff.EXPONENTIAL;
            Duration delay = present(node, "delay") ? duration(in, node.get("delay"), "delay") : Duration.ofSeconds(1);
            Duration maxDelay = present(node, "max_delay") ? duration(in, node.get("max_delay"), "max_delay") : null;
            if (errors.size() > before) {
                return null;
            }
            try {
                Retry retry = switch (backoff) {
                    case FIXED -> Retry.fixed(attempts, delay);
                    case LINEAR -> Retry.linear(attempts, delay);
                    case EXPONENTIAL -> Retry.exponential(attempts, delay);
                };
                return maxDelay == null ? retry : retry.maxDelay(maxDelay);
            } catch (IllegalArgumentException e) { // only max_attempts < 1: durations read are valid
                error(in, "max_attempts", e.getMessage());
                return null;
            }
        }

        private static boolean present(JsonNode parent, String field) {
            JsonNode node = parent.get(field);
            return node != null && !node.isNull();
        }

        /** Reads a field with {@code reader} and hands it to {@code sink}, if present and readable. */
        private <T> void optional(At at, JsonNode parent, String field, FieldReader<T> reader, Consumer<T> sink) {
            JsonNode node = parent.get(field);
            if (node != null && !node.isNull()) {
                T value = reader.read(at, node, field);
                if (value != null) {
                    sink.accept(value);
                }
            }
        }

        private void map(At at, JsonNode parent, String field, MapEntrySink sink) {
            JsonNode node = parent.get(field);
            if (node == null || node.isNull()) {
                return;
            }
            if (!node.isObject()) {
                error(at, field, "must be an object");
                return;
            }
            for (Map.Entry<String, JsonNode> entry : node.properties()) {
                sink.accept(entry.getKey(), entry.getValue());
            }
        }

        private String text(At at, JsonNode parent, String field, boolean required) {
            JsonNode node = parent.get(field);
            if (node == null || node.isNull()) {
                if (required) {
                    error(at, field, "`" + field + "` is missing");
                }
                return null;
            }
            return text(at, node, field);
        }

        private String text(At at, JsonNode node, String field) {
            if (!node.isTextual()) {
                error(at, field, "must be a string");
                return null;
            }
            return node.asText();
        }

        private Integer integer(At at, JsonNode node, String field) {
            if (!node.isIntegralNumber() || !node.canConvertToInt()) {
                error(at, field, "must be a whole number");
                return null;
            }
            return node.intValue();
        }

        private Duration duration(At at, JsonNode node, String field) {
            if (!node.isTextual() && !node.isNumber()) {
                error(at, field, "a duration must be a string such as \"10s\"");
                return null;
            }
            try {
                return Durations.parse(node.asText());
            } catch (IllegalArgumentException e) {
                error(at, field, e.getMessage());
                return null;
            }
        }

        private <E extends Enum<E>> E choice(At at, JsonNode node, String field, E[] values) {
            if (node.isTextual()) {
                for (E value : values) {
                    if (name(value).equals(node.asText())) {
                        return value;
                    }
                }
            }
            error(at, field, "must be one of " + String.join(", ",
                    Arrays.stream(values).map(WorkflowJson::name).toArray(String[]::new)) + ", not " + node);
            return null;
        }

        private void unknownFields(At at, JsonNode node, List<String> known) {
            for (Iterator<String> names = node.fieldNames(); names.hasNext(); ) {
                String name = names.next();
                if (!known.contains(name)) {
                    error(at, name, "unknown field (known: " + String.join(", ", known) + ")");
                }
            }
        }

        private void error(At at, String field, String message) {
            errors.add(new DefinitionError(at.stepId, at.field(field), message));
        }

        /** JSON as the DSL takes it: numbers as Long, BigInteger, Double or BigDecimal. */
        private static Object toJava(JsonNode node) {
            if (node.isObject()) {
                Map<String, Object> map = new LinkedHashMap<>();
                node.properties().forEach(e -> map.put(e.getKey(), toJava(e.getValue())));
                return map;
            }
            if (node.isArray()) {
                List<Object> list = new ArrayList<>();
                node.forEach(item -> list.add(toJava(item)));
                return list;
            }
            if (node.isIntegralNumber()) {
                return node.canConvertToLong() ? (Object) node.longValue() : node.bigIntegerValue();
            }
            if (node.isBigDecimal()) {
                return node.decimalValue();
            }
            if (node.isNumber()) {
                return node.doubleValue();
            }
            if (node.isBoolean()) {
                return node.booleanValue();
            }
            return node.isNull() ? null : node.asText();
        }
    }

    /**
     * Where fields are: in the step {@code stepId}, or in the workflow ({@code stepId} null);
     * {@code prefix} leads to them ({@code retry.}, or {@code steps.N.} for a step without an id).
     */
    private record At(String stepId, String prefix) {
        String field(String name) {
            return prefix + name;
        }
    }

    @FunctionalInterface
    private interface FieldReader<T> {
        T read(At at, JsonNode node, String field);
    }

    /** Adds a step: {@code Workflow.Builder::step} or {@code Step.Body::step}. */
    @FunctionalInterface
    private interface StepSink {
        void step(String id, Consumer<Step.Builder> step);
    }

    @FunctionalInterface
    private interface MapEntrySink {
        void accept(String name, JsonNode value);
    }
}
