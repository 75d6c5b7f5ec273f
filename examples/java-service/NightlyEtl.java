// A Java service that runs its nightly ETL with Baton: the README's example, runnable.
//
//   examples/java-service/run.sh              (builds the jar if needed, then runs this file)
//   examples/java-service/run.sh /tmp/store   (another store directory)
//
// Run it twice: the second run finds the first in the store (baton.runs()).

import dev.baton.Baton;
import dev.baton.Retry;
import dev.baton.Run;
import dev.baton.RunInfo;
import dev.baton.RunResult;
import dev.baton.StepType;
import dev.baton.Workflow;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;

public class NightlyEtl {

    public static void main(String[] args) {
        Path store = Path.of(args.length > 0 ? args[0] : "target/java-service-store");
        try (Baton baton = Baton.open(store)) {
            // A step type of this service: steps give a query, and may pick a cluster.
            baton.stepTypes().register("warehouse_sql", StepType.of(ctx ->
                    ctx.output("rows_checked", fakeQuery(ctx.param("query"), ctx.param("cluster"))))
                .param("query")
                .param("cluster", "default"));

            Workflow etl = Workflow.named("nightly-etl")
                .param("date", "2026-11-24")
                .param("regions", List.of("eu", "us", "apac"))
                .step("extract", s -> s.java(ctx -> {
                        long rows = countRows(ctx.param("date"));
                        ctx.output("rows", rows);
                    }).retry(Retry.exponential(3, Duration.ofSeconds(1))).timeout(Duration.ofMinutes(5)))
                .step("transform", s -> s.dependsOn("extract").java(ctx -> {
                        long rows = (Long) ctx.input("extract", "rows");
                        ctx.output("written", transform(rows, ctx.idempotencyKey()));
                    }))
                .step("load", s -> s.dependsOn("transform").shell("echo load ${date}: ${transform.written} rows"))
                // One small DAG per region, two regions at a time; `region` is a parameter of the body.
                .step("publish", s -> s.dependsOn("load")
                    .foreach("${regions}", "region", body -> body
                        .step("export", e -> e.param("day", "${date}")
                            .java(ctx -> ctx.output("file", ctx.param("region") + "/" + ctx.param("day")))))
                    .maxParallel(2))
                .step("check", s -> s.dependsOn("load").type("warehouse_sql")
                    .param("query", "select count(*) from sales where day = '${date}'"))
                .build();                                   // validation errors are thrown here, naming the step
            baton.register(etl);

            Run run = baton.start("nightly-etl", Map.of("date", "2026-11-25"));
            RunResult result = run.await(Duration.ofMinutes(10));

            System.out.println(result);                     // a table of the steps
            System.out.println();
            System.out.println("status:         " + result.status());
            System.out.println("extract.rows:   " + result.step("extract").output("rows"));
            System.out.println("load printed:   " + result.step("load").logTail().orElse("").trim());
            System.out.println("regions:        " + result.step("publish").output("succeeded") + " published");
            System.out.println();
            System.out.println("runs in " + store + ":");
            for (RunInfo info : baton.runs("nightly-etl")) {
                System.out.println("  " + info.id() + "  " + info.status() + "  date=" + info.params().get("date"));
            }
            result.orThrow();                               // a failed run would throw, naming the step
        }
    }

    static long countRows(String date) {
        return 42;
    }

    static long transform(long rows, String idempotencyKey) {
        // A real service would write with the key, so that a relaunched attempt writes once.
        return rows;
    }

    static long fakeQuery(String query, String cluster) {
        return 42;
    }
}
