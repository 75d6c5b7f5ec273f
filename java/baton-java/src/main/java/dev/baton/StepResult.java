package dev.baton;

import dev.baton.internal.JsonCodec;
import java.time.Instant;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * One step of a run, as the engine last recorded it: status, attempt, outputs, and for a
 * failure the error and the end of what it printed (for a Java step, its stack trace).
 * Immutable.
 *
 * <pre>{@code
 * StepResult extract = result.step("extract");
 * extract.status();          // StepStatus.SUCCEEDED
 * extract.output("rows");    // 42L
 * extract.attempts();        // 1
 * }</pre>
 */
public final class StepResult {

    private final String id;
    private final String kind;
    private final StepStatus status;
    private final int attempts;
    private final Instant started;
    private final Instant ended;
    private final Map<String, Object> outputs;
    private final String error;
    private final String logTail;
    private final String waitingFor;
    private final boolean failureIgnored;
    private final String cachedFrom;

    StepResult(String id, String kind, StepStatus status, int attempts, Instant started, Instant ended,
            Map<String, Object> outputs, String error, String logTail, String waitingFor, boolean failureIgnored,
            String cachedFrom) {
        this.id = Objects.requireNonNull(id, "id");
        this.kind = kind;
        this.status = Objects.requireNonNull(status, "status");
        this.attempts = attempts;
        this.started = started;
        this.ended = ended;
        this.outputs = outputs;
        this.error = error;
        this.logTail = logTail;
        this.waitingFor = waitingFor;
        this.failureIgnored = failureIgnored;
        this.cachedFrom = cachedFrom;
    }

    public String id() {
        return id;
    }

    /** The step kind: {@code java}, {@code shell}, ... or a host's. */
    public String kind() {
        return kind;
    }

    public StepStatus status() {
        return status;
    }

    /** True if the step succeeded. */
    public boolean succeeded() {
        return status == StepStatus.SUCCEEDED;
    }

    /** The current or last attempt, from 1; 0 for a step that never ran. */
    public int attempts() {
        return attempts;
    }

    /** When the current (or last) attempt started. */
    public Optional<Instant> started() {
        return Optional.ofNullable(started);
    }

    public Optional<Instant> ended() {
        return Optional.ofNullable(ended);
    }

    /**
     * An output, in its JSON form ({@code Long}, {@code Double}, {@code Boolean},
     * {@code String}, {@code List}, {@code Map}), or {@code null} if the step set no such output.
     */
    public Object output(String key) {
        return outputs.get(key);
    }

    /** Every output, in the order set; unmodifiable. */
    public Map<String, Object> outputs() {
        return outputs;
    }

    /**
     * Why the last attempt failed. For a Java step: the exception's class and message, as
     * {@link Throwable#toString()} reads.
     */
    public Optional<String> error() {
        return Optional.ofNullable(error);
    }

    /** The end of what the last attempt printed; for a Java step that threw, its stack trace. */
    public Optional<String> logTail() {
        return Optional.ofNullable(logTail);
    }

    /** What a {@link StepStatus#WAITING} step waits for. */
    public Optional<String> waitingFor() {
        return Optional.ofNullable(waitingFor);
    }

    /** True for a failure the run ignored ({@link FailureMode#IGNORE_FAILURE}). */
    public boolean failureIgnored() {
        return failureIgnored;
    }

    /**
     * The run whose success of this step the result cache served, for a step that
     * {@link Step.Builder#cache(Duration) is cached} and did not run; empty for a step that ran.
     */
    public Optional<String> cachedFrom() {
        return Optional.ofNullable(cachedFrom);
    }

    /** True if the result cache served the step: it SUCCEEDED without running. */
    public boolean cached() {
        return cachedFrom != null;
    }

    @Override
    public String toString() {
        return "StepResult[" + id + ": " + status + (attempts > 1 ? ", attempt " + attempts : "")
                + (cachedFrom == null ? "" : ", cached from " + cachedFrom)
                + (outputs.isEmpty() ? "" : ", outputs " + JsonCodec.write(outputs))
                + (error == null ? "" : ", error " + error)
                + (waitingFor == null ? "" : ", waiting for " + waitingFor) + "]";
    }
}
