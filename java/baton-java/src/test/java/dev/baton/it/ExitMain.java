package dev.baton.it;

import dev.baton.Baton;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;

/**
 * Starts {@link Chain} on the store in {@code args[0]} with steps that take a minute, and
 * returns from main while the first runs, without closing Baton (ExitWithoutCloseIT).
 */
public final class ExitMain {
    public static void main(String[] args) throws Exception {
        CountDownLatch running = new CountDownLatch(1);
        Baton baton = Baton.open(Path.of(args[0]));
        baton.register(Chain.workflow(Duration.ofMinutes(1), line -> running.countDown()));
        String runId = baton.start(Chain.ID).id();
        running.await();
        System.out.println("RUN " + runId);
        System.out.flush();
        // No close: the JVM must still exit, and the shutdown hook flush the store.
    }
}
