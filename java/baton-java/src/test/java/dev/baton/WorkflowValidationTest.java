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

        assertEquals(List.of(
                new DefinitionError(null, "max_parallel", "must be at least 1, not 0"),
                new DefinitionError("transform", "type", "no step kind: call shell(), noop(), sleep(), java() or type()"),
                new DefinitionError("extract", "id", "duplicate step id: steps 1 and 3 are both `extract`"),
                new DefinitionError("bad id!", "id", "`bad id!` is not a valid id: use letters, digits, `_`, `.` and `-`"),
                new DefinitionError(" ", "id", "the id of step 5 is blank"),
                new DefinitionError(null, "steps.5.id", "step 6 has no id"),
                new DefinitionError("twice", "type", "the step kind is set more than once: shell, then noop"),
                new DefinitionError("slow", "timeout", "a duration is kept to the millisecond, and PT0.000000001S has a finer part")),
                e.errors());
        assertEquals("nightly-etl", e.workflowId());
        assertEquals("""
                invalid workflow `nightly-etl` (8 problems):
                  workflow: max_parallel: must be at least 1, not 0
                  step `transform`: type: no step kind: call shell(), noop(), sleep(), java() or type()
                  step `extract`: id: duplicate step id: steps 1 and 3 are both `extract`
                  step `bad id!`: id: `bad id!` is not a valid id: use letters, digits, `_`, `.` and `-`
                  step ` `: id: the id of step 5 is blank
                  workflow: steps.5.id: step 6 has no id
                  step `twice`: type: the step kind is set more than once: shell, then noop
                  step `slow`: timeout: a duration is kept to the millisecond, and PT0.000000001S has a finer part""",
                e.getMessage());
    }

    @Test
    void workflowIdsAreChecked() {
        WorkflowDefinitionException missing = assertThrows(WorkflowDefinitionException.class,
                () -> Workflow.named(null).step("a", s -> s.noop()).build());
        assertEquals(List.of(new DefinitionError(null, "id", "the workflow has no id")), missing.errors());
        assertNull(missing.workflowId());
        assertEquals("invalid workflow (1 problem):\n  workflow: id: the workflow has no id", missing.getMessage());

        WorkflowDefinitionException spaces = assertThrows(WorkflowDefinitionException.class,
                () -> Workflow.named("nightly etl").timeout(Duration.ofSeconds(-1)).build());
        assertEquals(List.of(
                new DefinitionError(null, "id", "`nightly etl` is not a valid id: use letters, digits, `_`, `.` and `-`"),
                new DefinitionError(null, "timeout", "a duration cannot be negative (PT-1S)")),
                spaces.errors());
    }

    @Test
    void cyclesAndUnknownDependenciesAreLeftToTheEngine() {
        Workflow w = Workflow.named("w")
                .step("a", s -> s.noop().dependsOn("b"))
                .step("b", s -> s.noop().dependsOn("a", "ghost"))
                .build();
        assertEquals(List.of("a", "ghost"), w.step("b").orElseThrow().dependsOn());
    }

    @Test
    void nullArgumentsFailFast() {
        assertThrows(NullPointerException.class, () -> Workflow.named("w").step("a", s -> s.shell(null)));
        assertThrows(NullPointerException.class, () -> Workflow.named("w").step("a", s -> s.dependsOn("x", null)));
        assertThrows(NullPointerException.class, () -> Workflow.named("w").step("a", null));
    }
}
