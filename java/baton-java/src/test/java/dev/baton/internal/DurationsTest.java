package dev.baton.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.time.Duration;
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
        assertEquals(d, Durations.parse(text));
    }

    @Test
    void parsesSums() {
        assertEquals(Duration.ofMinutes(90), Durations.parse("1h30m"));
        assertEquals(Duration.ofMillis(1250), Durations.parse(" 1s250ms "));
    }

    @Test
    void explainsWhatCannotBeWritten() {
        assertEquals("a duration cannot be negative (PT-1S)",
                assertThrows(IllegalArgumentException.class, () -> Durations.format(Duration.ofSeconds(-1))).getMessage());
        assertEquals("a duration is kept to the millisecond, and PT0.0000015S has a finer part",
                assertThrows(IllegalArgumentException.class, () -> Durations.format(Duration.ofNanos(1500))).getMessage());
        assertEquals("duration PT2562047788015215H30M7.999S is too large",
                assertThrows(IllegalArgumentException.class,
                        () -> Durations.format(Duration.ofSeconds(Long.MAX_VALUE, 999_000_000))).getMessage());
    }

    @Test
    void explainsWhatCannotBeRead() {
        assertEquals("duration `10` needs a unit: ms, s, m, h or d (e.g. \"10s\")",
                assertThrows(IllegalArgumentException.class, () -> Durations.parse("10")).getMessage());
        assertEquals("unknown unit `w` in duration `10w` (use ms, s, m, h or d)",
                assertThrows(IllegalArgumentException.class, () -> Durations.parse("10w")).getMessage());
        assertEquals("invalid duration `abc` (write e.g. \"500ms\", \"10s\", \"5m\", \"2h\", \"1d\")",
                assertThrows(IllegalArgumentException.class, () -> Durations.parse("abc")).getMessage());
        assertEquals("empty duration (write e.g. \"10s\")",
                assertThrows(IllegalArgumentException.class, () -> Durations.parse("")).getMessage());
        assertEquals("duration `99999999999999999d` is too large",
                assertThrows(IllegalArgumentException.class, () -> Durations.parse("99999999999999999d")).getMessage());
    }
}
