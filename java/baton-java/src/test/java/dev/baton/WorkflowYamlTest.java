package dev.baton;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link Workflow#fromYaml(Path)}: the engine's parser, from Java. */
class WorkflowYamlTest {

    @TempDir
    Path dir;

    @Test
    void aYamlFileBecomesAWorkflowThatRunsOnceBound() throws Exception {
        Path file = Files.writeString(dir.resolve("etl.yaml"), """
                id: yaml-etl
                params:
                  date: "2026-11-24"
                  limit: 100
                steps:
                  - id: extract
                    type: java
                    retry: {max_attempts: 2, delay: 10ms}
                  - id: load
                    type: shell
                    command: echo load ${date} ${extract.rows}
                    depends_on: [extract]
                """);

        Workflow workflow = Workflow.fromYaml(file);

        assertEquals("yaml-etl", workflow.id());
        assertEquals(100L, workflow.params().get("limit"));
        assertEquals(2, workflow.step("extract").orElseThrow().retry().orElseThrow().maxAttempts());
        assertEquals(Duration.ofMillis(10), workflow.step("extract").orElseThrow().retry().orElseThrow().delay());
        try (Baton baton = Baton.inMemory()) {
            baton.register(workflow.bind("extract", ctx -> ctx.output("rows", 42L)));
            RunResult result = baton.start("yaml-etl").await(Duration.ofSeconds(30)).orThrow();
            assertEquals("load 2026-11-24 42", result.step("load").logTail().orElseThrow().trim());
        }
    }

    @Test
    void aBadFileReportsItsLineAndColumn() throws Exception {
        Path file = Files.writeString(dir.resolve("bad.yaml"), """
                id: bad
                steps:
                  - id: extract
                    type: noop
                    dependson: [load]
                """);

        WorkflowDefinitionException e = assertThrows(WorkflowDefinitionException.class, () -> Workflow.fromYaml(file));

        DefinitionError error = e.errors().get(0);
        assertEquals(file.toString(), error.file());
        assertEquals(5, error.line());
        assertTrue(error.column() > 0);
        assertEquals("extract", error.stepId());
        assertTrue(error.message().contains("did you mean `depends_on`"), error.message());
        assertTrue(e.getMessage().contains(file + ":5:"), e.getMessage());
    }

    @Test
    void aFileThatIsNotYamlReportsWhere() throws Exception {
        Path file = Files.writeString(dir.resolve("broken.yaml"), "id: x\nsteps:\n  - id: a\n    type: [noop\n");

        WorkflowDefinitionException e = assertThrows(WorkflowDefinitionException.class, () -> Workflow.fromYaml(file));

        assertEquals(4, e.errors().get(0).line());
    }

    @Test
    void aMissingFileIsAnIoError() {
        assertThrows(UncheckedIOException.class, () -> Workflow.fromYaml(dir.resolve("nope.yaml")));
    }

    @Test
    void yamlTextWithASourceName() {
        Workflow w = Workflow.fromYaml("id: t\nsteps:\n  - {id: a, type: sleep, duration: 90s}\n", "inline");
        assertEquals(Duration.ofSeconds(90), w.step("a").orElseThrow().duration().orElseThrow());
        WorkflowDefinitionException e = assertThrows(WorkflowDefinitionException.class,
                () -> Workflow.fromYaml("id: t\nmax_parallel: many\nsteps: []\n", "inline"));
        assertEquals("inline", e.errors().get(0).file());
        assertEquals(2, e.errors().get(0).line());
    }
}
