package dev.baton;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Conditions and trigger rules from the DSL: an if/else with its join. */
@Timeout(60)
class ConditionsTest {

    private static Workflow branches() {
        return Workflow.named("branches")
                .param("threshold", 10)
                .step("count", s -> s.java(ctx -> ctx.output("rows", 5L)))
                .step("big", s -> s.dependsOn("count").when("${count.rows > threshold}").java(ctx -> {}))
                .step("small", s -> s.dependsOn("count").when("${count.rows <= threshold}").java(ctx -> ctx.output("took", "small")))
                .step("join", s -> s.dependsOn("big", "small").trigger(Trigger.NONE_FAILED).noop())
                .step("cleanup", s -> s.dependsOn("count").trigger(Trigger.ONE_FAILED).noop())
                .build();
    }

    @Test
    void theTakenBranchRunsAndTheJoinFollows() {
        try (Baton baton = Baton.inMemory()) {
            baton.register(branches());
            RunResult result = baton.start("branches", Map.of("threshold", 3)).await(Duration.ofSeconds(30));
            assertEquals(RunStatus.SUCCEEDED, result.status(), result::toString);
            assertEquals(StepStatus.SUCCEEDED, result.step("big").status());
            assertEquals(StepStatus.SKIPPED, result.step("small").status());
            assertTrue(result.step("small").error().orElse("").contains("`when` is false"), result::toString);
            assertEquals(StepStatus.SUCCEEDED, result.step("join").status());
            assertEquals(StepStatus.SKIPPED, result.step("cleanup").status());

            RunResult other = baton.start("branches").await(Duration.ofSeconds(30));
            assertEquals(StepStatus.SKIPPED, other.step("big").status());
            assertEquals("small", other.step("small").output("took"));
            assertEquals(StepStatus.SUCCEEDED, other.step("join").status());
        }
    }

    @Test
    void whenAndTriggerSurviveJson() {
        Workflow wf = branches();
        Workflow back = Workflow.fromJson(wf.toJson());
        assertEquals(wf.step("big").orElseThrow().when(), back.step("big").orElseThrow().when());
        assertEquals(Trigger.NONE_FAILED, back.step("join").orElseThrow().trigger());
        assertTrue(wf.toJson().contains("\"trigger\":\"none_failed\""), wf.toJson());
    }
}
