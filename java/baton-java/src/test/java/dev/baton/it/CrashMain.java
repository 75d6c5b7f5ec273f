package dev.baton.it;

import dev.baton.Baton;
import java.nio.file.Path;
import java.time.Duration;

/** Runs {@link Chain} on the store in {@code args[0]}, slowly, until killed (CrashIT). */
public final class CrashMain {
    public static void main(String[] args) throws Exception {
        Baton baton = Baton.open(Path.of(args[0]));
        baton.register(Chain.workflow(Duration.ofMillis(150), line -> {
            System.out.println(line);
            System.out.flush();
        }));
        System.out.println("RUN " + baton.start(Chain.ID).id());
        System.out.flush();
        Thread.sleep(120_000);
    }
}
