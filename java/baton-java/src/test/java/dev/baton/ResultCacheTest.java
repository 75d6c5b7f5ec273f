package dev.baton;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** A cached Java step is called once while its key holds; later runs are served its outputs. */
@Timeout(60)
class ResultCacheTest {

    private static final Duration WAIT = Duration.ofSeconds(30);

    private Baton baton;

    @BeforeEach
    void open() {
        baton = Baton.inMemory();
    }

    @AfterEach
    void close() {
        baton.close();
    }

    @Test
    void aCachedJavaStepIsCalledOnceOverTwoRunsAndReadsBackAsCached() {
        AtomicInteger calls = new AtomicInteger();
        Workflow features = Workflow.named("features")
                .param("date", "2026-01-01")
                .step("build", s -> s.java(ctx -> {
                    calls.incrementAndGet();
                    ctx.output("rows", 42);
                }).cache(Duration.ofDays(7)))
                .step("report", s -> s.dependsOn("build").java(ctx -> ctx.output("seen", ctx.input("build", "rows"))))
                .build();
        Step build = features.steps().get(0);
        assertEquals(Duration.ofDays(7), build.cacheTtl().orElseThrow());
        assertTrue(build.cacheKey().isEmpty());
        baton.register(features);

        RunResult first = baton.start("features", Map.of()).await(WAIT);
        RunResult second = baton.start("features", Map.of()).await(WAIT);

        assertEquals(RunStatus.SUCCEEDED, second.status(), second::toString);
        assertEquals(1, calls.get(), "the second run was served from the cache");
        assertFalse(first.step("build").cached());
        assertTrue(second.step("build").cached());
        assertEquals(first.id(), second.step("build").cachedFrom().orElseThrow());
        assertEquals(1, second.step("build").attempts());
        assertEquals(42L, second.step("report").output("seen"));
        assertFalse(second.step("report").cached());

        RunResult otherDay = baton.start("features", Map.of("date", "2026-01-02")).await(WAIT);
        assertFalse(otherDay.step("build").cached(), "another param is another key");
        assertEquals(2, calls.get());
    }

    @Test
    void aKeyIsWrittenAndReadBack() {
        Step step = Workflow.named("k")
                .param("date", "2026-01-01")
                .step("a", s -> s.shell("echo").cache(Duration.ofHours(12), "${date}"))
                .build()
                .steps()
                .get(0);
        assertEquals(Duration.ofHours(12), step.cacheTtl().orElseThrow());
        assertEquals("${date}", step.cacheKey().orElseThrow());
    }
}
