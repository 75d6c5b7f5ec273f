package dev.baton;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The run's context in expressions ({@code ${run_id()}}, {@code ${attempt()}}...), as a Java step sees it. */
@Timeout(60)
class RunContextTest {

    @Test
    void aJavaStepSeesItsRunAndAttemptThroughExpressions() {
        List<String> seen = new CopyOnWriteArrayList<>();
        try (Baton baton = Baton.inMemory()) {
            baton.register(Workflow.named("ctx")
                    .computedParam("day", "${format_date(scheduled_at(), 'yyyyMMdd')}")
                    .step("load", s -> s
                            .param("run", "${run_id()}")
                            .param("try", "${attempt()}")
                            .param("by", "${initiator()} ${workflow_id()} v${workflow_version()}")
                            .retry(Retry.fixed(2, Duration.ZERO))
                            .java(ctx -> {
                                seen.add(ctx.param("run") + " " + ctx.param("try") + " " + ctx.param("by"));
                                if (seen.size() == 1) {
                                    throw new IllegalStateException("first attempt fails");
                                }
                            }))
                    .build());
            RunResult result = baton.start("ctx", Map.of()).await(Duration.ofSeconds(30));
            assertEquals(RunStatus.SUCCEEDED, result.status(), result::toString);
            String id = result.id();
            assertEquals(List.of(id + " 1 manual ctx v1", id + " 2 manual ctx v1"), seen);
            assertEquals(8, String.valueOf(result.params().get("day")).length(), "a yyyyMMdd day");
        }
    }
}
