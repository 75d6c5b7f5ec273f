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
                {"id": "w", "timeout": "10",
                 "steps": [
                   {"id": "a", "type": "shell", "command": "echo", "retry": {"max_attempts": 0}},
                   {"id": "b", "type": "", "depends_on": ["a", "zz"], "timeout": "10w"},
                   {"id": "", "type": "noop", "env": {"X": "1"}}
                 ]}"""));

        assertEquals(List.of(
                "workflow: timeout: duration `10` needs a unit: ms, s, m, h or d (e.g. \"10s\")",
                "step `a`: retry.max_attempts: must be at least 1 (the first attempt counts)",
                "step `b`: type: the step has no type; known types: foreach, http, noop, shell, sleep, subworkflow, wait_signal, while",
                "step `b`: depends_on.1: unknown step `zz`",
                "step `b`: timeout: unknown unit `w` in duration `10w` (use ms, s, m, h or d)",
                "step ``: id: invalid step id ``: use letters, digits, `_`, `.` and `-`",
                "step ``: env: `env` is not used by `noop` steps"),
                e.errors().stream().map(d -> new DefinitionError(d.stepId(), d.field(), d.message()).toString()).toList());
        DefinitionError timeout = e.errors().get(0);
        assertEquals(List.of(1, 13), List.of(timeout.line(), timeout.column()), "positions in the text, no file");
        assertEquals(null, timeout.file());
    }

    @Test
    void aShapeProblemComesAloneWithItsPositionAndASuggestion() {
        WorkflowDefinitionException e = assertThrows(WorkflowDefinitionException.class, () -> Workflow.fromJson("""
                {"id": "w", "max_paralel": 2,
                 "steps": [{"id": "a", "type": "shell", "command": 5}]}"""));

        assertEquals(List.of(new DefinitionError(null, "max_paralel", "unknown field `max_paralel`, expected one of `id`,"
                + " `description`, `params`, `secrets`, `required`, `computed`, `max_parallel`, `timeout`, `signal_retention`, `steps`, `triggers`,"
                + " `run_strategy`, `max_concurrent_runs` (did you mean `max_parallel`?)", null, 1, 25)), e.errors());
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
        assertEquals(List.of(new DefinitionError(null, null, "expected value", null, 2, 12)), e.errors());
        assertTrue(e.getMessage().endsWith("line 2, column 12: workflow: expected value"), e.getMessage());
        DefinitionError named = assertThrows(WorkflowDefinitionException.class,
                () -> Workflow.fromJson("{\"id\": \"w\",\n \"steps\": [}", "etl.json")).errors().get(0);
        assertEquals("etl.json:2:12: workflow: expected value", named.toString());

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
             "run_strategy": "strict_sequential"}""";

    @Test
    void triggersRunStrategyAndTagsRoundTrip() {
        Workflow w = Workflow.fromJson(SCHEDULED);
        assertJsonEquals(SCHEDULED, w.toJson());
        assertEquals(RunStrategy.STRICT_SEQUENTIAL, w.runStrategy());
        assertTrue(w.maxConcurrentRuns().isEmpty());
        assertEquals(2, Workflow.named("w").maxConcurrentRuns(2).step("a", s -> s.noop()).build().maxConcurrentRuns().getAsInt());
        assertEquals(List.of("warehouse", "db"), w.steps().get(0).tags());
        assertEquals(Misfire.RUN_ALL, w.triggers().get(0).misfire().orElseThrow());

        Workflow dsl = Workflow.named("nightly")
                .param("date", "")
                .trigger(WorkflowTrigger.cron("0 2 * * *").zone(java.time.ZoneId.of("Europe/Paris")).misfire(Misfire.RUN_ALL)
                        .param("date", "${format_date(trigger.scheduled_time, 'yyyy-MM-dd')}"))
                .onSignal("table_ready", "${signal.table == 'events'}")
                .runStrategy("strict_sequential")
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
                 "triggers": [{"cron": "* * * * *", "signal": "x"}, {"signal": "y", "misfire": "skip"}],
                 "run_strategy": "sequential", "max_concurrent_runs": 2}"""));
        List<String> fields = e.errors().stream().map(DefinitionError::field).toList();
        assertEquals(List.of("triggers.0", "triggers.1.misfire", "max_concurrent_runs"), fields);

        WorkflowDefinitionException shape = assertThrows(WorkflowDefinitionException.class, () -> Workflow.fromJson("""
                {"id": "w", "steps": [{"id": "a", "type": "noop"}], "triggers": [{"cron": "0 * * * *", "misfire": "sometimes"}]}"""));
        assertEquals("triggers.0.misfire", shape.errors().get(0).field());
        assertThrows(IllegalArgumentException.class, () -> Workflow.named("w").runStrategy("whenever"));

        WorkflowDefinitionException dsl = assertThrows(WorkflowDefinitionException.class, () -> Workflow.named("w")
                .trigger(WorkflowTrigger.signal("x").zone(java.time.ZoneId.of("UTC")))
                .step("a", s -> s.noop())
                .build());
        assertEquals(List.of(new DefinitionError(null, "triggers.0.timezone", "applies to `cron` triggers only")), dsl.errors());
    }
}
