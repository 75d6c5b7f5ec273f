package dev.baton;

import com.fasterxml.jackson.databind.JsonNode;
import java.time.Instant;
import java.util.Objects;
import java.util.Optional;

/**
 * One firing of a workflow's trigger, as {@link Baton#firings(String)} lists it: the run it
 * started, or why it started none.
 *
 * <pre>{@code
 * for (Firing f : baton.firings("nightly-etl")) {
 *     System.out.println(f.scheduledAt() + " -> " + f.runId().orElse(f.reason().orElse("?")));
 * }
 * }</pre>
 *
 * @param workflowId the workflow whose trigger fired
 * @param trigger the trigger's position in the definition, from 0
 * @param version the version whose trigger fired
 * @param scheduledAt the cron time, or when the signal was sent
 * @param firedAt when the engine fired it
 * @param signalId the signal, for a signal trigger
 * @param runId the run it started, if any
 * @param reason why no run started: disabled, a misfire skipped, refused by the run strategy...
 */
public record Firing(String workflowId, int trigger, int version, Instant scheduledAt, Instant firedAt,
        Optional<String> signalId, Optional<String> runId, Optional<String> reason) {

    public Firing {
        Objects.requireNonNull(workflowId, "workflowId");
        Objects.requireNonNull(signalId, "signalId");
        Objects.requireNonNull(runId, "runId");
        Objects.requireNonNull(reason, "reason");
    }

    /** The engine's JSON form. */
    static Firing of(JsonNode f) {
        return new Firing(f.path("workflow_id").asText(), f.path("trigger").asInt(), f.path("version").asInt(),
                Instant.ofEpochMilli(f.path("scheduled_ms").asLong()), Instant.ofEpochMilli(f.path("fired_ms").asLong()),
                text(f, "signal_id"), text(f, "run_id"), text(f, "reason"));
    }

    static Optional<String> text(JsonNode node, String field) {
        JsonNode value = node.get(field);
        return value == null || value.isNull() ? Optional.empty() : Optional.of(value.asText());
    }
}
