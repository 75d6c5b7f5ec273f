package dev.baton.internal;

import java.time.Duration;

/**
 * Durations as the engine writes them: {@code 500ms}, {@code 10s}, {@code 5m}, {@code 2h},
 * {@code 1d}, and sums such as {@code 1h30m} when reading. The same grammar as the core's
 * {@code model::duration}.
 *
 * <pre>{@code
 * Durations.format(Duration.ofSeconds(90)); // "90s"
 * Durations.parse("1h30m");                 // PT1H30M
 * }</pre>
 */
public final class Durations {

    private static final String[] UNITS = {"d", "h", "m", "s", "ms"};
    private static final long[] MILLIS = {86_400_000L, 3_600_000L, 60_000L, 1_000L, 1L};

    private Durations() {}

    /** What makes {@code d} impossible to write, or {@code null} if nothing does. */
    public static String problem(Duration d) {
        if (d.isNegative()) {
            return "a duration cannot be negative (" + d + ")";
        }
        if (d.getNano() % 1_000_000 != 0) {
            return "a duration is kept to the millisecond, and " + d + " has a finer part";
        }
        try {
            d.toMillis();
        } catch (ArithmeticException e) {
            return "duration " + d + " is too large";
        }
        return null;
    }

    /**
     * Formats in the largest unit that represents {@code d} exactly: {@code PT90S} is
     * {@code 90s}, {@code PT0.5S} is {@code 500ms}, zero is {@code 0s}.
     *
     * @throws IllegalArgumentException if {@code d} is negative or finer than a millisecond
     */
    public static String format(Duration d) {
        String problem = problem(d);
        if (problem != null) {
            throw new IllegalArgumentException(problem);
        }
        long ms = d.toMillis();
        if (ms == 0) {
            return "0s";
        }
        for (int i = 0; i < UNITS.length; i++) {
            if (ms % MILLIS[i] == 0) {
                return ms / MILLIS[i] + UNITS[i];
            }
        }
        throw new AssertionError("every duration is a whole number of milliseconds");
    }

    /**
     * Parses {@code 500ms}, {@code 10s}, {@code 5m}, {@code 2h}, {@code 1d} and sums of them.
     *
     * @throws IllegalArgumentException with a message that says what is wrong
     */
    public static Duration parse(String text) {
        String s = text.trim();
        if (s.isEmpty()) {
            throw new IllegalArgumentException("empty duration (write e.g. \"10s\")");
        }
        long total = 0;
        int i = 0;
        while (i < s.length()) {
            int start = i;
            while (i < s.length() && isDigit(s.charAt(i))) {
                i++;
            }
            if (i == start) {
                throw new IllegalArgumentException(
                        "invalid duration `" + text + "` (write e.g. \"500ms\", \"10s\", \"5m\", \"2h\", \"1d\")");
            }
            String number = s.substring(start, i);
            int unitStart = i;
            while (i < s.length() && !isDigit(s.charAt(i))) {
                i++;
            }
            String unit = s.substring(unitStart, i);
            int u = indexOf(unit);
            if (u < 0) {
                throw new IllegalArgumentException(unit.isEmpty()
                        ? "duration `" + text + "` needs a unit: ms, s, m, h or d (e.g. \"" + number + "s\")"
                        : "unknown unit `" + unit + "` in duration `" + text + "` (use ms, s, m, h or d)");
            }
            try {
                total = Math.addExact(total, Math.multiplyExact(Long.parseLong(number), MILLIS[u]));
            } catch (ArithmeticException | NumberFormatException e) {
                throw new IllegalArgumentException("duration `" + text + "` is too large");
            }
        }
        return Duration.ofMillis(total);
    }

    private static boolean isDigit(char c) {
        return c >= '0' && c <= '9';
    }

    private static int indexOf(String unit) {
        for (int i = 0; i < UNITS.length; i++) {
            if (UNITS[i].equals(unit)) {
                return i;
            }
        }
        return -1;
    }
}
