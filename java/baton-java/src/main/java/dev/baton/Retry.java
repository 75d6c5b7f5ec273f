package dev.baton;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.baton.internal.Durations;
import dev.baton.internal.JsonCodec;
import java.time.Duration;
import java.util.Objects;
import java.util.Optional;

/**
 * How a failed attempt of a step is retried: how many attempts in all, and how the delay
 * between them grows. Immutable; {@link #maxDelay(Duration)} returns a copy. It is the
 * {@code retry} object of the core's JSON, checked with the rest of the workflow by
 * {@link Workflow.Builder#build()} (at least 1 attempt, durations to the millisecond).
 *
 * <pre>{@code
 * .step("extract", s -> s.shell("./extract.sh")
 *     .retry(Retry.exponential(5, Duration.ofSeconds(1)).maxDelay(Duration.ofMinutes(1))))
 * }</pre>
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

    /** The JSON object; never changed once the Retry is made. */
    private final ObjectNode json;

    /** A view of the {@code retry} object of a step's JSON. */
    Retry(ObjectNode json) {
        this.json = json;
    }

    private static Retry of(int maxAttempts, Backoff backoff, Duration delay) {
        ObjectNode json = JsonCodec.object();
        json.put("max_attempts", maxAttempts);
        json.put("backoff", JsonCodec.name(backoff));
        json.put("delay", Durations.format(Objects.requireNonNull(delay, "delay")));
        return new Retry(json);
    }

    /** Up to {@code maxAttempts} attempts (the first included), {@code delay} apart. */
    public static Retry fixed(int maxAttempts, Duration delay) {
        return of(maxAttempts, Backoff.FIXED, delay);
    }

    /** Up to {@code maxAttempts} attempts, waiting {@code delay}, then twice, three times as long... */
    public static Retry linear(int maxAttempts, Duration delay) {
        return of(maxAttempts, Backoff.LINEAR, delay);
    }

    /** Up to {@code maxAttempts} attempts, waiting {@code delay}, then doubling it each time. */
    public static Retry exponential(int maxAttempts, Duration delay) {
        return of(maxAttempts, Backoff.EXPONENTIAL, delay);
    }

    /** A copy of this policy in which no delay exceeds {@code maxDelay}. */
    public Retry maxDelay(Duration maxDelay) {
        ObjectNode copy = json.deepCopy();
        copy.put("max_delay", Durations.format(Objects.requireNonNull(maxDelay, "maxDelay")));
        return new Retry(copy);
    }

    /**
     * A copy of this policy under which a command exiting with one of {@code codes} (1-255) fails
     * at once: no retry can mend it.
     */
    public Retry finalExitCodes(int... codes) {
        ObjectNode copy = json.deepCopy();
        var array = copy.putArray("final_exit_codes");
        for (int code : codes) {
            array.add(code);
        }
        return new Retry(copy);
    }

    /** A copy of this policy that retries an attempt that timed out too (by default it does not). */
    public Retry onTimeout(boolean retry) {
        ObjectNode copy = json.deepCopy();
        copy.put("on_timeout", retry);
        return new Retry(copy);
    }

    /** Attempts in all, the first included. */
    public int maxAttempts() {
        return json.get("max_attempts").intValue();
    }

    public Backoff backoff() {
        return JsonCodec.choice(json, "backoff", Backoff.class, Backoff.EXPONENTIAL);
    }

    /** The delay before the second attempt. */
    public Duration delay() {
        return JsonCodec.duration(json, "delay").orElseThrow();
    }

    /** The upper bound on any delay, if set. */
    public Optional<Duration> maxDelay() {
        return JsonCodec.duration(json, "max_delay");
    }

    /** The JSON object, to be placed in a step's (a copy: the tree it goes into may change). */
    ObjectNode json() {
        return json.deepCopy();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Retry r && json.equals(r.json);
    }

    @Override
    public int hashCode() {
        return json.hashCode();
    }

    @Override
    public String toString() {
        return "Retry[" + JsonCodec.name(backoff()) + ", " + maxAttempts() + " attempts, " + json.get("delay").asText()
                + JsonCodec.text(json, "max_delay").map(d -> " up to " + d).orElse("") + "]";
    }
}
