package dev.baton;

import dev.baton.internal.Durations;
import java.time.Duration;
import java.util.Locale;
import java.util.Objects;
import java.util.Optional;

/**
 * How a failed attempt of a step is retried: how many attempts in all, and how the delay
 * between them grows. Immutable; {@link #maxDelay(Duration)} returns a copy.
 *
 * <pre>{@code
 * .step("extract", s -> s.shell("./extract.sh")
 *     .retry(Retry.exponential(5, Duration.ofSeconds(1)).maxDelay(Duration.ofMinutes(1))))
 * }</pre>
 *
 * <p>Durations are kept to the millisecond: a delay with a finer part is rejected.
 */
public final class Retry {

    /** How the delay grows between attempts. */
    public enum Backoff {
        /** The same delay every time. */
        FIXED,
        /** {@code delay * n} before attempt {@code n + 1}. */
        LINEAR,
        /** {@code delay * 2^(n-1)} before attempt {@code n + 1}. */
        EXPONENTIAL
    }

    private final int maxAttempts;
    private final Backoff backoff;
    private final Duration delay;
    private final Duration maxDelay;

    private Retry(int maxAttempts, Backoff backoff, Duration delay, Duration maxDelay) {
        if (maxAttempts < 1) {
            throw new IllegalArgumentException("maxAttempts counts the first attempt: at least 1, not " + maxAttempts);
        }
        this.maxAttempts = maxAttempts;
        this.backoff = Objects.requireNonNull(backoff, "backoff");
        this.delay = checked("delay", delay);
        this.maxDelay = maxDelay == null ? null : checked("maxDelay", maxDelay);
    }

    /** Up to {@code maxAttempts} attempts (the first included), {@code delay} apart. */
    public static Retry fixed(int maxAttempts, Duration delay) {
        return new Retry(maxAttempts, Backoff.FIXED, delay, null);
    }

    /** Up to {@code maxAttempts} attempts, waiting {@code delay}, then twice, three times as long... */
    public static Retry linear(int maxAttempts, Duration delay) {
        return new Retry(maxAttempts, Backoff.LINEAR, delay, null);
    }

    /** Up to {@code maxAttempts} attempts, waiting {@code delay}, then doubling it each time. */
    public static Retry exponential(int maxAttempts, Duration delay) {
        return new Retry(maxAttempts, Backoff.EXPONENTIAL, delay, null);
    }

    /** A copy of this policy in which no delay exceeds {@code maxDelay}. */
    public Retry maxDelay(Duration maxDelay) {
        return new Retry(maxAttempts, backoff, delay, Objects.requireNonNull(maxDelay, "maxDelay"));
    }

    /** Attempts in all, the first included. */
    public int maxAttempts() {
        return maxAttempts;
    }

    public Backoff backoff() {
        return backoff;
    }

    /** The delay before the second attempt. */
    public Duration delay() {
        return delay;
    }

    /** The upper bound on any delay, if set. */
    public Optional<Duration> maxDelay() {
        return Optional.ofNullable(maxDelay);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Retry r
                && maxAttempts == r.maxAttempts
                && backoff == r.backoff
                && delay.equals(r.delay)
                && Objects.equals(maxDelay, r.maxDelay);
    }

    @Override
    public int hashCode() {
        return Objects.hash(maxAttempts, backoff, delay, maxDelay);
    }

    @Override
    public String toString() {
        return "Retry[" + backoff.name().toLowerCase(Locale.ROOT) + ", " + maxAttempts + " attempts, "
                + Durations.format(delay) + (maxDelay == null ? "" : " up to " + Durations.format(maxDelay)) + "]";
    }

    private static Duration checked(String name, Duration d) {
        Objects.requireNonNull(d, name);
        String problem = Durations.problem(d);
        if (problem != null) {
            throw new IllegalArgumentException(name + ": " + problem);
        }
        return d;
    }
}
