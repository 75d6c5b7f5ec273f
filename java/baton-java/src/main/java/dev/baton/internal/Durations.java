package dev.baton.internal;

import java.math.BigInteger;
import java.time.Duration;

/**
 * Java durations as the core's JSON writes them: one number and the largest exact unit
 * ({@code 500ms}, {@code 90s}, {@code 90m}, {@code 2h}, {@code 1d}, {@code 0s}). Only writing
 * and reading back that form: what a valid duration is, the core says.
 *
 * <pre>{@code
 * Durations.format(Duration.ofSeconds(90)); // "90s"
 * Durations.decode("90m");                  // PT1H30M
 * }</pre>
 */
public final class Durations {

    private static final String[] UNITS = {"d", "h", "m", "s", "ms", "ns"};
    private static final BigInteger[] NANOS = {
        BigInteger.valueOf(86_400_000_000_000L), BigInteger.valueOf(3_600_000_000_000L),
        BigInteger.valueOf(60_000_000_000L), BigInteger.valueOf(1_000_000_000L), BigInteger.valueOf(1_000_000L),
        BigInteger.ONE,
    };
    private static final BigInteger BILLION = BigInteger.valueOf(1_000_000_000L);

    private Durations() {}

    /**
     * {@code d} in the largest unit that represents it exactly: {@code PT90S} is {@code 90s},
     * {@code PT0.5S} is {@code 500ms}, zero is {@code 0s}. Never throws: a duration the core
     * does not take is written so that the core says why ({@code -5s}, {@code 1500ns}).
     */
    public static String format(Duration d) {
        BigInteger nanos = BigInteger.valueOf(d.getSeconds()).multiply(BILLION).add(BigInteger.valueOf(d.getNano()));
        if (nanos.signum() == 0) {
            return "0s";
        }
        String sign = nanos.signum() < 0 ? "-" : "";
        for (int i = 0; ; i++) { // the last unit, ns, divides every duration
            BigInteger[] qr = nanos.abs().divideAndRemainder(NANOS[i]);
            if (qr[1].signum() == 0) {
                return sign + qr[0] + UNITS[i];
            }
        }
    }

    /**
     * The duration {@link #format} wrote as {@code text}, as the core gives durations back.
     *
     * @throws IllegalArgumentException for any other text
     */
    public static Duration decode(String text) {
        int unit = 0;
        while (unit < text.length() && (Character.isDigit(text.charAt(unit)) || text.charAt(unit) == '-')) {
            unit++;
        }
        for (int i = 0; i < UNITS.length; i++) {
            if (unit > 0 && UNITS[i].equals(text.substring(unit))) {
                BigInteger[] seconds = new BigInteger(text.substring(0, unit)).multiply(NANOS[i]).divideAndRemainder(BILLION);
                return Duration.ofSeconds(seconds[0].longValueExact(), seconds[1].longValue());
            }
        }
        throw new IllegalArgumentException("`" + text + "` is not a duration as the core writes it");
    }
}
