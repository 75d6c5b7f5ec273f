package dev.baton.junit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.baton.Firing;
import dev.baton.RunInfo;
import dev.baton.RunStatus;
import dev.baton.Workflow;
import dev.baton.WorkflowTrigger;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import org.junit.jupiter.api.Test;

/** A daily cron trigger in virtual time: three days pass in a moment, and three runs happen. */
@BatonTest(start = "2026-03-01T00:00:00Z")
class CronTriggerTest {

    private static Workflow daily() {
        return Workflow.named("daily-report")
                .param("date", "")
                .trigger(WorkflowTrigger.cron("0 2 * * *")
                        .param("date", "${format_date(trigger.scheduled_time, 'yyyy-MM-dd')}"))
                .step("report", s -> s.noop())
                .build();
    }

    @Test
    void threeDaysMakeThreeDailyRuns(BatonTestEnv env) {
        env.register(daily());

        env.clock().advance(Duration.ofDays(3));

        List<RunInfo> runs = env.baton().runs("daily-report");
        assertEquals(List.of("2026-03-01", "2026-03-02", "2026-03-03"),
                runs.stream().map(r -> r.params().get("date")).toList(), runs::toString);
        for (RunInfo run : runs) {
            assertEquals(RunStatus.SUCCEEDED, run.status(), run::toString);
            assertTrue(run.trigger().isPresent(), "a run says what started it");
            assertEquals(1, run.version().getAsInt());
        }
        List<Firing> firings = env.baton().firings("daily-report");
        assertEquals(3, firings.size(), firings::toString);
        assertEquals(Instant.parse("2026-03-01T02:00:00Z"), firings.get(0).scheduledAt());
        assertEquals(runs.get(2).id(), firings.get(2).runId().orElseThrow());
    }

    @Test
    void aDisabledWorkflowDoesNotFire(BatonTestEnv env) {
        env.register(daily());
        env.baton().disable("daily-report");
        env.clock().advance(Duration.ofDays(2));
        assertEquals(List.of(), env.baton().runs("daily-report"));
        env.baton().enable("daily-report");
        env.clock().advance(Duration.ofDays(1));
        assertEquals(1, env.baton().runs("daily-report").size());
    }
}
