package dev.baton.junit;

import dev.baton.Retry;
import dev.baton.Workflow;
import java.time.Duration;

/** The workflows under test, as an application would define them. */
final class Pipelines {

    private Pipelines() {}

    /**
     * Extract rows (from a database a test does not have), wait an hour for replicas to catch up,
     * then load, unless there is nothing to load.
     */
    static Workflow nightlyEtl() {
        return Workflow.named("nightly-etl")
                .param("date", "2026-11-24")
                .step("extract", s -> s.java(ctx -> {
                    throw new IllegalStateException("extract reads the production database: mock it");
                }).retry(Retry.fixed(6, Duration.ofMinutes(10))))
                .step("settle", s -> s.dependsOn("extract").sleep(Duration.ofHours(1)))
                .step("load", s -> s.dependsOn("extract", "settle")
                        .when("${extract.rows > 0}")
                        .shell("load-warehouse --date ${date} --rows ${extract.rows}"))
                .build();
    }
}
