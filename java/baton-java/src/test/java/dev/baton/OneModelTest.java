package dev.baton;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * One model, one validator: the same broken workflow written with the DSL, as JSON and as YAML
 * gives the same problems (step, field and message) from {@link Workflow.Builder#build()},
 * {@link Workflow#fromJson}, {@link Workflow#fromYaml} and {@code baton validate}.
 */
class OneModelTest {

    private static final String YAML = """
            id: broken
            params: {date: ""}
            steps:
              - id: extract
                type: shell
                command: echo ${dat}
                timeout: 10w
              - id: load
                type: noop
                depends_on: [extract, ghost]
              - id: a
                type: noop
                depends_on: [b]
              - id: b
                type: noop
                depends_on: [a]
            """;

    private static final String JSON = """
            {"id": "broken", "params": {"date": ""},
             "steps": [
               {"id": "extract", "type": "shell", "command": "echo ${dat}", "timeout": "10w"},
               {"id": "load", "type": "noop", "depends_on": ["extract", "ghost"]},
               {"id": "a", "type": "noop", "depends_on": ["b"]},
               {"id": "b", "type": "noop", "depends_on": ["a"]}
             ]}""";

    private static final List<String> PROBLEMS = List.of(
            "step `a`: depends_on: dependency cycle: a -> b -> a",
            "step `extract`: command: column 8: `dat` is neither a parameter nor a step (did you mean `date`?);"
                    + " declare it under `params:`, or write `$${...}` for a literal",
            "step `extract`: timeout: unknown unit `w` in duration `10w` (use ms, s, m, h or d)",
            "step `load`: depends_on.1: unknown step `ghost`");

    @TempDir
    Path dir;

    /** The problems as {@code step: field: message}, sorted: their order follows positions, which differ. */
    private static List<String> problems(List<DefinitionError> errors) {
        return errors.stream().map(e -> new DefinitionError(e.stepId(), e.field(), e.message()).toString()).sorted().toList();
    }

    private static List<String> problemsOf(Runnable read) {
        return problems(assertThrows(WorkflowDefinitionException.class, read::run).errors());
    }

    @Test
    void theDslJsonAndYamlGiveTheSameProblems() {
        Workflow.Builder dsl = Workflow.named("broken")
                .param("date", "")
                .step("extract", s -> s.shell("echo ${dat}"))
                .step("load", s -> s.noop().dependsOn("extract", "ghost"))
                .step("a", s -> s.noop().dependsOn("b"))
                .step("b", s -> s.noop().dependsOn("a"));

        assertEquals(PROBLEMS, problemsOf(() -> Workflow.fromJson(JSON)));
        assertEquals(PROBLEMS, problemsOf(() -> Workflow.fromYaml(YAML, "broken.yaml")));
        // The DSL cannot write `10w`; its problems are the others.
        assertEquals(PROBLEMS.stream().filter(p -> !p.contains("10w")).toList(), problemsOf(dsl::build));
    }

    @Test
    void jsonAndYamlFilesPlaceTheirProblems() throws Exception {
        Path json = Files.writeString(dir.resolve("broken.json"), JSON);
        Path yaml = Files.writeString(dir.resolve("broken.yaml"), YAML);

        List<DefinitionError> fromJson = assertThrows(WorkflowDefinitionException.class,
                () -> Workflow.fromJson(Files.readString(json), json.toString())).errors();
        List<DefinitionError> fromYaml = assertThrows(WorkflowDefinitionException.class,
                () -> Workflow.fromYaml(yaml)).errors();

        for (List<DefinitionError> errors : List.of(fromJson, fromYaml)) {
            assertTrue(errors.stream().allMatch(e -> e.line() > 0 && e.column() > 0), errors::toString);
        }
        assertTrue(fromJson.stream().allMatch(e -> e.file().equals(json.toString())), fromJson::toString);
        DefinitionError ghost = fromYaml.stream().filter(e -> "depends_on.1".equals(e.field())).findFirst().orElseThrow();
        assertEquals(List.of(10, 27), List.of(ghost.line(), ghost.column()), ghost::toString);
        assertTrue(ghost.toString().startsWith(yaml + ":10:27: step `load`"), ghost::toString);
    }

    @Test
    void theCliGivesTheSameProblems() throws Exception {
        Path baton = repositoryRoot().resolve("target/release/baton");
        assumeTrue(Files.isExecutable(baton), "no " + baton + ": `make build` makes it");
        for (String name : List.of("broken.json", "broken.yaml")) {
            Path file = Files.writeString(dir.resolve(name), name.endsWith(".json") ? JSON : YAML);
            Process process = new ProcessBuilder(baton.toString(), "validate", "--json", file.toString())
                    .redirectError(ProcessBuilder.Redirect.DISCARD)
                    .start();
            String out = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertTrue(process.waitFor(30, TimeUnit.SECONDS));
            assertNotEquals(0, process.exitValue(), out);

            JsonNode answer = Json.tree(out);
            assertFalse(answer.get("valid").asBoolean(), out);
            List<DefinitionError> errors = new ArrayList<>();
            for (JsonNode e : answer.get("errors")) {
                errors.add(new DefinitionError(e.path("step").textValue(), e.path("field").textValue(),
                        e.get("message").asText(), e.get("file").asText(), e.get("line").asInt(), e.get("column").asInt()));
            }
            assertEquals(PROBLEMS, problems(errors), name);
            assertTrue(errors.stream().allMatch(e -> e.file().equals(file.toString()) && e.line() > 0), out);
        }
    }

    /** The directory of the Cargo workspace, above this module's. */
    private static Path repositoryRoot() {
        for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
            if (Files.exists(p.resolve("Cargo.toml"))) {
                return p;
            }
        }
        throw new IllegalStateException("no Cargo.toml above " + Path.of("").toAbsolutePath());
    }
}
