package dev.baton.it;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.baton.Baton;
import dev.baton.RunResult;
import dev.baton.RunStatus;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link Baton#connect} from a second JVM: the child holds the store and has the Java code; this
 * JVM connects, starts a run and reads its result, and the run's Java step ran in the child.
 */
@Timeout(120)
class ConnectIT {

    @TempDir
    Path store;

    @Test
    void aSecondJvmStartsRunsOnTheEngineThatHoldsTheStore() throws Exception {
        try (ChildJvm child = ChildJvm.start(ConnectMain.class, store.toString())) {
            child.awaitLine("READY", 60);
            try (Baton ops = Baton.connect(store)) {
                RunResult result = ops.start("where", Map.of("n", 21)).await(Duration.ofSeconds(60));
                assertEquals(RunStatus.SUCCEEDED, result.status(), result::toString);
                assertEquals(42L, result.step("count").output("twice"));
                assertEquals(child.pid(), result.step("count").output("pid"), "the step ran in the engine's JVM");
                assertEquals(1, ops.runs().size());
            }
            child.closeInput();
            assertEquals(0, child.awaitExit(60), child::output);
            child.assertNoWarnings();
        }
    }
}
