package com.example.etl;

import dev.baton.Retry;
import dev.baton.Workflow;
import java.time.Duration;

/**
 * The nightly ETL of an application: count the day's orders, give the read replicas an hour to
 * catch up, then load them into the warehouse (a command that is sometimes refused while the
 * warehouse is busy, hence the retries), unless there is nothing to load.
 */
public final class NightlyEtl {

    public static final String ID = "nightly-etl";

    private NightlyEtl() {}

    /** The workflow, counting orders with {@code orders}. */
    public static Workflow workflow(Orders orders) {
        return Workflow.named(ID)
                .param("date", "2026-11-24")
                .step("extract", s -> s.java(ctx -> ctx.output("rows", orders.count(ctx.param("date"))))
                        .retry(Retry.fixed(3, Duration.ofMinutes(5))))
                .step("replicas", s -> s.dependsOn("extract").sleep(Duration.ofHours(1)))
                .step("load", s -> s.dependsOn("extract", "replicas")
                        .when("${extract.rows > 0}")
                        .shell("warehouse-load --date ${date} --rows ${extract.rows}")
                        .retry(Retry.fixed(6, Duration.ofMinutes(10)))
                        .timeout(Duration.ofMinutes(30)))
                .build();
    }

    /** Where orders come from: a database in production. */
    public interface Orders {
        long count(String date) throws Exception;
    }
}
