package dev.baton.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.baton.DefinitionError;
import dev.baton.Retry;
import dev.baton.Workflow;
import dev.baton.WorkflowDefinitionException;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class DurationsTest {

    @ParameterizedTest
    @CsvSource({
        "PT0S, 0s",
        "PT0.5S, 500ms",
        "PT1.5S, 1500ms",
        "PT1S, 1s",
        "PT90S, 90s",
        "PT5M, 5m",
        "PT1H30M, 90m",
        "PT2H, 2h",
        "PT24H, 1d",
        "PT36H, 36h",
        "P7D, 7d",
    })
    void formatsInTheLargestExactUnit(String iso, String text) {
        Duration d = Duration.parse(iso);
        assertEquals(text, Durations.format(d));
        assertEquals(d, Durations.decode(text));
    }

    /** What the core does not take is still written, for the core to say why. */
    @ParameterizedTest
    @CsvSource({
        "PT-5S, -5s",
        "PT-0.5S, -500ms",
        "PT0.0000015S, 1500ns",
        "PT1.000000001S, 1000000001ns",
    })
    void neverThrows(String iso, String text) {
        Duration d = Duration.parse(iso);
        assertEquals(text, Durations.format(d));
        assertEquals(d, Durations.decode(text));
    }

    @Test
    void theLargestDurationsAreWrittenToo() {
        Duration most = Duration.ofSeconds(Long.MAX_VALUE, 999_999_999);
        assertEquals("9223372036854775807999999999ns", Durations.format(most));
        assertEquals(most, Durations.decode(Durations.format(most)));
        assertEquals("-9223372036854775808s", Durations.format(Duration.ofSeconds(Long.MIN_VALUE)));
    }

    @Test
    void decodesOnlyWhatFormatWrites() {
        for (String text : List.of("1h30m", "10", "10w", "", " 1s", "s", "-")) {
            assertThrows(IllegalArgumentException.class, () -> Durations.decode(text), text);
        }
    }

    @Test
    void theCoreReportsWhatItDoesNotTakeAtBuild() {
        WorkflowDefinitionException e = assertThrows(WorkflowDefinitionException.class, () -> Workflow.named("w")
                .timeout(Duration.ofSeconds(-5))
                .step("a", s -> s.sleep(Duration.ofNanos(1500)).retry(Retry.fixed(2, Duration.ofMillis(-1))))
                .build());

        assertEquals(List.of(
                new DefinitionError(null, "timeout",
                        "invalid duration `-5s` (write e.g. \"500ms\", \"10s\", \"5m\", \"2h\", \"1d\")"),
                new DefinitionError("a", "duration", "unknown unit `ns` in duration `1500ns` (use ms, s, m, h or d)"),
                new DefinitionError("a", "retry.delay",
                        "invalid duration `-1ms` (write e.g. \"500ms\", \"10s\", \"5m\", \"2h\", \"1d\")")),
                e.errors());
    }
}
