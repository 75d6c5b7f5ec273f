package dev.baton;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link BatonOptions.Builder#engineId} and {@link BatonOptions.Builder#lease} on a store
 * directory: the id names the engine on the runs it drives ({@link RunInfo#engine()}); a bad id
 * or lease fails {@link Baton#open}. The cluster itself (two JVMs on PostgreSQL) is ClusterIT.
 */
@Timeout(60)
class EngineIdTest {

    private static final Duration WAIT = Duration.ofSeconds(30);

    @TempDir
    Path store;

    private static Workflow hello() {
        return Workflow.named("hello").step("a", s -> s.java(ctx -> ctx.output("ok", true))).build();
    }

    private static BatonOptions engine(String id) {
        return BatonOptions.builder().engineId(id).lease(Duration.ofSeconds(2)).build();
    }

    @Test
    void theRunsAnEngineDrivesCarryItsId() {
        String first;
        try (Baton baton = Baton.open(store, engine("svc-1"))) {
            baton.register(hello());
            RunResult result = baton.start("hello").await(WAIT).orThrow();
            first = result.id();
            assertEquals(Optional.of("svc-1"), result.info().engine());
            assertEquals(Optional.of("svc-1"), baton.runs().get(0).engine());
            assertTrue(baton.timeline(first).stream().allMatch(e -> e.engine().isEmpty()), "no take-over here");
            // A store directory has one engine at a time: the one holding it.
            List<EngineInfo> engines = baton.engines();
            assertEquals(1, engines.size(), engines.toString());
            assertEquals("svc-1", engines.get(0).id());
            assertTrue(engines.get(0).alive());
            assertEquals(ProcessHandle.current().pid(), engines.get(0).pid());
        }
        try (Baton baton = Baton.open(store, engine("svc-2"))) {
            baton.register(hello());
            RunResult second = baton.start("hello").await(WAIT).orThrow();
            assertEquals(Optional.of("svc-2"), second.info().engine());
            assertEquals(Optional.of("svc-1"), baton.run(first).info().engine(), "the engine that drove it last");
        }
    }

    @Test
    void withoutAnIdTheEngineIsNamedByItsMachineAndProcess() {
        try (Baton baton = Baton.inMemory()) {
            baton.register(hello());
            String engine = baton.start("hello").await(WAIT).info().engine().orElseThrow();
            assertTrue(engine.endsWith("-" + ProcessHandle.current().pid()), engine);
        }
    }

    @Test
    void anIdThatIsNotAnIdFailsOpen() {
        InvalidRequestException e = assertThrows(InvalidRequestException.class,
                () -> Baton.open(store, engine("billing service")));
        assertTrue(e.getMessage().contains("engine id `billing service`"), e.getMessage());
        assertTrue(e.getMessage().contains("letters, digits"), e.getMessage());
        // Nothing is left holding the store.
        try (Baton baton = Baton.open(store, engine("billing.service-1"))) {
            baton.register(hello());
            assertEquals(Optional.of("billing.service-1"), baton.start("hello").await(WAIT).info().engine());
        }
    }

    @Test
    void aLeaseTooShortOrNotADurationFailsOpen() {
        InvalidRequestException tooShort = assertThrows(InvalidRequestException.class,
                () -> Baton.open(store, BatonOptions.builder().lease(Duration.ofMillis(100)).build()));
        assertTrue(tooShort.getMessage().contains("100ms is too short"), tooShort.getMessage());
        assertTrue(tooShort.getMessage().contains("at least 300ms"), tooShort.getMessage());
        InvalidRequestException notADuration = assertThrows(InvalidRequestException.class,
                () -> Baton.open(store, BatonOptions.builder().lease("soon").build()));
        assertTrue(notADuration.getMessage().startsWith("lease: "), notADuration.getMessage());
        assertTrue(notADuration.getMessage().contains("soon"), notADuration.getMessage());

        BatonOptions shortest = BatonOptions.builder().lease(Duration.ofMillis(300)).build();
        assertEquals(Optional.of("300ms"), shortest.lease());
        assertEquals(Optional.of("90s"), BatonOptions.builder().lease("90s").build().lease());
        try (Baton baton = Baton.open(store, shortest)) {
            baton.register(hello());
            assertEquals(RunStatus.SUCCEEDED, baton.start("hello").await(WAIT).status());
        }
    }

    @Test
    void maxRunsIsACountAndAStoreDirectoryIgnoresIt() {
        assertThrows(IllegalArgumentException.class, () -> BatonOptions.builder().maxRuns(0));
        BatonOptions capped = BatonOptions.builder().maxRuns(1).build();
        assertEquals(Optional.of(1), capped.maxRuns());
        assertEquals(Optional.empty(), BatonOptions.defaults().maxRuns());
        // One engine holds a store directory: it drives every run it starts, cap or not.
        try (Baton baton = Baton.open(store, capped)) {
            baton.register(hello());
            Run first = baton.start("hello");
            Run second = baton.start("hello");
            assertEquals(RunStatus.SUCCEEDED, first.await(WAIT).status());
            assertEquals(RunStatus.SUCCEEDED, second.await(WAIT).status());
        }
    }

    @Test
    void anEngineAndATakeOverAreReadFromTheEnginesJson() {
        EngineInfo e = EngineInfo.of(Json.tree("""
                {"id": "b", "host": "node-7", "pid": 4242, "started_ms": 1000, "heartbeat_ms": 5000, "lease_ms": 1000,
                 "kinds": ["java", "shell"], "workflows": ["ledger"], "claims": true, "stopped": false, "runs": 3,
                 "alive": true}"""));
        assertEquals(new EngineInfo("b", "node-7", 4242, Instant.ofEpochMilli(1000),
                Instant.ofEpochMilli(5000), Duration.ofSeconds(1), List.of("java", "shell"),
                List.of("ledger"), true, false, 3, true), e);
        RunEvent takeOver = RunEvent.of(Json.tree("""
                {"event": "run", "run_id": "R", "workflow_id": "ledger", "status": "RUNNING",
                 "error": "taken over from engine a", "at_ms": 7, "seq": 4, "engine": "b"}"""));
        assertEquals(Optional.of("b"), takeOver.engine());
        assertEquals(Optional.of("taken over from engine a"), takeOver.error());
        RunEvent plain = RunEvent.of(Json.tree("""
                {"event": "run", "run_id": "R", "workflow_id": "ledger", "status": "SUCCEEDED", "at_ms": 9, "seq": 9}"""));
        assertEquals(Optional.empty(), plain.engine());
    }
}
