package dev.baton.it;

import dev.baton.Workflow;
import java.time.Duration;
import java.util.function.Consumer;

/** The workflow of the crash and exit tests: a chain of Java steps, each announcing itself. */
final class Chain {

    static final String ID = "chain";
    static final int LENGTH = 20;

    private Chain() {}

    /** Steps s0..s19, in a chain; each calls {@code announce} with "STEP id key", then sleeps. */
    static Workflow workflow(Duration stepTime, Consumer<String> announce) {
        Workflow.Builder chain = Workflow.named(ID);
        for (int i = 0; i < LENGTH; i++) {
            String id = "s" + i;
            String previous = "s" + (i - 1);
            chain.step(id, s -> {
                if (!id.equals("s0")) {
                    s.dependsOn(previous);
                }
                s.java(ctx -> {
                    announce.accept("STEP " + ctx.stepId() + " " + ctx.idempotencyKey());
                    Thread.sleep(stepTime.toMillis());
                    ctx.output("pid", ProcessHandle.current().pid());
                });
            });
        }
        return chain.build();
    }
}
