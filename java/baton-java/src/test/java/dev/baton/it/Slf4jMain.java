package dev.baton.it;

import dev.baton.Baton;
import dev.baton.Workflow;
import dev.baton.internal.Logs;
import java.time.Duration;

/** Runs a workflow with a failing step, with SLF4J on the class path (Slf4jLoggingIT). */
public final class Slf4jMain {
    public static void main(String[] args) throws Exception {
        System.out.println("BACKEND " + Logs.backend());
        try (Baton baton = Baton.inMemory()) {
            baton.register(Workflow.named("slf4j").step("fails", s -> s.java(ctx -> {
                throw new IllegalStateException("through slf4j");
            })).build());
            baton.start("slf4j").await(Duration.ofSeconds(30));
            Thread.sleep(1_000); // logs are forwarded by a thread: let it drain
        }
        System.out.println("OK");
    }
}
