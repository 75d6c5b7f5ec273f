package dev.baton;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalDate;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** What a Java developer passes to {@code ctx.output} and reads back with a type. */
@Timeout(60)
class TypedValuesTest {

    private static final Duration WAIT = Duration.ofSeconds(30);

    enum Tier { GOLD, SILVER }

    record Batch(String table, long rows, Tier tier, LocalDate day) {}

    /** A bean: getters and setters. */
    public static class Stats {
        private double ratio;

        public double getRatio() {
            return ratio;
        }

        public void setRatio(double ratio) {
            this.ratio = ratio;
        }
    }

    @Test
    void recordsEnumsTimesAndOptionalsGoOutAsJsonAndComeBackTyped() {
        Map<String, Object> seen = new ConcurrentHashMap<>();
        try (Baton baton = Baton.inMemory()) {
            baton.register(Workflow.named("typed")
                    .param("date", "2026-12-01")
                    .step("produce", s -> s.java(ctx -> {
                        ctx.output("batch", new Batch("events", 42, Tier.GOLD, LocalDate.of(2026, 12, 1)));
                        ctx.output("tier", Tier.SILVER);
                        ctx.output("at", Instant.parse("2026-12-01T02:00:00Z"));
                        ctx.output("took", Duration.ofMinutes(90));
                        ctx.output("none", Optional.empty());
                        ctx.output("some", Optional.of(7));
                        Stats stats = new Stats();
                        stats.setRatio(0.25);
                        ctx.output("stats", stats);
                        ctx.output("amount", new BigDecimal("12.50"));
                    }))
                    .step("consume", s -> s.dependsOn("produce").java(ctx -> {
                        seen.put("batch", ctx.input("produce", "batch", Batch.class));
                        seen.put("tier", ctx.input("produce", "tier", Tier.class));
                        seen.put("at", ctx.input("produce", "at", Instant.class));
                        seen.put("took", ctx.input("produce", "took", Duration.class));
                        seen.put("some", ctx.input("produce", "some", Integer.class));
                        seen.put("stats", ctx.input("produce", "stats", Stats.class).getRatio());
                        seen.put("day", ctx.param("date", LocalDate.class));
                        seen.put("none", ctx.optionalInput("produce", "none"));
                        seen.put("absent", ctx.optionalParam("nope"));
                    }))
                    .build());
            RunResult result = baton.start("typed").await(WAIT).orThrow();

            StepResult produce = result.step("produce");
            assertEquals(Map.of("table", "events", "rows", 42L, "tier", "GOLD", "day", "2026-12-01"),
                    produce.output("batch"));
            assertEquals("SILVER", produce.output("tier"));
            assertEquals("2026-12-01T02:00:00Z", produce.output("at"));
            assertEquals("PT1H30M", produce.output("took"));
            assertEquals(7L, produce.output("some"));
            assertTrue(produce.outputs().containsKey("none") && produce.output("none") == null, produce::toString);

            assertEquals(new Batch("events", 42, Tier.GOLD, LocalDate.of(2026, 12, 1)), seen.get("batch"));
            assertEquals(Tier.SILVER, seen.get("tier"));
            assertEquals(Instant.parse("2026-12-01T02:00:00Z"), seen.get("at"));
            assertEquals(Duration.ofMinutes(90), seen.get("took"));
            assertEquals(7, seen.get("some"));
            assertEquals(0.25, seen.get("stats"));
            assertEquals(LocalDate.of(2026, 12, 1), seen.get("day"));
            assertEquals(Optional.empty(), seen.get("none"));
            assertEquals(Optional.empty(), seen.get("absent"));
        }
    }

    @Test
    void bigNumbersKeepEveryDigitThroughTheEngine() {
        BigDecimal exact = new BigDecimal("0.10000000000000000001");
        BigInteger huge = new BigInteger("123456789012345678901234567890");
        Map<String, Object> seen = new ConcurrentHashMap<>();
        try (Baton baton = Baton.inMemory()) {
            baton.register(Workflow.named("exact")
                    .param("rate", exact)
                    .step("produce", s -> s.java(ctx -> {
                        ctx.output("sum", exact.add(exact));
                        ctx.output("huge", huge);
                        ctx.output("plain", 0.25);
                    }))
                    .step("consume", s -> s.dependsOn("produce").java(ctx -> {
                        seen.put("sum", ctx.input("produce", "sum", BigDecimal.class));
                        seen.put("huge", ctx.input("produce", "huge", BigInteger.class));
                        seen.put("rate", ctx.param("rate", BigDecimal.class));
                        seen.put("plain", ctx.input("produce", "plain"));
                    }))
                    .step("echo", s -> s.dependsOn("produce").shell("echo ${produce.sum} ${produce.huge}"))
                    .build());
            RunResult result = baton.start("exact").await(WAIT).orThrow();

            assertEquals(new BigDecimal("0.20000000000000000002"), seen.get("sum"));
            assertEquals(huge, seen.get("huge"));
            assertEquals(exact, seen.get("rate"));
            assertEquals(0.25, seen.get("plain"), "a number a double holds stays a Double");
            assertEquals(new BigDecimal("0.20000000000000000002"), result.step("produce").output("sum"));
            String echoed = result.step("echo").logTail().orElse("");
            assertTrue(echoed.contains("0.20000000000000000002 123456789012345678901234567890"), echoed);
        }
    }

    @Test
    void whatCannotBeJsonIsRefusedAtTheOutputCallNamingTheKeyAndTheType() {
        List<String> refused = new ArrayList<>();
        List<Object> cycle = new ArrayList<>();
        cycle.add(cycle);
        try (Baton baton = Baton.inMemory()) {
            baton.register(Workflow.named("bad").step("out", s -> s.java(ctx -> {
                for (Map.Entry<String, Object> e : Map.<String, Object>of(
                        "nan", Double.NaN, "cycle", cycle, "thing", new Object()).entrySet()) {
                    try {
                        ctx.output(e.getKey(), e.getValue());
                    } catch (IllegalArgumentException refusal) {
                        refused.add(refusal.getMessage());
                    }
                }
            })).build());
            baton.start("bad").await(WAIT).orThrow();
        }
        assertEquals(3, refused.size(), refused::toString);
        assertTrue(refused.stream().anyMatch(m -> m.startsWith("output `nan`: JSON has no NaN")), refused::toString);
        assertTrue(refused.stream().anyMatch(m -> m.startsWith("output `cycle`: a cycle")), refused::toString);
        assertTrue(refused.stream().anyMatch(m -> m.startsWith("output `thing`: a java.lang.Object is not a JSON value")),
                refused::toString);
    }

    @Test
    void aMisspelledNameThrowsWithTheNameMeant() {
        List<String> errors = new ArrayList<>();
        try (Baton baton = Baton.inMemory()) {
            baton.register(Workflow.named("typo")
                    .param("date", "2026-12-01")
                    .step("extract", s -> s.java(ctx -> ctx.output("rows", 42L)))
                    .step("load", s -> s.dependsOn("extract").java(ctx -> {
                        for (Runnable r : List.<Runnable>of(() -> ctx.param("dat"), () -> ctx.input("extract", "rowz"))) {
                            try {
                                r.run();
                            } catch (IllegalArgumentException e) {
                                errors.add(e.getMessage());
                            }
                        }
                    }))
                    .build());
            baton.start("typo").await(WAIT).orThrow();
        }
        assertEquals(List.of(
                "step `load` has no param `dat` (did you mean `date`?); its params: date",
                "step `load` has no input `extract.rowz` (did you mean `extract.rows`?); the outputs of its upstream steps: extract.rows"),
                errors);
    }
}
