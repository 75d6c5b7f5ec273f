package dev.baton;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link Baton#connect}: a Baton that reaches the live engine holding a store through its control
 * socket, as the {@code baton} command does. The engine here is another Baton of this JVM; it
 * could as well be another process (the socket is the same).
 */
@Timeout(60)
class ConnectTest {

    private static final Duration WAIT = Duration.ofSeconds(30);

    @TempDir
    Path store;

    private static Workflow echo() {
        return Workflow.named("echo").param("word", "hi").step("say", s -> s.shell("echo ${word}")).build();
    }

    @Test
    void aConnectedBatonQueriesStartsSignalsAndActsThroughTheLiveEngine() {
        try (Baton engine = Baton.open(store); Baton ops = Baton.connect(store)) {
            assertEquals(1, ops.register(echo()));
            assertEquals(List.of("echo"), engine.workflows().stream().map(WorkflowInfo::id).toList(),
                    "registered in the engine's store");
            RunResult done = ops.start("echo", Map.of("word", "there")).await(WAIT).orThrow();
            assertEquals(RunStatus.SUCCEEDED, done.status());
            assertEquals("there", engine.run(done.id()).params().get("word"));
            assertEquals(List.of(done.id()), ops.runs().stream().map(RunInfo::id).toList());
            assertTrue(ops.timeline(done.id()).size() >= 4, "the run's events, from the engine");
            assertEquals(1, ops.engines().size());

            engine.register(Workflow.named("gate").step("wait", s -> s.waitSignal("go")).build());
            Run gated = ops.start("gate");
            String signal = ops.signal("go", Map.of("table", "events"));
            assertEquals(RunStatus.SUCCEEDED, gated.await(WAIT).status());
            SignalInfo sent = ops.signals("go").get(0);
            assertEquals(signal, sent.id());
            assertEquals(Map.of("table", "events"), sent.params());

            engine.register(Workflow.named("nap").step("nap", s -> s.sleep(Duration.ofMinutes(5))).build());
            Run nap = ops.start("nap");
            ops.stop(nap.id());
            assertEquals(RunStatus.STOPPED, ops.await(nap.id(), WAIT).status());
            assertThrows(UnknownRunException.class, () -> ops.run("no-such-run"));
        }
    }

    @Test
    void whatNeedsCodeInThisJvmIsRefusedWithAReason() {
        try (Baton engine = Baton.open(store); Baton ops = Baton.connect(store)) {
            Workflow java = Workflow.named("java").step("a", s -> s.java(ctx -> ctx.output("ok", true))).build();
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> ops.register(java));
            assertTrue(e.getMessage().contains("runs no steps"), e.getMessage());
            assertThrows(IllegalStateException.class, () -> ops.onEvent(event -> { }));
            assertThrows(IllegalStateException.class, ops::recover);
            assertThrows(IllegalStateException.class, () -> ops.overrideStep("java", "a", ctx -> { }));
            ops.close();
            assertTrue(ops.isClosed());
            assertThrows(IllegalStateException.class, ops::runs);
            assertEquals(List.of(), engine.runs(), "the engine goes on without it");
        }
    }

    @Test
    void aStoreNoLiveEngineHoldsCannotBeConnectedTo() {
        StoreException e = assertThrows(StoreException.class, () -> Baton.connect(store));
        assertTrue(e.getMessage().contains("control.sock") && e.getMessage().contains("Baton.open"), e.getMessage());
    }
}
