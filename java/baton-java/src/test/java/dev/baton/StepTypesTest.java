package dev.baton;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Host-defined step types: the embedded form of job templates. */
@Timeout(60)
class StepTypesTest {

    private static final Duration WAIT = Duration.ofSeconds(30);

    private Baton baton;

    @BeforeEach
    void open() {
        baton = Baton.inMemory();
        baton.stepTypes().register("spark_sql", StepType.of(ctx -> {
            ctx.output("query", ctx.param("query"));
            ctx.output("cluster", ctx.param("cluster"));
            ctx.optionalParam("date").ifPresent(date -> ctx.output("date", date)); // only some workflows have it
            ctx.output("type_step", ctx.stepId());
        }).param("query").param("cluster", "default"));
    }

    @AfterEach
    void close() {
        baton.close();
    }

    @Test
    void stepsOfARegisteredTypeGetTheirParamsAndDefaults() {
        baton.register(Workflow.named("report")
                .param("date", "2026-11-24")
                .step("count", s -> s.type("spark_sql").param("query", "select count(*) from sales where day = '${date}'"))
                .step("big", s -> s.type("spark_sql").param("query", "select 1").param("cluster", "big"))
                .build());

        RunResult result = baton.start("report", Map.of("date", "2026-11-25")).await(WAIT).orThrow();

        assertEquals(Map.of("query", "select count(*) from sales where day = '2026-11-25'", "cluster", "default",
                "date", "2026-11-25", "type_step", "count"), result.step("count").outputs());
        assertEquals("big", result.step("big").output("cluster"));
        assertEquals("spark_sql", result.step("count").kind());
        assertEquals(Set.of("spark_sql"), baton.stepTypes().names());
    }

    @Test
    void yamlWorkflowsUseRegisteredTypesToo() {
        baton.register(Workflow.fromYaml("""
                id: from-yaml
                steps:
                  - id: q
                    type: spark_sql
                    params: {query: select 2}
                """, "inline.yaml"));
        assertEquals("select 2", baton.start("from-yaml").await(WAIT).orThrow().step("q").output("query"));
    }

    @Test
    void unknownAndMissingParamsAreDefinitionErrorsNamingTheStep() {
        WorkflowDefinitionException e = assertThrows(WorkflowDefinitionException.class, () -> baton.register(
                Workflow.named("bad")
                        .step("typo", s -> s.type("spark_sql").param("query", "x").param("clustr", "big"))
                        .step("none", s -> s.type("spark_sql"))
                        .build()));

        assertTrue(e.errors().stream().anyMatch(d -> "typo".equals(d.stepId()) && "params.clustr".equals(d.field())),
                e::getMessage);
        assertTrue(e.errors().stream().anyMatch(d -> "none".equals(d.stepId()) && d.message().contains("`query`")),
                e::getMessage);
    }

    @Test
    void anUnregisteredTypeIsADefinitionErrorNamingTheType() {
        WorkflowDefinitionException e = assertThrows(WorkflowDefinitionException.class, () -> baton.register(
                Workflow.named("bad").step("q", s -> s.type("hive_sql").param("query", "x")).build()));

        DefinitionError error = e.errors().get(0);
        assertEquals("q", error.stepId());
        assertEquals("type", error.field());
        assertTrue(error.message().contains("hive_sql"), error.message());
        assertTrue(error.message().contains("spark_sql"), error.message()); // the known types
    }

    @Test
    void aTypeNameIsAPlainIdentifier() {
        BatonException e = assertThrows(WorkflowDefinitionException.class,
                () -> baton.stepTypes().register("spark sql", StepType.of(ctx -> {})));
        assertTrue(e.getMessage().contains("invalid step type name `spark sql`: use letters, digits, `_`, `.` and `-`"),
                e.getMessage());
        assertThrows(WorkflowDefinitionException.class, () -> baton.stepTypes().register("shell", StepType.of(ctx -> {})));
    }

    @Test
    void aHandlerThatThrowsFailsItsStep() {
        baton.stepTypes().register("fails", StepType.of(ctx -> {
            throw new UnsupportedOperationException("no cluster");
        }));
        baton.register(Workflow.named("w").step("f", s -> s.type("fails")).build());

        RunResult result = baton.start("w").await(WAIT);

        assertEquals("java.lang.UnsupportedOperationException: no cluster", result.step("f").error().orElseThrow());
    }

    @Test
    void builtInTypesCannotBeReplaced() {
        assertThrows(WorkflowDefinitionException.class,
                () -> baton.stepTypes().register("shell", StepType.of(ctx -> {})));
        assertEquals(Set.of("spark_sql"), baton.stepTypes().names());
    }

    @Test
    void theNamesOfBuiltInKindsAreRefused() {
        for (String name : List.of("foreach", "java", "shell")) {
            WorkflowDefinitionException e = assertThrows(WorkflowDefinitionException.class,
                    () -> baton.stepTypes().register(name, StepType.of(ctx -> {})));
            assertEquals(List.of(new DefinitionError(null, null, "`" + name + "` is a built-in step type and cannot be replaced")),
                    e.errors());
        }
        assertEquals(Set.of("spark_sql"), baton.stepTypes().names());
        // Java steps still run: the refused `java` did not replace their dispatch.
        baton.register(Workflow.named("j").step("a", s -> s.java(ctx -> ctx.output("ok", true))).build());
        assertEquals(true, baton.start("j").await(WAIT).orThrow().step("a").output("ok"));
    }

    @Test
    void stepTypesAreImmutable() {
        StepType base = StepType.of(ctx -> {});
        StepType withParam = base.param("a").param("b", 2);
        assertEquals(Map.of(), base.params());
        assertTrue(withParam.params().containsKey("a"));
        assertEquals(null, withParam.params().get("a"));
        assertEquals(2L, withParam.params().get("b"));
        assertThrows(NullPointerException.class, () -> base.param("c", null));
        assertThrows(IllegalArgumentException.class, () -> base.param("c", new Object()));
    }
}
