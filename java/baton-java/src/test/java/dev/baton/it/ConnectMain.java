package dev.baton.it;

import dev.baton.Baton;
import dev.baton.Workflow;
import java.nio.file.Path;

/** Holds the store in {@code args[0]} with a workflow of Java steps until its input ends (ConnectIT). */
public final class ConnectMain {
    public static void main(String[] args) throws Exception {
        try (Baton baton = Baton.open(Path.of(args[0]))) {
            long pid = ProcessHandle.current().pid();
            baton.register(Workflow.named("where").param("n", 1)
                    .step("count", s -> s.java(ctx -> {
                        ctx.output("twice", 2 * ctx.param("n", Long.class));
                        ctx.output("pid", pid);
                    }))
                    .build());
            System.out.println("READY");
            System.out.flush();
            while (System.in.read() >= 0) {
                // until the parent closes our input
            }
        }
    }
}
