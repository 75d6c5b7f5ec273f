package dev.baton;

import static dev.baton.Json.assertJsonEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.math.BigDecimal;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class WorkflowDslTest {

    @Test
    void readmeExampleProducesTheCoreModel() {
        JavaStep extract = ctx -> ctx.output("rows", 42L);
        Workflow etl = Workflow.named("nightly-etl")
                .param("date", "2026-11-24")
                .step("extract", s -> s.java(extract)
                        .retry(Retry.exponential(3, Duration.ofSeconds(1))).timeout(Duration.ofMinutes(5)))
                .step("transform", s -> s.dependsOn("extract").java(ctx -> {}))
                .step("load", s -> s.dependsOn("transform").shell("echo load ${date}"))
                .build();

        assertJsonEquals("""
                {
                  "id": "nightly-etl",
                  "params": {"date": "2026-11-24"},
                  "steps": [
                    {"id": "extract", "type": "java",
                     "retry": {"max_attempts": 3, "backoff": "exponential", "delay": "1s"},
                     "timeout": "5m"},
                    {"id": "transform", "type": "java", "depends_on": ["extract"]},
                    {"id": "load", "type": "shell", "command": "echo load ${date}", "depends_on": ["transform"]}
                  ]
                }""", etl.toJson());
        assertEquals(List.of("extract", "transform"), new ArrayList<>(etl.javaSteps().keySet()));
        assertEquals(extract, etl.javaSteps().get("extract"));
    }

    @Test
    void everyFieldIsWrittenUnderItsSnakeCaseName() {
        Workflow w = Workflow.named("all")
                .description("every field")
                .param("limit", 100)
                .param("date", "")
                .maxParallel(8)
                .timeout(Duration.ofHours(2))
                .step("a", s -> s.shell("echo rows=42 >> $BATON_OUTPUT")
                        .description("extract")
                        .env("DATE", "${date}")
                        .retry(Retry.linear(4, Duration.ofMillis(500)).maxDelay(Duration.ofMinutes(1)))
                        .timeout(Duration.ofSeconds(90))
                        .failureMode(FailureMode.FAIL_IMMEDIATELY))
                .step("b", s -> s.sleep(Duration.ofSeconds(2)).dependsOn("a"))
                .step("c", s -> s.noop().dependsOn("a", "b").failureMode(FailureMode.IGNORE_FAILURE)
                        .retry(Retry.fixed(2, Duration.ofDays(1))))
                .build();

        assertJsonEquals("""
                {
                  "id": "all", "description": "every field", "params": {"limit": 100, "date": ""},
                  "max_parallel": 8, "timeout": "2h",
                  "steps": [
                    {"id": "a", "type": "shell", "description": "extract",
                     "command": "echo rows=42 >> $BATON_OUTPUT", "env": {"DATE": "${date}"},
                     "retry": {"max_attempts": 4, "backoff": "linear", "delay": "500ms", "max_delay": "1m"},
                     "timeout": "90s", "failure_mode": "fail_immediately"},
                    {"id": "b", "type": "sleep", "duration": "2s", "depends_on": ["a"]},
                    {"id": "c", "type": "noop", "depends_on": ["a", "b"],
                     "retry": {"max_attempts": 2, "backoff": "fixed", "delay": "1d"},
                     "failure_mode": "ignore_failure"}
                  ]
                }""", w.toJson());
        assertTrue(w.javaSteps().isEmpty());
    }

    @Test
    void theDefaultFailureModeIsLeftOutAsTheCoreLeavesItOut() {
        Workflow w = Workflow.named("w")
                .step("a", s -> s.noop().failureMode(FailureMode.FAIL_AFTER_RUNNING))
                .build();
        assertFalse(Json.tree(w.toJson()).get("steps").get(0).has("failure_mode"));
        assertEquals(FailureMode.FAIL_AFTER_RUNNING, w.steps().get(0).failureMode());
    }

    @Test
    void retryPolicies() {
        Retry retry = Retry.exponential(5, Duration.ofSeconds(1));
        Retry capped = retry.maxDelay(Duration.ofMinutes(1));

        assertEquals(Retry.Backoff.EXPONENTIAL, retry.backoff());
        assertTrue(retry.maxDelay().isEmpty(), "maxDelay(Duration) returns a copy");
        assertEquals(Duration.ofMinutes(1), capped.maxDelay().orElseThrow());
        assertEquals(Retry.Backoff.FIXED, Retry.fixed(2, Duration.ZERO).backoff());
        assertEquals(Retry.Backoff.LINEAR, Retry.linear(2, Duration.ZERO).backoff());
        assertEquals(Retry.fixed(2, Duration.ofSeconds(1)), Retry.fixed(2, Duration.ofMillis(1000)));

        // What the core does not take, it reports at build() with every other problem.
        WorkflowDefinitionException e = assertThrows(WorkflowDefinitionException.class, () -> Workflow.named("w")
                .step("zero", s -> s.noop().retry(Retry.fixed(0, Duration.ofSeconds(1))))
                .step("negative", s -> s.noop().retry(Retry.fixed(1, Duration.ofSeconds(-1))))
                .step("fine", s -> s.noop().retry(Retry.fixed(1, Duration.ofNanos(1500))))
                .build());
        assertEquals(List.of(
                new DefinitionError("zero", "retry.max_attempts", "must be at least 1 (the first attempt counts)"),
                new DefinitionError("negative", "retry.delay",
                        "invalid duration `-1s` (write e.g. \"500ms\", \"10s\", \"5m\", \"2h\", \"1d\")"),
                new DefinitionError("fine", "retry.delay", "unknown unit `ns` in duration `1500ns` (use ms, s, m, h or d)")),
                e.errors());
    }

    @Test
    void hostKindsTakeParams() {
        Map<String, Object> options = new LinkedHashMap<>();
        options.put("partitions", 16);
        options.put("cache", true);
        Workflow w = Workflow.named("report")
                .param("date", "2026-11-24")
                .step("daily", s -> s.type("spark_sql")
                        .param("query", "select * from sales where day = '${date}'")
                        .param("options", options)
                        .param("tables", List.of("sales", "returns"))
                        .param("ratio", 0.25f)
                        .param("exact", new BigDecimal("0.10000000000000000001"))
                        .param("none", null))
                .build();

        assertJsonEquals("""
                {"id": "report", "params": {"date": "2026-11-24"}, "steps": [{"id": "daily", "type": "spark_sql", "params": {
                  "query": "select * from sales where day = '${date}'",
                  "options": {"partitions": 16, "cache": true},
                  "tables": ["sales", "returns"],
                  "ratio": 0.25,
                  "exact": 0.10000000000000000001,
                  "none": null}}]}""", w.toJson());
        Step daily = w.step("daily").orElseThrow();
        assertEquals("spark_sql", daily.kind());
        assertFalse(daily.isJava());
        assertEquals(16L, ((Map<?, ?>) daily.params().get("options")).get("partitions"), "integers are Longs");
        assertEquals(List.of("query", "options", "tables", "ratio", "exact", "none"),
                new ArrayList<>(daily.params().keySet()), "insertion order is kept");
    }

    @Test
    void paramsJsonCannotCarryAreRejectedAtOnce() {
        Workflow.Builder builder = Workflow.named("w");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> builder.param("when", new Object()));
        assertTrue(e.getMessage().startsWith("param `when`: a java.lang.Object is not a JSON value"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> builder.param("nan", Double.NaN));
        assertThrows(IllegalArgumentException.class, () -> builder.param("keys", Map.of(1, "one")));
    }

    @Test
    @SuppressWarnings("unchecked")
    void builtWorkflowsAreImmutable() {
        Map<String, Object> nested = new LinkedHashMap<>();
        nested.put("k", "v");
        Workflow.Builder builder = Workflow.named("w").param("nested", nested).step("a", s -> s.noop());
        Workflow first = builder.build();
        nested.put("k", "changed");
        builder.param("more", 1).step("b", s -> s.noop());

        assertEquals(Map.of("nested", Map.of("k", "v")), first.params());
        assertEquals(1, first.steps().size());
        assertEquals(2, builder.build().steps().size());
        assertThrows(UnsupportedOperationException.class, () -> first.params().put("x", 1));
        assertThrows(UnsupportedOperationException.class,
                () -> ((Map<String, Object>) first.params().get("nested")).put("x", 1));
        assertThrows(UnsupportedOperationException.class, () -> first.steps().clear());
        assertThrows(UnsupportedOperationException.class, () -> first.javaSteps().clear());
    }

    @Test
    void bindAttachesCodeToAJavaStep() {
        Workflow w = Workflow.named("w")
                .step("a", s -> s.type(Step.JAVA))
                .step("b", s -> s.noop())
                .build();
        JavaStep code = ctx -> {};

        Workflow bound = w.bind("a", code);

        assertTrue(w.javaSteps().isEmpty());
        assertEquals(Map.of("a", code), bound.javaSteps());
        assertEquals(w.toJson(), bound.toJson());
        assertThrows(IllegalArgumentException.class, () -> w.bind("b", code));
        assertThrows(IllegalArgumentException.class, () -> w.bind("nope", code));
    }
}
