package dev.baton;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** {@link BatonOptions.Builder#retention}: the engine prunes old history in the background. */
@Timeout(60)
class RetentionTest {

    private static final Duration WAIT = Duration.ofSeconds(30);

    @TempDir
    Path store;

    private static Workflow hello() {
        return Workflow.named("hello").step("a", s -> s.noop()).build();
    }

    @Test
    void finishedRunsGoOnceTheyAreOlderThanTheRetention() {
        BatonOptions options = BatonOptions.builder()
                .virtualClock(Instant.parse("2026-01-01T00:00:00Z"))
                .retention("runs=1d,every=1h")
                .build();
        try (Baton baton = Baton.open(store, options)) {
            baton.register(hello());
            assertEquals(RunStatus.SUCCEEDED, baton.start("hello").await(WAIT).status());
            baton.virtualClock().advance(Duration.ofHours(12));
            baton.virtualClock().awaitIdle();
            assertEquals(1, baton.runs("hello").size(), "half a day old: kept");
            baton.virtualClock().advance(Duration.ofDays(1));
            baton.virtualClock().awaitIdle();
            assertEquals(0, baton.runs("hello").size(), "a day and a half old: pruned");
        }
    }

    @Test
    void aBadRetentionIsRefusedAtOpen() {
        BatonOptions options = BatonOptions.builder().retention("runs=soon").build();
        InvalidRequestException e = assertThrows(InvalidRequestException.class, () -> Baton.open(store, options));
        assertTrue(e.getMessage().contains("soon"), e.getMessage());
        // A duration keeps every kind that long.
        try (Baton baton = Baton.open(store, BatonOptions.builder().retention(Duration.ofDays(90)).build())) {
            baton.register(hello());
            assertEquals(RunStatus.SUCCEEDED, baton.start("hello").await(WAIT).status());
        }
    }
}
