package dev.baton;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** {@code baton.insights(...)} and {@code baton.eta(...)}: what a workflow's history says, from Java. */
@Timeout(60)
class InsightsTest {

    @Test
    void aWorkflowsHistoryGivesItsStepsDurationsAndARunsEta() throws Exception {
        CountDownLatch release = new CountDownLatch(1);
        try (Baton baton = Baton.inMemory()) {
            baton.register(Workflow.named("etl")
                    .param("hold", false)
                    .step("extract", s -> s.java(ctx -> Thread.sleep(30)))
                    .step("load", s -> s.dependsOn("extract").java(ctx -> {
                        Thread.sleep(60);
                        if (Boolean.parseBoolean(ctx.param("hold"))) {
                            release.await(30, TimeUnit.SECONDS);
                        }
                    }))
                    .build());
            assertEquals(Optional.empty(), baton.insights("etl").expected(), "no history yet");
            for (int i = 0; i < 3; i++) {
                assertEquals(RunStatus.SUCCEEDED, baton.start("etl").await(Duration.ofSeconds(30)).status());
            }
            WorkflowInsights insights = baton.insights("etl");
            assertEquals(List.of("extract", "load"), insights.criticalPath());
            WorkflowInsights.StepInsight load = insights.step("load").orElseThrow();
            assertEquals(3, load.ended());
            assertTrue(load.p50().orElseThrow().toMillis() >= 55, load::toString);
            assertEquals(1.0, load.successRate().orElseThrow());
            assertTrue(insights.expected().orElseThrow().toMillis() >= 85, insights::toString);

            Run running = baton.start("etl", Map.of("hold", true));
            Eta eta = null;
            for (int i = 0; i < 100 && eta == null; i++) {
                eta = baton.eta(running.id()).orElse(null);
                Thread.sleep(10);
            }
            assertTrue(eta != null && eta.unknown().isEmpty(), String.valueOf(eta));
            release.countDown();
            running.await(Duration.ofSeconds(30));
            assertEquals(Optional.empty(), baton.eta(running.id()), "an ended run has no ETA");
            assertThrows(UnknownWorkflowException.class, () -> baton.insights("nope"));
        }
    }

    @Test
    void aDiagnosisNamesTheStepThatFailedFirstAndWhatChanged() {
        try (Baton baton = Baton.inMemory()) {
            baton.register(Workflow.named("load")
                    .param("port", 5432)
                    .step("connect", s -> s.java(ctx -> {
                        if (!"5432".equals(ctx.param("port"))) {
                            throw new IllegalStateException("connection refused on port " + ctx.param("port"));
                        }
                    }))
                    .step("copy", s -> s.dependsOn("connect").java(ctx -> { }))
                    .build());
            assertEquals(RunStatus.SUCCEEDED, baton.start("load").await(Duration.ofSeconds(30)).status());
            RunResult failed = baton.start("load", Map.of("port", 5433)).await(Duration.ofSeconds(30));
            Diagnosis d = baton.diagnose(failed.id());
            assertEquals("connect", d.rootCause().orElseThrow().step(), d::toString);
            assertEquals(1, d.skipped());
            assertTrue(d.changed().contains("params changed: port: 5432 -> 5433"), d::toString);
            assertTrue(d.summary().startsWith("step `connect` failed first"), d.summary());
        }
    }
}
