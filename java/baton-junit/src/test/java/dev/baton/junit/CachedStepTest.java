package dev.baton.junit;

import static dev.baton.junit.BatonAssertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.baton.RunResult;
import dev.baton.Workflow;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.opentest4j.AssertionFailedError;

/** The kit tells a step the result cache served from one that ran. */
@BatonTest
class CachedStepTest {

    @Test
    void aStepServedFromTheCacheIsAssertedCached(BatonTestEnv env) {
        env.register(Workflow.named("features")
                .step("build", s -> s.java(ctx -> ctx.output("rows", 42)).cache(Duration.ofDays(1)))
                .build());
        env.mockStep("features", "build", Map.of("rows", 42));

        RunResult first = env.finish(env.start("features"));
        RunResult second = env.finish(env.start("features"));

        assertThat(first).succeeded().stepNotCached("build");
        assertThat(second).succeeded().stepCached("build").stepOutput("build", "rows", 42);
        assertEquals(1, env.calls("features", "build").size(), "a served step is not called");
        AssertionFailedError e = assertThrows(AssertionFailedError.class, () -> assertThat(first).stepCached("build"));
        assertTrue(e.getMessage().startsWith("expected step `build` to be served from the result cache, but it ran"),
                e.getMessage());
    }
}
