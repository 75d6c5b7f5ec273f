package dev.baton.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.baton.Baton;
import dev.baton.RunResult;
import dev.baton.RunStatus;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A program that never calls close() still exits promptly (no thread of Baton keeps the JVM
 * alive), and its shutdown hook leaves the store closed cleanly: the next JVM opens it and
 * finishes the run.
 */
@Timeout(120)
class ExitWithoutCloseIT {

    @TempDir
    Path store;

    @Test
    void theJvmExitsWithoutCloseAndTheRunResumesLater() throws Exception {
        String runId;
        try (ChildJvm child = ChildJvm.start(ExitMain.class, store.toString())) {
            runId = child.awaitLine("RUN ", 60).substring(4);
            long returned = System.nanoTime();
            assertEquals(0, child.awaitExit(30), child::output);
            long seconds = (System.nanoTime() - returned) / 1_000_000_000L;
            assertTrue(seconds < 10, "the JVM took " + seconds + " s to exit");
            child.assertNoWarnings();
        }

        try (Baton baton = Baton.open(store)) {
            assertFalse(baton.run(runId).status().isFinal(), () -> baton.run(runId).toString());
            baton.register(Chain.workflow(Duration.ZERO, line -> {}));
            RunResult result = baton.await(runId, Duration.ofSeconds(60));
            assertEquals(RunStatus.SUCCEEDED, result.status(), result::toString);
        }
    }
}
