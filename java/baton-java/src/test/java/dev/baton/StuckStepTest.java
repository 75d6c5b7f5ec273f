package dev.baton;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** A timed-out step whose code ignores the interrupt does not starve Baton's pool. */
@Timeout(60)
class StuckStepTest {

    @Test
    void aStepThatIgnoresItsTimeoutKeepsItsThreadAndOthersStillRun() throws Exception {
        AtomicBoolean release = new AtomicBoolean();
        CountDownLatch started = new CountDownLatch(1);
        try (Baton baton = Baton.inMemory(BatonOptions.builder().stepThreads(1).build())) {
            baton.register(Workflow.named("stubborn")
                    .step("hang", s -> s.timeout(Duration.ofMillis(200)).java(ctx -> {
                        started.countDown();
                        while (!release.get()) {
                            Thread.interrupted(); // ignores every interrupt
                            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(10));
                        }
                    }))
                    .build());
            baton.register(Workflow.named("next").step("work", s -> s.java(ctx -> ctx.output("ok", true))).build());

            RunResult timedOut = baton.start("stubborn").await(Duration.ofSeconds(30));
            assertEquals(RunStatus.FAILED, timedOut.status(), timedOut::toString);
            assertTrue(started.await(1, TimeUnit.SECONDS));

            // The only thread is still busy with `hang`; after the grace period Baton adds one.
            RunResult next = baton.start("next").await(Duration.ofSeconds(30));
            assertEquals(RunStatus.SUCCEEDED, next.status(), next::toString);
            assertEquals(true, next.step("work").output("ok"));
        } finally {
            release.set(true);
        }
    }
}
