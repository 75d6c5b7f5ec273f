package dev.baton;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.baton.internal.Envelope;
import dev.baton.internal.NativeBridge;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** foreach, while, subworkflow, signals: the DSL writes the core's model and Java steps run inside bodies. */
class ControlFlowTest {

    private static final Duration WAIT = Duration.ofSeconds(30);

    private Baton baton;

    @BeforeEach
    void open() {
        baton = Baton.inMemory();
    }

    @AfterEach
    void close() {
        baton.close();
    }

    @Test
    void foreachRunsJavaStepsOncePerItem() {
        AtomicInteger sum = new AtomicInteger();
        Set<String> seen = ConcurrentHashMap.newKeySet();
        baton.register(Workflow.named("etl")
                .param("partitions", List.of(1, 2, 3, 4))
                .step("per_partition", s -> s
                        .foreach("${partitions}", "partition", body -> body
                                .step("process", p -> p.java(ctx -> {
                                    sum.addAndGet(Integer.parseInt(ctx.param("partition")));
                                    ctx.output("rows", 100L);
                                }))
                                .step("record", p -> p.dependsOn("process").java(ctx -> seen.add(ctx.workflowId()))))
                        .maxParallel(2)
                        .failFast(true))
                .step("report", s -> s.dependsOn("per_partition").java(ctx -> ctx.output("done", true)))
                .build());

        RunResult result = baton.start("etl").await(WAIT).orThrow();

        assertEquals(10, sum.get());
        assertEquals(Set.of("etl.per_partition"), seen);
        assertEquals(4L, result.step("per_partition").output("iterations"));
        assertEquals(4L, result.step("per_partition").output("succeeded"));
        assertEquals(StepStatus.SUCCEEDED, result.step("report").status());
    }

    @Test
    void javaStepsInLoopBodiesSeeTheParamsAndUpstreamOutputsAroundTheLoop() {
        Set<String> seen = ConcurrentHashMap.newKeySet();
        baton.register(Workflow.named("scoped")
                .param("msg", "hello")
                .param("partitions", List.of(1, 2))
                .step("up", s -> s.java(ctx -> ctx.output("token", "t42")))
                .step("each", s -> s.dependsOn("up")
                        .foreach("${partitions}", "partition", body -> body
                                .step("process", p -> p.java(ctx -> seen.add(ctx.param("msg") + " "
                                        + ctx.param("partition") + " " + ctx.input("up", "token") + " "
                                        + ctx.inputs().keySet())))))
                .step("again", s -> s.dependsOn("up")
                        .whileLoop("${iteration < 1}", body -> body
                                .step("w", p -> p.java(ctx -> seen.add("while " + ctx.param("msg") + " "
                                        + ctx.input("up", "token"))))))
                .build());

        baton.start("scoped").await(WAIT).orThrow();

        assertEquals(Set.of("hello 1 t42 [up]", "hello 2 t42 [up]", "while hello t42"), seen);
    }

    @Test
    void whileLoopRunsUntilItsConditionFails() {
        AtomicInteger polls = new AtomicInteger();
        baton.register(Workflow.named("poll")
                .step("poll", s -> s
                        .whileLoop("${iteration == 0 || !check.complete}", body -> body
                                .step("check", c -> c.java(ctx -> ctx.output("complete", polls.incrementAndGet() >= 3))))
                        .maxIterations(10))
                .build());

        RunResult result = baton.start("poll").await(WAIT).orThrow();

        assertEquals(3, polls.get());
        assertEquals(3L, result.step("poll").output("iterations"));
    }

    @Test
    void aForeachOverAProductRunsEveryCombination() {
        List<String> seen = new CopyOnWriteArrayList<>();
        Map<String, Object> over = new java.util.LinkedHashMap<>();
        over.put("region", List.of("eu", "us"));
        over.put("day", "${days}");
        baton.register(Workflow.named("backfill")
                .param("days", List.of(1, 2))
                .step("each", s -> s.type("foreach").over(over)
                        .steps(body -> body.step("load", l -> l.java(ctx -> seen.add(ctx.param("region") + "-" + ctx.param("day"))))))
                .build());

        RunResult result = baton.start("backfill").await(WAIT).orThrow();

        assertEquals(4L, result.step("each").output("iterations"));
        assertEquals(Set.of("eu-1", "eu-2", "us-1", "us-2"), Set.copyOf(seen));
    }

    @Test
    void aWhileLoopCarriesAValueFromOneIterationToTheNext() {
        List<String> cursors = new CopyOnWriteArrayList<>();
        baton.register(Workflow.named("pages")
                .step("paginate", s -> s
                        .whileLoop("${cursor != 'c3'}", body -> body
                                .step("page", p -> p.java(ctx -> {
                                    String cursor = ctx.param("cursor");
                                    cursors.add(cursor);
                                    ctx.output("cursor", "c" + (cursor.isEmpty() ? 1 : Integer.parseInt(cursor.substring(1)) + 1));
                                })))
                        .carry("cursor", ""))
                .build());

        RunResult result = baton.start("pages").await(WAIT).orThrow();

        assertEquals(List.of("", "c1", "c2"), cursors);
        assertEquals("c3", result.step("paginate").output("cursor"));
        assertEquals(3L, result.step("paginate").output("iterations"));
    }

    @Test
    void aFinalFailureIsNotRetried() {
        AtomicInteger attempts = new AtomicInteger();
        baton.register(Workflow.named("final")
                .step("load", s -> s.retry(Retry.fixed(3, Duration.ZERO)).java(ctx -> {
                    attempts.incrementAndGet();
                    ctx.fail("table events does not exist");
                }))
                .build());

        RunResult result = baton.start("final").await(WAIT);

        assertEquals(RunStatus.FAILED, result.status());
        assertEquals(1, attempts.get());
        String error = result.step("load").error().orElse("");
        assertTrue(error.contains("table events does not exist") && error.contains("not retried"), error);
    }

    @Test
    void aNoopStepsParamsReachTheStepsAfterIt() {
        baton.register(Workflow.named("flow").param("date", "2026-12-01")
                .step("plan", s -> s.noop().param("day", "${date}").param("parts", 4))
                .step("use", s -> s.dependsOn("plan").java(ctx -> ctx.output("got",
                        ctx.input("plan", "day") + "/" + ctx.input("plan", "parts", Integer.class))))
                .build());

        RunResult result = baton.start("flow").await(WAIT).orThrow();

        assertEquals("2026-12-01/4", result.step("use").output("got"));
    }

    @Test
    void aSubworkflowPinsAVersionAndInheritsTheRunsParams() {
        baton.register(Workflow.named("child").param("date", "none")
                .step("v1", s -> s.java(ctx -> ctx.output("date", ctx.param("date")))).build());
        baton.register(Workflow.named("child").param("date", "none").step("v2", s -> s.noop()).build());
        baton.register(Workflow.named("parent").param("date", "2026-12-01")
                .step("sub", s -> s.subworkflow("child").version(1).inheritParams(true))
                .build());

        RunResult result = baton.start("parent").await(WAIT).orThrow();

        assertEquals(Map.of("date", "2026-12-01"), result.step("sub").output("v1"), "version 1 ran, with the run's date");
    }

    @Test
    void subworkflowOutputsReachDownstreamSteps() {
        baton.register(Workflow.named("load-table")
                .param("table", "none")
                .step("load", s -> s.java(ctx -> {
                    ctx.output("rows", 42L);
                    ctx.output("table", ctx.param("table"));
                }))
                .build());
        baton.register(Workflow.named("nightly")
                .step("load_events", s -> s.subworkflow("load-table").param("table", "events"))
                .step("check", s -> s.dependsOn("load_events")
                        .param("summary", "${load_events.load.table}:${load_events.load.rows}")
                        .java(ctx -> ctx.output("summary", ctx.param("summary"))))
                .build());

        RunResult result = baton.start("nightly").await(WAIT).orThrow();

        assertEquals("events:42", result.step("check").output("summary"));
    }

    @Test
    void aSignalReleasesTheMatchingWaitSignalStep() {
        baton.register(Workflow.named("consume")
                .param("date", "2026-11-24")
                .signalRetention(Duration.ofHours(1))
                .step("ready", s -> s.waitSignal("table_ready")
                        .match("${signal.table == 'events' && signal.date == date}")
                        .timeout(WAIT))
                .step("report", s -> s.dependsOn("ready").param("rows", "${ready.rows}")
                        .java(ctx -> ctx.output("rows", ctx.param("rows"))))
                .build());
        Run run = baton.start("consume");

        baton.signal("table_ready", Map.of("table", "orders", "date", "2026-11-24", "rows", 1));
        String id = baton.signal("table_ready", Map.of("table", "events", "date", "2026-11-24", "rows", 7));
        RunResult result = run.await(WAIT).orThrow();

        assertEquals("7", result.step("report").output("rows"));
        List<SignalInfo> signals = baton.signals("table_ready");
        assertEquals(2, signals.size());
        assertEquals(id, signals.get(1).id());
        assertEquals("events", signals.get(1).params().get("table"));
    }

    @Test
    void emitSignalChainsTwoWorkflows() {
        baton.register(Workflow.named("consume")
                .step("ready", s -> s.waitSignal("loaded").match("${signal.table == 'events'}").timeout(WAIT))
                .step("report", s -> s.dependsOn("ready").param("rows", "${ready.rows}")
                        .java(ctx -> ctx.output("rows", ctx.param("rows"))))
                .build());
        baton.register(Workflow.named("produce")
                .step("load", s -> s.java(ctx -> ctx.output("rows", 1234L))
                        .emitSignal("loaded", Map.of("table", "events", "rows", "${load.rows}")))
                .build());

        Run consumer = baton.start("consume");
        baton.start("produce").await(WAIT).orThrow();

        assertEquals("1234", consumer.await(WAIT).orThrow().step("report").output("rows"));
        assertTrue(baton.signals("loaded").get(0).source().isPresent());
    }

    @Test
    void theForeachExampleRoundTrips() {
        Workflow example = Workflow.fromYaml(Path.of("../../examples/control-flow/foreach.yaml"));
        Step loop = example.step("per_partition").orElseThrow();

        assertEquals("partition", loop.as().orElseThrow());
        assertEquals(4, loop.maxParallel().getAsInt());
        assertEquals(List.of("extract", "load"), loop.body().stream().map(Step::id).toList());
        assertEquals(example.steps(), Workflow.fromJson(example.toJson()).steps());
        assertEquals(example.toJson(), Workflow.fromJson(example.toJson()).toJson());
        baton.validate(example);
    }

    /** The DSL writes exactly what the engine reads from YAML: nothing lost, nothing added. */
    @Test
    void everyControlFlowExampleRoundTripsAsTheEngineWritesIt() throws Exception {
        for (String name : List.of("foreach", "consume", "produce", "subworkflow", "while", "load-table")) {
            String yaml = Files.readString(Path.of("../../examples/control-flow/" + name + ".yaml"));
            JsonNode engine = Envelope.unwrap(NativeBridge.check(yaml, name, true));
            Workflow example = Workflow.fromJson(engine.toString());
            assertEquals(engine, new ObjectMapper().readTree(example.toJson()), name);
        }
    }

    @Test
    void aProblemInsideABodyNamesItsField() {
        Workflow.Builder broken = Workflow.named("broken")
                .step("loop", s -> s.foreach("${[1, 2]}", "n", body -> body
                        .step("bad", b -> b.shell("echo ${nope(}"))));

        WorkflowDefinitionException e = assertThrows(WorkflowDefinitionException.class, broken::build);

        DefinitionError error = e.errors().get(0);
        assertEquals("loop/bad", error.stepId(), e.getMessage());
        assertTrue(error.field().startsWith("steps.0.command"), e.getMessage());
    }

    @Test
    void theDslNamesProblemsInsideABodyAsTheEngineDoes() {
        WorkflowDefinitionException e = assertThrows(WorkflowDefinitionException.class, () -> Workflow.named("w")
                .step("loop", s -> s.whileLoop("${iteration < 2}", body -> body.step("untyped", b -> {})))
                .build());

        assertEquals("loop/untyped", e.errors().get(0).stepId());
        assertEquals("steps.0.type", e.errors().get(0).field());
    }

    @Test
    void readingABodyStepWithAWrongFieldNamesIt() {
        String json = """
                {"id": "w", "steps": [{"id": "loop", "type": "foreach", "over": "${[1]}",
                  "steps": [{"id": "inner", "type": "shell", "command": 3}]}]}""";

        WorkflowDefinitionException e = assertThrows(WorkflowDefinitionException.class, () -> Workflow.fromJson(json));

        assertEquals("loop/inner", e.errors().get(0).stepId());
        assertEquals("steps.0.command", e.errors().get(0).field());
    }

    @Test
    void anUnboundJavaStepIsRefusedAtRegisterNamingTheBindToCall() {
        String json = """
                {"id": "w", "steps": [{"id": "first", "type": "java"},
                  {"id": "loop", "type": "foreach", "over": "${[1]}", "steps": [{"id": "inner", "type": "java"}]}]}""";
        Workflow workflow = Workflow.fromJson(json);
        assertEquals(List.of("first", "loop/inner"), workflow.unboundJavaSteps());

        WorkflowDefinitionException e = assertThrows(WorkflowDefinitionException.class,
                () -> baton.register(workflow.bind("first", ctx -> {})));
        assertEquals(1, e.errors().size(), e::getMessage);
        assertEquals("loop/inner", e.errors().get(0).stepId());
        assertTrue(e.getMessage().contains("workflow.bind(\"loop/inner\", ctx -> ...)"), e.getMessage());
        assertEquals(List.of(), baton.workflows(), "nothing was registered");

        IllegalArgumentException wrong = assertThrows(IllegalArgumentException.class,
                () -> workflow.bind("inner", ctx -> {}));
        assertTrue(wrong.getMessage().contains("did you mean `loop/inner`"), wrong.getMessage());
    }

    @Test
    void bindReachesJavaStepsInBodies() {
        String json = """
                {"id": "w", "steps": [{"id": "loop", "type": "foreach", "over": "${[1, 2, 3]}", "as": "n",
                  "steps": [{"id": "inner", "type": "java"}]}]}""";
        AtomicInteger sum = new AtomicInteger();
        baton.register(Workflow.fromJson(json).bind("loop/inner", ctx -> sum.addAndGet(Integer.parseInt(ctx.param("n")))));

        baton.start("w").await(WAIT).orThrow();

        assertEquals(6, sum.get());
    }
}
