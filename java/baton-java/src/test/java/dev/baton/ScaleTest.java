package dev.baton;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.management.ManagementFactory;
import java.lang.management.MemoryMXBean;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.atomic.LongAdder;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * 100,000 Java no-op steps in one JVM, through JNI, with flat memory: no reference, task or
 * context is kept once a step has answered.
 */
class ScaleTest {

    static final int RUNS = 10;
    static final int WIDTH = 10_000;
    /** The heap after GC may grow this much between the second run and the last. */
    static final long HEAP_GROWTH_BOUND = 24L << 20;

    @TempDir
    Path store;

    @Test
    @Timeout(120)
    void oneHundredThousandJavaStepsWithFlatMemory() {
        LongAdder ran = new LongAdder();
        JavaStep noop = ctx -> ran.increment();
        Workflow.Builder wide = Workflow.named("wide").maxParallel(64);
        for (int i = 0; i < WIDTH; i++) {
            wide.step("s" + i, s -> s.java(noop));
        }
        Workflow workflow = wide.build();
        long heapAfterWarmUp = 0;
        long rssAfterWarmUp = 0;
        long started = System.nanoTime();
        try (Baton baton = Baton.open(store)) { // on disk: an in-memory store grows with its records
            baton.register(workflow);
            for (int run = 1; run <= RUNS; run++) {
                RunResult result = baton.start("wide").await(Duration.ofSeconds(60)).orThrow();
                assertEquals(Map.of(StepStatus.SUCCEEDED, WIDTH), result.info().counts());
                if (run == 2) {
                    heapAfterWarmUp = usedHeapAfterGc();
                    rssAfterWarmUp = residentBytes();
                }
            }
            long heapAtEnd = usedHeapAfterGc();
            long rssAtEnd = residentBytes();
            double seconds = (System.nanoTime() - started) / 1e9;
            System.out.printf("ScaleTest: %,d Java steps in %.1f s (%.0f steps/s); after run 2 / run %d: heap after GC"
                    + " %d / %d MiB, resident %d / %d MiB%n", RUNS * WIDTH, seconds, RUNS * WIDTH / seconds, RUNS,
                    heapAfterWarmUp >> 20, heapAtEnd >> 20, rssAfterWarmUp >> 20, rssAtEnd >> 20);
            assertEquals((long) RUNS * WIDTH, ran.sum());
            assertTrue(heapAtEnd - heapAfterWarmUp < HEAP_GROWTH_BOUND,
                    "the heap grew by " + ((heapAtEnd - heapAfterWarmUp) >> 20) + " MiB over " + (RUNS - 2) + " runs");
        }
    }

    /**
     * The resident size of this process (Linux), or 0 where unknown. Printed, not asserted: it
     * follows the heap the JVM commits (50 to 400 MiB here from run to run) and the store's cache.
     */
    static long residentBytes() {
        try {
            for (String line : java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc/self/status"))) {
                if (line.startsWith("VmRSS:")) {
                    return Long.parseLong(line.replaceAll("[^0-9]", "")) << 10;
                }
            }
        } catch (java.io.IOException | RuntimeException e) {
            // not Linux
        }
        return 0;
    }

    static long usedHeapAfterGc() {
        MemoryMXBean memory = ManagementFactory.getMemoryMXBean();
        long used = Long.MAX_VALUE;
        // Several rounds: one System.gc() may leave garbage that a second collects.
        for (int i = 0; i < 3; i++) {
            System.gc();
            used = Math.min(used, memory.getHeapMemoryUsage().getUsed());
        }
        return used;
    }
}
