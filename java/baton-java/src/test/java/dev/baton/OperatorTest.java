package dev.baton;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Steering runs from Java, and the control socket that lets other processes do it. */
@Timeout(60)
class OperatorTest {

    private static final Duration WAIT = Duration.ofSeconds(30);

    @TempDir
    Path dir;

    /** A workflow whose one Java step runs until it is asked to stop. */
    private static Workflow patient(CountDownLatch started) {
        return Workflow.named("patient")
                .step("wait", s -> s.java(ctx -> {
                    started.countDown();
                    while (!ctx.isStopRequested()) {
                        Thread.sleep(5);
                    }
                }))
                .build();
    }

    @Test
    void stopEndsARunningJavaStepAndTheRun() throws Exception {
        try (Baton baton = Baton.inMemory()) {
            CountDownLatch started = new CountDownLatch(1);
            baton.register(patient(started));
            Run run = baton.start("patient");
            assertTrue(started.await(10, TimeUnit.SECONDS));
            baton.stop(run.id());
            RunResult result = run.await(WAIT);
            assertEquals(RunStatus.STOPPED, result.status());
            assertEquals(StepStatus.STOPPED, result.step("wait").status());
            assertThrows(UnknownRunException.class, () -> baton.stop("no-such-run"));
        }
    }

    @Test
    void aStoreOnDiskOpensAnOwnerOnlyControlSocketUntilClosed() throws Exception {
        Path socket = dir.resolve("control.sock");
        try (Baton baton = Baton.open(dir)) {
            assertTrue(Files.exists(socket), "the control socket is open");
            assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(socket)));
        }
        assertFalse(Files.exists(socket), "closing removes the socket");
        try (Baton baton = Baton.open(dir, BatonOptions.builder().controlEndpoint(false).build())) {
            assertFalse(Files.exists(socket), "the endpoint can be turned off");
        }
    }

    @Test
    void runsCanBeStartedAndStoppedWithParams() throws Exception {
        try (Baton baton = Baton.inMemory()) {
            CountDownLatch started = new CountDownLatch(1);
            baton.register(patient(started));
            Run run = baton.start("patient", Map.of());
            assertTrue(started.await(10, TimeUnit.SECONDS));
            assertEquals(RunStatus.RUNNING, baton.run(run.id()).status());
            baton.stop(run.id());
            assertEquals(RunStatus.STOPPED, run.await(WAIT).status());
        }
    }
}
