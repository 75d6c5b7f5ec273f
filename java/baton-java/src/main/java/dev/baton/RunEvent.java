package dev.baton;

import com.fasterxml.jackson.databind.JsonNode;
import java.time.Instant;
import java.util.Objects;
import java.util.Optional;

/**
 * A change of status of a run or of one of its steps: what {@link Baton#onEvent} delivers and
 * {@link Baton#timeline(String)} lists. {@code seq} numbers a run's events from 0, in order.
 *
 * <pre>{@code
 * baton.onEvent(e -> {
 *     if (e.kind() == RunEvent.Kind.RUN && e.runStatus().filter(RunStatus::isFinal).isPresent()) {
 *         System.out.println("run " + e.runId() + " ended " + e.status());
 *     }
 * });
 * }</pre>
 *
 * @param kind a run's or a step's change
 * @param runId the run
 * @param workflowId the run's workflow (run events only)
 * @param stepId the step (step events only)
 * @param status the new status: a {@link RunStatus} or {@link StepStatus} name
 * @param attempt the step's attempt (0 for run events)
 * @param error why the run or step failed or stopped
 * @param at when it changed (the engine's clock)
 * @param seq the event's number in its run, from 0
 * @param engine on the event of a take-over (a run event whose status is unchanged), the engine
 *     that drives the run from then on; {@code error} then says which engine it took the run
 *     from ({@code "taken over from engine a"}). Empty on every other event.
 */
public record RunEvent(Kind kind, String runId, Optional<String> workflowId, Optional<String> stepId, String status,
        int attempt, Optional<String> error, Instant at, long seq, Optional<String> engine) {

    /** What changed status. */
    public enum Kind { RUN, STEP }

    public RunEvent {
        Objects.requireNonNull(kind, "kind");
        Objects.requireNonNull(runId, "runId");
        Objects.requireNonNull(workflowId, "workflowId");
        Objects.requireNonNull(stepId, "stepId");
        Objects.requireNonNull(status, "status");
        Objects.requireNonNull(error, "error");
        Objects.requireNonNull(at, "at");
        Objects.requireNonNull(engine, "engine");
    }

    /** An event that is not a take-over: {@code engine} empty. */
    public RunEvent(Kind kind, String runId, Optional<String> workflowId, Optional<String> stepId, String status,
            int attempt, Optional<String> error, Instant at, long seq) {
        this(kind, runId, workflowId, stepId, status, attempt, error, at, seq, Optional.empty());
    }

    /** The run's new status, for a run event. */
    public Optional<RunStatus> runStatus() {
        return kind == Kind.RUN ? Optional.of(RunStatus.valueOf(status)) : Optional.empty();
    }

    /** The step's new status, for a step event. */
    public Optional<StepStatus> stepStatus() {
        return kind == Kind.STEP ? Optional.of(StepStatus.valueOf(status)) : Optional.empty();
    }

    /** The engine's JSON form: {@code {"event": "run"|"step", ...}}. */
    static RunEvent of(JsonNode e) {
        Kind kind = "step".equals(e.path("event").asText()) ? Kind.STEP : Kind.RUN;
        return new RunEvent(kind, e.path("run_id").asText(), Firing.text(e, "workflow_id"), Firing.text(e, "step_id"),
                e.path("status").asText(), e.path("attempt").asInt(0), Firing.text(e, "error"),
                Instant.ofEpochMilli(e.path("at_ms").asLong()), e.path("seq").asLong(), Firing.text(e, "engine"));
    }

    @Override
    public String toString() {
        return "RunEvent[" + runId + (kind == Kind.STEP ? "/" + stepId.orElse("?") + "#" + attempt : "") + " " + status
                + " seq=" + seq + error.map(m -> ", " + m).orElse("") + engine.map(id -> ", engine " + id).orElse("") + "]";
    }
}
