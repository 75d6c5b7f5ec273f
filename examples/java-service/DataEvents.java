// Control flow in Java: a while loop that polls, a subworkflow, and two workflows chained
// by a signal (the same steps as examples/control-flow/*.yaml, written with the DSL).
//
//   examples/java-service/run.sh --main DataEvents       (an in-memory engine)

import dev.baton.Baton;
import dev.baton.Run;
import dev.baton.RunResult;
import dev.baton.Workflow;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;

public class DataEvents {

    public static void main(String[] args) {
        AtomicInteger polls = new AtomicInteger();
        try (Baton baton = Baton.inMemory()) {
            // A workflow of its own, run as a child of `produce-events`.
            baton.register(Workflow.named("load-table")
                .param("table", "none")
                .step("load", s -> s.java(ctx -> ctx.output("rows", 1234L)))
                .build());

            Workflow produce = Workflow.named("produce-events")
                .param("date", "2026-11-24")
                // Poll until the export is complete: the condition sees the previous iteration's outputs.
                .step("poll", s -> s.whileLoop("${iteration == 0 || !check.complete}", body -> body
                        .step("check", c -> c.java(ctx -> ctx.output("complete", polls.incrementAndGet() >= 3))))
                    .maxIterations(20))
                .step("load_events", s -> s.dependsOn("poll").subworkflow("load-table").param("table", "events")
                    // When the load succeeds, tell whoever waits for the table.
                    .emitSignal("table_ready", Map.of("table", "events", "date", "${date}", "rows", "${load_events.load.rows}")))
                .build();

            Workflow consume = Workflow.named("consume-events")
                .param("date", "2026-11-24")
                .signalRetention(Duration.ofDays(2))
                .step("events_ready", s -> s.waitSignal("table_ready")
                    .match("${signal.table == 'events' && signal.date == date}")
                    .timeout(Duration.ofHours(6)))
                .step("report", s -> s.dependsOn("events_ready").shell("echo events of ${date}: ${events_ready.rows} rows"))
                .build();
            baton.register(produce);
            baton.register(consume);

            Run waiting = baton.start("consume-events", Map.of());     // waits for the signal
            RunResult produced = baton.start("produce-events", Map.of()).await(Duration.ofMinutes(1));
            RunResult consumed = waiting.await(Duration.ofMinutes(1));

            System.out.println(produced);
            System.out.println(consumed);
            System.out.println("polls:          " + produced.step("poll").output("iterations"));
            System.out.println("rows signalled: " + consumed.step("events_ready").output("rows"));
            produced.orThrow();
            consumed.orThrow();
        }
    }
}
