package dev.baton;

import com.fasterxml.jackson.databind.JsonNode;
import dev.baton.internal.JsonCodec;
import java.time.Instant;
import java.util.Collections;
import java.util.EnumMap;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalInt;

/**
 * A run without its steps: what {@link Baton#runs()} lists. Immutable.
 *
 * <pre>{@code
 * for (RunInfo run : baton.runs()) {
 *     System.out.println(run.id() + " " + run.workflowId() + " " + run.status());
 * }
 * }</pre>
 */
public final class RunInfo {

    private final String id;
    private final String workflowId;
    private final String definition;
    private final Map<String, Object> params;
    private final RunStatus status;
    private final int stepCount;
    private final Instant created;
    private final Instant started;
    private final Instant ended;
    private final String error;
    private final Map<StepStatus, Integer> counts;
    private final Integer version;
    private final String restartedFrom;
    private final String trigger;
    private final String requestId;
    private final String engine;

    private RunInfo(JsonNode run) {
        this.id = run.path("id").asText();
        this.workflowId = run.path("workflow_id").asText();
        this.definition = run.path("definition").asText();
        this.params = JsonCodec.toMap(run.get("params"));
        this.status = RunStatus.valueOf(run.path("status").asText());
        this.stepCount = run.path("step_count").asInt();
        this.created = instant(run.get("created_ms"));
        this.started = instant(run.get("started_ms"));
        this.ended = instant(run.get("ended_ms"));
        this.error = run.hasNonNull("error") ? run.get("error").asText() : null;
        Map<StepStatus, Integer> counts = new EnumMap<>(StepStatus.class);
        run.path("counts").properties().forEach(e -> counts.put(StepStatus.valueOf(e.getKey()), e.getValue().asInt()));
        this.counts = Collections.unmodifiableMap(counts);
        this.version = run.hasNonNull("version") ? run.get("version").asInt() : null;
        this.restartedFrom = run.hasNonNull("restarted_from") ? run.get("restarted_from").asText() : null;
        this.trigger = run.hasNonNull("trigger") ? run.get("trigger").asText() : null;
        this.requestId = run.hasNonNull("request_id") ? run.get("request_id").asText() : null;
        this.engine = run.hasNonNull("engine") ? run.get("engine").asText() : null;
    }

    /** The run record in the engine's JSON form. */
    static RunInfo of(JsonNode run) {
        Objects.requireNonNull(run, "run");
        return new RunInfo(run);
    }

    static Instant instant(JsonNode millis) {
        return millis == null || millis.isNull() ? null : Instant.ofEpochMilli(millis.asLong());
    }

    /** Unique, and sortable by creation time. */
    public String id() {
        return id;
    }

    public String workflowId() {
        return workflowId;
    }

    /** The content hash of the definition the run pins (a workflow's version). */
    public String definition() {
        return definition;
    }

    /** The run's parameters: the workflow's defaults with the run's overrides, in their JSON form. */
    public Map<String, Object> params() {
        return params;
    }

    public RunStatus status() {
        return status;
    }

    /** True if the run succeeded. */
    public boolean succeeded() {
        return status == RunStatus.SUCCEEDED;
    }

    public int stepCount() {
        return stepCount;
    }

    public Instant created() {
        return created;
    }

    public Optional<Instant> started() {
        return Optional.ofNullable(started);
    }

    public Optional<Instant> ended() {
        return Optional.ofNullable(ended);
    }

    /** Why the run failed or stopped. */
    public Optional<String> error() {
        return Optional.ofNullable(error);
    }

    /** Steps per status, recorded when the run ends (empty before). */
    public Map<StepStatus, Integer> counts() {
        return counts;
    }

    /** The version of the registered workflow the run was started from (empty for a run of a definition given as is). */
    public OptionalInt version() {
        return version == null ? OptionalInt.empty() : OptionalInt.of(version);
    }

    /** The run this one restarts ({@link Baton#restart(String)}). */
    public Optional<String> restartedFrom() {
        return Optional.ofNullable(restartedFrom);
    }

    /** What started the run, for a run started by a trigger (a cron time or a signal). */
    public Optional<String> trigger() {
        return Optional.ofNullable(trigger);
    }

    /** The request id that made its start idempotent ({@link StartOptions#requestId(String)}). */
    public Optional<String> requestId() {
        return Optional.ofNullable(requestId);
    }

    /**
     * The engine that drives the run, or drove it last ({@link BatonOptions.Builder#engineId}):
     * on a database shared by several engines, the one that took the run over when the engine
     * that started it died. Empty for a run no engine has driven yet (one a client of the
     * database started, waiting for an engine to claim it), and for runs stored before engines
     * had ids.
     *
     * <pre>{@code
     * baton.runs().forEach(r -> System.out.println(r.id() + " on " + r.engine().orElse("no engine yet")));
     * }</pre>
     */
    public Optional<String> engine() {
        return Optional.ofNullable(engine);
    }

    @Override
    public String toString() {
        return "RunInfo[" + id + ", " + workflowId + ", " + status + (error == null ? "" : ", " + error) + "]";
    }
}
