package dev.baton;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.baton.internal.Envelope;
import dev.baton.internal.JsonCodec;
import dev.baton.internal.NativeBridge;
import dev.baton.internal.NativeLoader;
import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.nio.file.Path;
import java.time.Duration;
import java.time.ZoneId;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The DSL mirrors the core's model, field for field and value for value: what the core's
 * schema lists (read from its serde definitions), the DSL writes, and nothing else.
 */
class SchemaAgreementTest {

    private static JsonNode model;
    private static JsonNode kinds;
    private static JsonNode errorKinds;

    @BeforeAll
    static void readTheSchema() {
        NativeLoader.load();
        JsonNode schema = Envelope.unwrap(NativeBridge.schema());
        model = schema.get("model");
        kinds = schema.get("kinds");
        errorKinds = schema.get("error_kinds");
    }

    private static Set<String> names(JsonNode array) {
        Set<String> names = new LinkedHashSet<>();
        array.forEach(name -> names.add(name.asText()));
        return names;
    }

    private static Set<String> keys(JsonNode object) {
        Set<String> keys = new LinkedHashSet<>();
        object.fieldNames().forEachRemaining(keys::add);
        return keys;
    }

    /** A workflow calling every setter, with values other than the defaults (which may be left out). */
    private static JsonNode everySetter() {
        return Workflow.named("w")
                .description("d")
                .param("p", 1)
                .secretParam("s")
                .requiredParam("r", ParamType.INTEGER)
                .computedParam("c", "${p + 1}")
                .maxParallel(2)
                .timeout(Duration.ofHours(1))
                .signalRetention(Duration.ofDays(2))
                .trigger(WorkflowTrigger.cron("0 2 * * *"))
                .runStrategy(RunStrategy.SEQUENTIAL)
                .maxConcurrentRuns(3)
                .step("a", s -> s.shell("echo")
                        .duration(Duration.ofSeconds(1))
                        .env("E", "v")
                        .param("k", "v")
                        .retry(Retry.fixed(2, Duration.ofSeconds(1)))
                        .timeout(Duration.ofMinutes(1))
                        .cache(Duration.ofDays(7), "${p}")
                        .dependsOn("b")
                        .failureMode(FailureMode.IGNORE_FAILURE)
                        .description("d")
                        .when("${p}")
                        .trigger(Trigger.ALL_DONE)
                        .over("${p}")
                        .as("x")
                        .steps(body -> body.step("in", b -> b.noop()))
                        .workflow("child")
                        .file("child.yaml")
                        .version(2)
                        .inheritParams(true)
                        .waitForChild(false)
                        .maxParallel(4)
                        .failFast(true)
                        .condition("${p}")
                        .maxIterations(5)
                        .carry("c", 0)
                        .signal("s")
                        .match("${signal.k}")
                        .emitSignal("done", Map.of("k", "v"))
                        .tags("t")
                        .method("POST")
                        .url("http://localhost/")
                        .header("H", "v")
                        .jsonBody(Map.of("k", "v"))
                        .expect(201)
                        .output("id", "data.id"))
                .json();
    }

    @Test
    void everyWorkflowFieldHasASetter() {
        assertEquals(names(model.get("workflow")), keys(everySetter()));
    }

    @Test
    void everyStepFieldHasASetter() {
        JsonNode step = everySetter().get("steps").get(0);
        assertEquals(names(model.get("step")), keys(step));
        assertEquals(names(model.get("emit_signal")), keys(step.get("emit_signals").get(0)));
        assertEquals(names(model.get("cache")), keys(step.get("cache")));
        assertEquals(names(model.get("retry")), keys(Retry.fixed(2, Duration.ZERO).maxDelay(Duration.ofMinutes(1))
                .finalExitCodes(2).onTimeout(true).json()));
    }

    @Test
    void everyTriggerFieldHasASetter() {
        Set<String> written = keys(WorkflowTrigger.cron("0 2 * * *").zone(ZoneId.of("Europe/Paris")).misfire(Misfire.SKIP)
                .jitter(Duration.ofMinutes(10)).param("p", 1).json());
        written.addAll(keys(WorkflowTrigger.signal("s").match("${signal.k}").json()));
        written.addAll(keys(WorkflowTrigger.signals("a", "b").join("d").json()));
        assertEquals(names(model.get("trigger")), written);
    }

    @Test
    void everyEnumHasTheValuesOfTheCoresChoice() {
        assertEquals(jsonNames(FailureMode.values()), List.copyOf(names(model.get("failure_mode"))));
        assertEquals(jsonNames(Trigger.values()), List.copyOf(names(model.get("step_trigger"))));
        assertEquals(jsonNames(Retry.Backoff.values()), List.copyOf(names(model.get("backoff"))));
        assertEquals(jsonNames(RunStrategy.values()), List.copyOf(names(model.get("run_strategy"))));
        assertEquals(jsonNames(Misfire.values()), List.copyOf(names(model.get("misfire"))));
        assertEquals(jsonNames(ParamType.values()), List.copyOf(names(model.get("param_type"))));
        for (RunStrategy s : RunStrategy.values()) {
            assertEquals(JsonCodec.name(s), s.jsonName());
        }
    }

    private static List<String> jsonNames(Enum<?>[] values) {
        return Arrays.stream(values).map(JsonCodec::name).toList();
    }

    @Test
    void theKindConstantsAreTheCoresBuiltInKindsAndTheBridgesJava() throws IllegalAccessException {
        Set<String> constants = new LinkedHashSet<>();
        for (Field f : Step.class.getFields()) {
            if (Modifier.isStatic(f.getModifiers()) && f.getType() == String.class) {
                constants.add((String) f.get(null));
            }
        }
        assertTrue(constants.remove(Step.JAVA), "java is the bridge's kind");
        assertFalse(kinds.has(Step.JAVA));
        assertEquals(keys(kinds), constants);
    }

    /** Each shortcut of a built-in kind writes only fields its kind takes. */
    @Test
    void theKindShortcutsWriteFieldsTheirKindTakes() {
        List<Consumer<Step.Builder>> shortcuts = new ArrayList<>(List.of(
                s -> s.noop(),
                s -> s.shell("echo"),
                s -> s.sleep(Duration.ofSeconds(1)),
                s -> s.foreach("${[1]}", "x", body -> body.step("in", b -> b.noop())),
                s -> s.foreach("${[1]}", "x", "child"),
                s -> s.whileLoop("${iteration < 1}", body -> body.step("in", b -> b.noop())),
                s -> s.whileLoop("${iteration < 1}", "child"),
                s -> s.subworkflow("child"),
                s -> s.subworkflowFile(Path.of("child.yaml")),
                s -> s.waitSignal("s"),
                s -> s.http("http://localhost/"),
                s -> s.http("POST", "http://localhost/").body("text").header("H", "v").expect(201).output("id", "id")));
        for (Consumer<Step.Builder> shortcut : shortcuts) {
            JsonNode step = Workflow.named("w").step("a", shortcut).json().get("steps").get(0);
            Set<String> fields = keys(step);
            fields.removeAll(List.of("id", "type"));
            String kind = step.get("type").asText();
            assertTrue(names(kinds.get(kind)).containsAll(fields), kind + " takes " + kinds.get(kind) + ", not " + fields);
        }
    }

    @Test
    void errorKindsAreTheCoresInItsOrder() {
        List<String> core = new ArrayList<>();
        errorKinds.forEach(k -> core.add(k.asText()));
        List<String> java = Arrays.stream(dev.baton.internal.ErrorKind.values()).map(dev.baton.internal.ErrorKind::wireName).toList();
        assertEquals(core, java);
    }
}
