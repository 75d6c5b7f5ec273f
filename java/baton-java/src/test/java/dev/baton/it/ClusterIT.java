package dev.baton.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.baton.Baton;
import dev.baton.BatonOptions;
import dev.baton.EngineInfo;
import dev.baton.RunEvent;
import dev.baton.RunInfo;
import dev.baton.RunStatus;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Two JVMs, engines {@code a} and {@code b} of one cluster on a throwaway PostgreSQL: {@code a}
 * starts runs of Java steps and is killed with kill -9 in their middle; {@code b}, which
 * registered the same workflow, takes every run over once {@code a}'s lease has passed and
 * finishes it. Skipped where PostgreSQL is not installed.
 */
class ClusterIT {

    private static final int RUNS = 6;

    private static Postgres pg;

    @TempDir
    Path dir;

    @BeforeAll
    static void startPostgres() throws Exception {
        Assumptions.assumeTrue(Postgres.binaries().isPresent(),
                "PostgreSQL is not installed (no initdb and postgres in /usr/lib/postgresql/*/bin or /usr/local/bin)");
        pg = Postgres.start();
    }

    @AfterAll
    static void stopPostgres() throws Exception {
        if (pg != null) {
            pg.close();
        }
    }

    @Test
    @Timeout(value = 60, unit = TimeUnit.SECONDS)
    void theRunsOfAJvmKilledMidRunFinishInTheOtherJvm() throws Exception {
        Path ledger = dir.resolve("ledger.txt");
        List<String> runIds = new ArrayList<>();
        try (ChildJvm b = ChildJvm.start(ClusterMain.class, pg.url(), "b", ledger.toString(), "0")) {
            b.awaitLine("READY b", 30);
            long pidA;
            try (ChildJvm a = ChildJvm.start(ClusterMain.class, pg.url(), "a", ledger.toString(), Integer.toString(RUNS))) {
                pidA = a.pid();
                a.awaitLine("READY a", 30);
                for (int i = 0; i < RUNS; i++) {
                    runIds.add(a.awaitLine("RUN ", 30).substring(4));
                }
                // Mid-run: a first step has done its work, no run can have ended.
                awaitLedger(ledger, lines -> !lines.isEmpty(), 30);
                a.kill9();
                a.assertNoWarnings();
            }
            List<String> atKill = ledgerLines(ledger);
            assertTrue(atKill.size() < RUNS * ClusterMain.STEPS, "every step ran before the kill: " + atKill);

            // b finishes every run; its listener sees them from the take-over on.
            String seenByB = b.awaitOutput(out -> runIds.stream().allMatch(id -> out.contains("EVENT " + id + " SUCCEEDED")),
                    "end of every run", 40);
            for (String id : runIds) {
                List<String> events = seenByB.lines().filter(l -> l.startsWith("EVENT " + id + " ")).toList();
                assertEquals("EVENT " + id + " RUNNING b", events.get(0), "b's first event of the run is its take-over");
                assertEquals("EVENT " + id + " SUCCEEDED -", events.get(events.size() - 1), events::toString);
            }

            // What the store says, read by a third engine.
            BatonOptions observer = BatonOptions.builder().engineId("observer").scheduler(false).build();
            try (Baton baton = Baton.open(pg.url(), observer)) {
                for (String id : runIds) {
                    RunInfo run = baton.run(id).info();
                    assertEquals(RunStatus.SUCCEEDED, run.status(), run::toString);
                    assertEquals("b", run.engine().orElse(null), "the survivor drove it last: " + run);
                    List<RunEvent> takeOvers = baton.timeline(id).stream().filter(e -> e.engine().isPresent()).toList();
                    assertEquals(1, takeOvers.size(), () -> baton.timeline(id).toString());
                    RunEvent takeOver = takeOvers.get(0);
                    assertEquals(RunEvent.Kind.RUN, takeOver.kind());
                    assertEquals("b", takeOver.engine().get());
                    assertEquals("RUNNING", takeOver.status());
                    assertEquals("taken over from engine a", takeOver.error().orElse(null));
                }
                Map<String, EngineInfo> engines = baton.engines().stream()
                        .collect(Collectors.toMap(EngineInfo::id, Function.identity()));
                assertEquals(Set.of("a", "b", "observer"), engines.keySet(), engines::toString);
                EngineInfo deadA = engines.get("a");
                assertFalse(deadA.alive(), deadA::toString);
                assertFalse(deadA.stopped(), "killed, not closed: " + deadA);
                assertEquals(0, deadA.runs(), deadA::toString);
                assertEquals(pidA, deadA.pid());
                EngineInfo liveB = engines.get("b");
                assertTrue(liveB.alive(), liveB::toString);
                assertEquals(b.pid(), liveB.pid());
                assertEquals(ClusterMain.LEASE, liveB.lease());
                assertTrue(liveB.claims(), liveB::toString);
                assertTrue(liveB.workflows().contains(ClusterMain.WORKFLOW), liveB::toString);
                assertTrue(liveB.kinds().contains("java"), liveB::toString);
                assertTrue(!liveB.heartbeat().isBefore(deadA.heartbeat()), "b beats on after a died");

                // Every step did its work, the ones left at the kill in b.
                List<String> lines = ledgerLines(ledger);
                for (String id : runIds) {
                    Set<String> steps = new HashSet<>();
                    for (String line : lines) {
                        String[] f = line.split(" ");
                        if (f[1].equals(id)) {
                            steps.add(f[2]);
                        }
                    }
                    assertEquals(ClusterMain.STEPS, steps.size(), () -> id + " in " + lines);
                    String last = "s" + ClusterMain.STEPS;
                    assertTrue(lines.contains("b " + id + " " + last + " 1"), () -> id + " in " + lines);
                }
                assertTrue(lines.stream().anyMatch(l -> l.startsWith("a ")), lines::toString);

                // b closes: the others see it stopped.
                b.closeInput();
                b.awaitLine("CLOSED b", 30);
                assertEquals(0, b.awaitExit(30), b::output);
                b.assertNoWarnings();
                EngineInfo closedB = baton.engines().stream().filter(e -> e.id().equals("b")).findFirst().orElseThrow();
                assertTrue(closedB.stopped() && !closedB.alive(), closedB::toString);
            }
        }
    }

    private static List<String> ledgerLines(Path ledger) throws Exception {
        return Files.exists(ledger) ? Files.readAllLines(ledger, StandardCharsets.UTF_8) : List.of();
    }

    private static void awaitLedger(Path ledger, java.util.function.Predicate<List<String>> done, long seconds) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        while (!done.test(ledgerLines(ledger))) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("the ledger did not fill in " + seconds + " s: " + ledgerLines(ledger));
            }
            Thread.sleep(20);
        }
    }
}
