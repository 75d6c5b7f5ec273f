package dev.baton;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

class WorkflowValidationTest {

    @Test
    void everyProblemIsReportedAtOnceNamingItsStep() {
        Workflow.Builder builder = Workflow.named("nightly-etl")
                .maxParallel(0)
                .step("extract", s -> s.shell("./extract.sh"))
                .step("transform", s -> s.dependsOn("extract"))
                .step("extract", s -> s.noop())
                .step("bad id!", s -> s.noop())
                .step(" ", s -> s.noop())
                .step(null, s -> s.noop())
                .step("twice", s -> s.shell("true").noop())
                .step("slow", s -> s.noop().timeout(Duration.ofNanos(1)));

        WorkflowDefinitionException e = assertThrows(WorkflowDefinitionException.class, builder::build);

        String id = "invalid step id `%s`: use letters, digits, `_`, `.` and `-`";
        assertEquals(List.of(
                new DefinitionError(null, "max_parallel", "must be at least 1"),
                new DefinitionError("extract", "id", "duplicate step id (also step number 1)"),
                new DefinitionError("transform", "type",
                        "the step has no type; known types: foreach, http, noop, shell, sleep, subworkflow, wait_signal, while"),
                new DefinitionError("bad id!", "id", String.format(id, "bad id!")),
                new DefinitionError(" ", "id", String.format(id, " ")),
                new DefinitionError("", "id", String.format(id, "")),
                new DefinitionError("twice", "command", "`command` is not used by `noop` steps"),
                new DefinitionError("slow", "timeout", "unknown unit `ns` in duration `1ns` (use ms, s, m, h or d)"),
                // What JSON cannot show, the builder says, with the core's problems.
                new DefinitionError("twice", "type", "the step kind is set more than once: shell, then noop")),
                e.errors());
        assertEquals("nightly-etl", e.workflowId());
        assertEquals("""
                invalid workflow `nightly-etl` (9 problems):
                  workflow: max_parallel: must be at least 1
                  step `extract`: id: duplicate step id (also step number 1)
                  step `transform`: type: the step has no type; known types: foreach, http, noop, shell, sleep, subworkflow, wait_signal, while
                  step `bad id!`: id: invalid step id `bad id!`: use letters, digits, `_`, `.` and `-`
                  step ` `: id: invalid step id ` `: use letters, digits, `_`, `.` and `-`
                  step ``: id: invalid step id ``: use letters, digits, `_`, `.` and `-`
                  step `twice`: command: `command` is not used by `noop` steps
                  step `slow`: timeout: unknown unit `ns` in duration `1ns` (use ms, s, m, h or d)
                  step `twice`: type: the step kind is set more than once: shell, then noop""",
                e.getMessage());
    }

    @Test
    void workflowIdsAreChecked() {
        WorkflowDefinitionException missing = assertThrows(WorkflowDefinitionException.class,
                () -> Workflow.named(null).step("a", s -> s.noop()).build());
        String noId = "invalid workflow id ``: use letters, digits, `_`, `.` and `-`";
        assertEquals(List.of(new DefinitionError(null, "id", noId)), missing.errors());
        assertNull(missing.workflowId());
        assertEquals("invalid workflow (1 problem):\n  workflow: id: " + noId, missing.getMessage());

        WorkflowDefinitionException spaces = assertThrows(WorkflowDefinitionException.class,
                () -> Workflow.named("nightly etl").timeout(Duration.ofSeconds(-1)).build());
        assertEquals(List.of(
                new DefinitionError(null, "id", "invalid workflow id `nightly etl`: use letters, digits, `_`, `.` and `-`"),
                new DefinitionError(null, "timeout", "invalid duration `-1s` (write e.g. \"500ms\", \"10s\", \"5m\", \"2h\", \"1d\")"),
                new DefinitionError(null, "steps", "a workflow needs at least one step")),
                spaces.errors());
    }

    @Test
    void buildRejectsADependencyCycleNamingItsSteps() {
        WorkflowDefinitionException e = assertThrows(WorkflowDefinitionException.class, () -> Workflow.named("w")
                .step("a", s -> s.noop().dependsOn("b"))
                .step("b", s -> s.noop().dependsOn("a"))
                .build());

        assertEquals(List.of(new DefinitionError("a", "depends_on", "dependency cycle: a -> b -> a")), e.errors());
    }

    @Test
    void buildReportsEveryProblemAtOnce() {
        WorkflowDefinitionException e = assertThrows(WorkflowDefinitionException.class, () -> Workflow.named("w")
                .param("date", "")
                .step("a", s -> s.shell("echo ${date} ${dat}"))
                .step("a", s -> s.noop())
                .step("b", s -> s.noop().dependsOn("ghost").timeout(Duration.ofMillis(-1)))
                .build());

        assertEquals(List.of(
                new DefinitionError("a", "id", "duplicate step id (also step number 1)"),
                new DefinitionError("b", "timeout", "invalid duration `-1ms` (write e.g. \"500ms\", \"10s\", \"5m\", \"2h\", \"1d\")"),
                new DefinitionError("b", "depends_on.0", "unknown step `ghost`"),
                new DefinitionError("a", "command", "column 16: `dat` is neither a parameter nor a step (did you mean `date`?);"
                        + " declare it under `params:`, or write `$${...}` for a literal")),
                e.errors());
    }

    @Test
    void nullArgumentsFailFast() {
        assertThrows(NullPointerException.class, () -> Workflow.named("w").step("a", s -> s.shell(null)));
        assertThrows(NullPointerException.class, () -> Workflow.named("w").step("a", s -> s.dependsOn("x", null)));
        assertThrows(NullPointerException.class, () -> Workflow.named("w").step("a", null));
    }
}
