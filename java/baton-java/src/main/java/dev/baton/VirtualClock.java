package dev.baton;

import dev.baton.internal.Envelope;
import dev.baton.internal.NativeBridge;
import java.time.Duration;
import java.time.Instant;
import java.util.Objects;

/**
 * The clock of a {@link Baton} opened on virtual time ({@link BatonOptions.Builder#virtualClock}):
 * it moves only when told, so that sleeps, retry delays and timeouts take no real time. Each move
 * fires the timers it passes one at a time, in order, and returns once the engine has reacted to
 * each (a failed attempt schedules its retry, a finished sleep launches the next step): moving
 * three hours does whatever three hours would have done.
 *
 * <pre>{@code
 * VirtualClock clock = baton.virtualClock();
 * Run run = baton.start("nightly-etl", Map.of());
 * clock.advance(Duration.ofHours(3));   // a 1 h sleep, then 5 retries 10 min apart: done
 * clock.runUntilIdle();                 // or: as far as the runs need
 * }</pre>
 *
 * <p>Work outside the engine holds time still: a Java step that runs, a shell command that is
 * not overridden. If the engine is still busy after 30 s of real time, a move throws a
 * {@link BatonException} saying so. Cron triggers fire as time passes them (the scheduler runs
 * unless {@link BatonOptions.Builder#scheduler(boolean) turned off}).
 */
public final class VirtualClock {

    /** Negative: the engine's default limit (30 s of real time) on waiting for it to settle. */
    private static final long DEFAULT_SETTLE = -1;

    private final Baton baton;

    VirtualClock(Baton baton) {
        this.baton = baton;
    }

    /** The engine's time. */
    public Instant now() {
        return Instant.ofEpochMilli(Envelope.unwrap(NativeBridge.clockNow(baton.handle())).asLong());
    }

    /**
     * Moves time forward by {@code duration}, timer by timer; returns the new time.
     *
     * @throws IllegalArgumentException for a negative duration: time never moves back
     * @throws BatonException if the engine stays busy (a step working in real time)
     */
    public Instant advance(Duration duration) {
        Objects.requireNonNull(duration, "duration");
        if (duration.isNegative()) {
            throw new IllegalArgumentException("time never moves back: " + duration);
        }
        return at(NativeBridge.advanceClock(baton.handle(), duration.toMillis(), DEFAULT_SETTLE));
    }

    /**
     * Moves time forward to {@code instant} (nothing happens if it is past); see {@link #advance}.
     */
    public Instant advanceTo(Instant instant) {
        Objects.requireNonNull(instant, "instant");
        Duration left = Duration.between(now(), instant);
        return advance(left.isNegative() ? Duration.ZERO : left);
    }

    /**
     * Fires the next timer, then the next, until every run has ended or no timer is left (a run
     * waiting for something else than time); returns the new time.
     */
    public Instant runUntilIdle() {
        return at(NativeBridge.runUntilIdle(baton.handle(), DEFAULT_SETTLE));
    }

    /** Waits until the engine has reacted to everything so far, without moving time. */
    public void awaitIdle() {
        Envelope.unwrap(NativeBridge.awaitIdle(baton.handle(), DEFAULT_SETTLE));
    }

    private static Instant at(String answer) {
        return Instant.ofEpochMilli(Envelope.unwrap(answer).asLong());
    }

    @Override
    public String toString() {
        return "VirtualClock[" + baton + "]";
    }
}
