package dev.baton;

import static dev.baton.Json.assertJsonEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class WorkflowJsonTest {

    private static final String FULL = """
            {
              "id": "nightly-etl",
              "description": "loads yesterday's sales",
              "params": {"date": "2026-11-24", "limit": 100, "ratio": 0.5, "tags": ["a", {"b": null}]},
              "max_parallel": 8,
              "timeout": "2h",
              "steps": [
                {"id": "extract", "type": "shell", "command": "echo rows=42 >> $BATON_OUTPUT",
                 "description": "dump", "env": {"DATE": "${date}", "LIMIT": "100"},
                 "retry": {"max_attempts": 3, "backoff": "exponential", "delay": "1s", "max_delay": "1m"},
                 "timeout": "10m", "failure_mode": "fail_immediately"},
                {"id": "pause", "type": "sleep", "duration": "2s", "depends_on": ["extract"]},
                {"id": "transform", "type": "java", "params": {"k": "v"}, "depends_on": ["pause"],
                 "failure_mode": "ignore_failure"},
                {"id": "report", "type": "spark_sql", "params": {"query": "select 1"},
                 "depends_on": ["extract", "transform"]}
              ]
            }""";

    @Test
    void roundTrip() {
        Workflow w = Workflow.fromJson(FULL);

        assertJsonEquals(FULL, w.toJson());
        assertJsonEquals(FULL, Workflow.fromJson(w.toJson()).toJson());
        assertEquals(w.steps(), Workflow.fromJson(w.toJson()).steps());
    }

    @Test
    void readIntoTheModel() {
        Workflow w = Workflow.fromJson(FULL);

        assertEquals("nightly-etl", w.id());
        assertEquals(8, w.maxParallel().getAsInt());
        assertEquals(Duration.ofHours(2), w.timeout().orElseThrow());
        assertEquals(100L, w.params().get("limit"));
        assertEquals(List.of("date", "limit", "ratio", "tags"), List.copyOf(w.params().keySet()));
        Step extract = w.steps().get(0);
        assertEquals(Retry.exponential(3, Duration.ofSeconds(1)).maxDelay(Duration.ofMinutes(1)), extract.retry().orElseThrow());
        assertEquals(FailureMode.FAIL_IMMEDIATELY, extract.failureMode());
        assertEquals(Map.of("DATE", "${date}", "LIMIT", "100"), extract.env());
        assertEquals(Duration.ofSeconds(2), w.steps().get(1).duration().orElseThrow());
        assertTrue(w.steps().get(2).isJava());
        assertTrue(w.javaSteps().isEmpty(), "code is bound later, not read from JSON");
    }

    @Test
    void theDslAndJsonBuildTheSameSteps() {
        Workflow dsl = Workflow.named("w")
                .param("n", 1)
                .step("a", s -> s.shell("echo ${n}").retry(Retry.fixed(2, Duration.ofMillis(1500))))
                .step("b", s -> s.java(ctx -> {}).dependsOn("a").param("x", List.of(1, 2.5)))
                .build();

        Workflow read = Workflow.fromJson(dsl.toJson());

        assertEquals(dsl.steps(), read.steps());
        assertEquals(dsl.params(), read.params());
        assertEquals("1500ms", Json.tree(dsl.toJson()).at("/steps/0/retry/delay").asText());
    }

    @Test
    void retryDefaultsAreTheCores() {
        Workflow w = Workflow.fromJson("""
                {"id": "w", "steps": [{"id": "a", "type": "noop", "retry": {"max_attempts": 2}}]}""");
        assertEquals(Retry.exponential(2, Duration.ofSeconds(1)), w.steps().get(0).retry().orElseThrow());
    }

    @Test
    void everyProblemInTheJsonIsReportedAtOnce() {
        WorkflowDefinitionException e = assertThrows(WorkflowDefinitionException.class, () -> Workflow.fromJson("""
                {"id": "w", "max_paralel": 2, "timeout": 10,
                 "steps": [
                   {"id": "a", "type": "shell", "command": 5, "retry": {"max_attempts": 0, "backoff": "random"}},
                   {"id": "b", "depends_on": ["a", 7], "failure_mode": "explode", "timeout": "10w"},
                   {"type": "noop", "env": {"X": [1]}},
                   "c"
                 ]}"""));

        assertEquals(List.of(
                new DefinitionError(null, "max_paralel",
                        "unknown field (known: id, description, params, max_parallel, timeout, signal_retention, steps, triggers, run_strategy, max_concurrent_runs)"),
                new DefinitionError(null, "timeout", "duration `10` needs a unit: ms, s, m, h or d (e.g. \"10s\")"),
                new DefinitionError("a", "command", "must be a string"),
                new DefinitionError("a", "retry.backoff", "must be one of fixed, linear, exponential, not \"random\""),
                new DefinitionError("b", "type", "`type` is missing"),
                new DefinitionError("b", "timeout", "unknown unit `w` in duration `10w` (use ms, s, m, h or d)"),
                new DefinitionError("b", "depends_on.1", "must be a step id (a string)"),
                new DefinitionError("b", "failure_mode",
                        "must be one of fail_after_running, fail_immediately, ignore_failure, not \"explode\""),
                new DefinitionError(null, "steps.2.id", "`id` is missing"),
                new DefinitionError(null, "steps.2.env.X", "must be a string, number or boolean"),
                new DefinitionError(null, "steps.3", "a step must be a JSON object")),
                e.errors());
    }

    @Test
    void zeroAttemptsIsReportedOnTheField() {
        WorkflowDefinitionException e = assertThrows(WorkflowDefinitionException.class, () -> Workflow.fromJson(
                "{\"id\": \"w\", \"steps\": [{\"id\": \"a\", \"type\": \"noop\", \"retry\": {\"max_attempts\": 0}}]}"));
        assertEquals("a", e.errors().get(0).stepId());
        assertEquals("retry.max_attempts", e.errors().get(0).field());
    }

    @Test
    void brokenJsonSaysWhere() {
        WorkflowDefinitionException e = assertThrows(WorkflowDefinitionException.class,
                () -> Workflow.fromJson("{\"id\": \"w\",\n \"steps\": [}"));
        assertEquals(1, e.errors().size());
        assertTrue(e.errors().get(0).message().startsWith("invalid JSON at line 2, column 12"), e.getMessage());

        assertThrows(WorkflowDefinitionException.class, () -> Workflow.fromJson("{\"id\": \"a\", \"id\": \"b\", \"steps\": []}"));
        assertThrows(WorkflowDefinitionException.class, () -> Workflow.fromJson("[]"));
        assertThrows(WorkflowDefinitionException.class, () -> Workflow.fromJson(""));
        assertThrows(WorkflowDefinitionException.class, () -> Workflow.fromJson("{\"id\": \"w\", \"steps\": []} {}"));
    }

    private static final String SCHEDULED = """
            {"id": "nightly", "params": {"date": ""},
             "steps": [{"id": "a", "type": "noop", "tags": ["warehouse", "db"]}],
             "triggers": [
               {"cron": "0 2 * * *", "timezone": "Europe/Paris", "misfire": "run_all",
                "params": {"date": "${format_date(trigger.scheduled_time, 'yyyy-MM-dd')}"}},
               {"signal": "table_ready", "match": "${signal.table == 'events'}"}],
             "run_strategy": "strict_sequential", "max_concurrent_runs": 2}""";

    @Test
    void triggersRunStrategyAndTagsRoundTrip() {
        Workflow w = Workflow.fromJson(SCHEDULED);
        assertJsonEquals(SCHEDULED, w.toJson());
        assertEquals(RunStrategy.STRICT_SEQUENTIAL, w.runStrategy());
        assertEquals(2, w.maxConcurrentRuns().getAsInt());
        assertEquals(List.of("warehouse", "db"), w.steps().get(0).tags());
        assertEquals(Misfire.RUN_ALL, w.triggers().get(0).misfire().orElseThrow());

        Workflow dsl = Workflow.named("nightly")
                .param("date", "")
                .trigger(WorkflowTrigger.cron("0 2 * * *").zone(java.time.ZoneId.of("Europe/Paris")).misfire(Misfire.RUN_ALL)
                        .param("date", "${format_date(trigger.scheduled_time, 'yyyy-MM-dd')}"))
                .onSignal("table_ready", "${signal.table == 'events'}")
                .runStrategy("strict_sequential")
                .maxConcurrentRuns(2)
                .step("a", s -> s.noop().tags("warehouse", "db"))
                .build();
        assertJsonEquals(SCHEDULED, dsl.toJson());
        assertEquals(w.triggers(), dsl.triggers());
        // The engine's parser reads it the same (YAML is a superset of JSON).
        assertJsonEquals(SCHEDULED, Workflow.fromYaml(dsl.toJson(), "dsl").toJson());
    }

    @Test
    void badTriggersAreReportedWithTheirField() {
        WorkflowDefinitionException e = assertThrows(WorkflowDefinitionException.class, () -> Workflow.fromJson("""
                {"id": "w", "steps": [{"id": "a", "type": "noop"}],
                 "triggers": [{"cron": "* * * * *", "signal": "x"}, {"cron": "0 * * * *", "misfire": "sometimes"}],
                 "run_strategy": "whenever"}"""));
        List<String> fields = e.errors().stream().map(DefinitionError::field).toList();
        assertTrue(fields.containsAll(List.of("triggers.0.cron", "triggers.1.misfire", "run_strategy")), fields::toString);
        assertThrows(IllegalArgumentException.class, () -> Workflow.named("w").runStrategy("whenever"));
        assertThrows(IllegalArgumentException.class, () -> WorkflowTrigger.signal("x").zone(java.time.ZoneId.of("UTC")));
    }
}
