package dev.baton.it;

import dev.baton.Baton;
import dev.baton.BatonOptions;
import dev.baton.RunEvent;
import dev.baton.Workflow;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;

/**
 * One engine of ClusterIT's cluster: opens the database {@code args[0]} as engine {@code
 * args[1]} with a short lease, registers {@link #workflow} (whose steps append to the ledger
 * {@code args[2]}), and starts {@code args[3]} runs of it. Prints {@code READY id}, then
 * {@code RUN id} per run started, and {@code EVENT run status engine-or-dash} for each run
 * event its listener receives; closes when its standard input ends.
 */
public final class ClusterMain {

    static final String WORKFLOW = "ledger";
    static final int STEPS = 4;
    static final Duration STEP_TIME = Duration.ofMillis(400);
    static final Duration LEASE = Duration.ofSeconds(1);

    public static void main(String[] args) throws Exception {
        String url = args[0];
        String engineId = args[1];
        Path ledger = Path.of(args[2]);
        int runs = Integer.parseInt(args[3]);
        BatonOptions options = BatonOptions.builder().engineId(engineId).lease(LEASE).stepThreads(8).build();
        Baton baton = Baton.open(url, options);
        baton.onEvent(e -> {
            if (e.kind() == RunEvent.Kind.RUN) {
                say("EVENT " + e.runId() + " " + e.status() + " " + e.engine().orElse("-"));
            }
        });
        baton.register(workflow(ledger, engineId));
        say("READY " + engineId);
        for (int i = 0; i < runs; i++) {
            say("RUN " + baton.start(WORKFLOW).id());
        }
        try (BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
            while (in.readLine() != null) {
                // until the test closes our input
            }
        }
        baton.close();
        say("CLOSED " + engineId);
    }

    /**
     * Steps s1..s4 in a chain; each sleeps, then appends "engine run step attempt" to the
     * ledger: a line per attempt that finished its work, whichever engine ran it.
     */
    static Workflow workflow(Path ledger, String engineId) {
        Workflow.Builder chain = Workflow.named(WORKFLOW);
        for (int i = 1; i <= STEPS; i++) {
            String id = "s" + i;
            String previous = "s" + (i - 1);
            chain.step(id, s -> {
                if (!id.equals("s1")) {
                    s.dependsOn(previous);
                }
                s.java(ctx -> {
                    Thread.sleep(STEP_TIME.toMillis());
                    String line = engineId + " " + ctx.runId() + " " + ctx.stepId() + " " + ctx.attempt() + "\n";
                    // One short append: whole lines, even with two JVMs writing.
                    Files.writeString(ledger, line, StandardCharsets.UTF_8, StandardOpenOption.CREATE,
                            StandardOpenOption.APPEND);
                });
            });
        }
        return chain.build();
    }

    private static synchronized void say(String line) {
        System.out.println(line);
        System.out.flush();
    }
}
