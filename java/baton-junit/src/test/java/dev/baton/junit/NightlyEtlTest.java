package dev.baton.junit;

import dev.baton.Run;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The example of the kit's documentation, as written there. */
@BatonTest
class NightlyEtlTest {

    @Test
    void skipsLoadWhenNoRows(BatonTestEnv env) {
        env.register(Pipelines.nightlyEtl());
        env.mockStep("nightly-etl", "extract", ctx -> ctx.output("rows", 0));
        Run run = env.start("nightly-etl", Map.of("date", "2026-11-24"));
        env.clock().advance(Duration.ofHours(3));         // timers, retries, timeouts fire at once
        BatonAssertions.assertThat(run.await())
            .succeeded()
            .stepSkipped("load")
            .stepOutput("extract", "rows", 0);
    }
}
