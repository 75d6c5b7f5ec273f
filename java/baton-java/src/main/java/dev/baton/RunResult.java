package dev.baton;

import com.fasterxml.jackson.databind.JsonNode;
import dev.baton.internal.JsonCodec;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A run and its steps, as the engine recorded them when asked ({@link Run#await},
 * {@link Baton#run(String)}). Immutable: ask again for news. {@link #toString()} prints a table
 * of the steps.
 *
 * <pre>{@code
 * RunResult result = run.await(Duration.ofMinutes(10));
 * result.status();                        // RunStatus.SUCCEEDED
 * result.step("extract").output("rows");  // 42L
 * result.orThrow();                       // or a RunFailedException naming the failed step
 * }</pre>
 */
public final class RunResult {

    private final RunInfo info;
    private final List<StepResult> steps;
    private final Map<String, StepResult> byId;

    private RunResult(RunInfo info, List<StepResult> steps) {
        this.info = info;
        this.steps = Collections.unmodifiableList(steps);
        Map<String, StepResult> byId = new LinkedHashMap<>();
        steps.forEach(s -> byId.put(s.id(), s));
        this.byId = byId;
    }

    /** Run details in the engine's JSON form: {@code {"run": {...}, "steps": [...]}}. */
    static RunResult of(JsonNode details) {
        RunInfo info = RunInfo.of(details.path("run"));
        List<StepResult> steps = new ArrayList<>();
        for (JsonNode s : details.path("steps")) {
            steps.add(new StepResult(
                    s.path("id").asText(),
                    s.path("type").asText(null),
                    StepStatus.valueOf(s.path("status").asText()),
                    s.path("attempt").asInt(),
                    RunInfo.instant(s.get("started_ms")),
                    RunInfo.instant(s.get("ended_ms")),
                    JsonCodec.toMap(s.get("outputs")),
                    text(s, "error"),
                    text(s, "log_tail"),
                    text(s, "waiting_for"),
                    s.path("failure_ignored").asBoolean(false),
                    text(s.path("cached_from"), "run_id")));
        }
        return new RunResult(info, steps);
    }

    private static String text(JsonNode node, String field) {
        JsonNode value = node.get(field);
        return value == null || value.isNull() ? null : value.asText();
    }

    /** The run without its steps. */
    public RunInfo info() {
        return info;
    }

    public String id() {
        return info.id();
    }

    public String workflowId() {
        return info.workflowId();
    }

    public RunStatus status() {
        return info.status();
    }

    /** True if the run succeeded. */
    public boolean succeeded() {
        return info.succeeded();
    }

    /** Why the run failed or stopped. */
    public Optional<String> error() {
        return info.error();
    }

    /** The run's parameters: defaults with the run's overrides. */
    public Map<String, Object> params() {
        return info.params();
    }

    /** The version of the registered workflow the run was started from; see {@link RunInfo#version()}. */
    public java.util.OptionalInt version() {
        return info.version();
    }

    /** The run this one restarts; see {@link RunInfo#restartedFrom()}. */
    public Optional<String> restartedFrom() {
        return info.restartedFrom();
    }

    /** What started the run, for a trigger; see {@link RunInfo#trigger()}. */
    public Optional<String> trigger() {
        return info.trigger();
    }

    /** Every step, in definition order. */
    public List<StepResult> steps() {
        return steps;
    }

    /**
     * The step {@code stepId}.
     *
     * @throws IllegalArgumentException if the run's workflow has no such step
     */
    public StepResult step(String stepId) {
        StepResult step = byId.get(stepId);
        if (step == null) {
            throw new IllegalArgumentException("run " + id() + " of `" + workflowId() + "` has no step `" + stepId
                    + "`; its steps: " + abbreviated(byId.keySet()));
        }
        return step;
    }

    /** The steps that failed (ignored failures included), in definition order. */
    public List<StepResult> failedSteps() {
        List<StepResult> failed = new ArrayList<>();
        for (StepResult s : steps) {
            if (s.status() == StepStatus.FAILED) {
                failed.add(s);
            }
        }
        return failed;
    }

    /**
     * This result if the run succeeded.
     *
     * @throws RunFailedException naming the run's status, error, and each failed step with its
     *     error, if it did not
     */
    public RunResult orThrow() {
        if (succeeded()) {
            return this;
        }
        StringBuilder message = new StringBuilder("run ").append(id()).append(" of `").append(workflowId())
                .append("` ").append(status().name().toLowerCase(java.util.Locale.ROOT));
        error().ifPresent(e -> message.append(": ").append(e));
        StepFailedException first = null;
        for (StepResult s : failedSteps()) {
            if (!s.failureIgnored()) {
                String error = s.error().orElse("(no error recorded)");
                message.append("\n  step `").append(s.id()).append("` failed")
                        .append(s.attempts() > 1 ? " (attempt " + s.attempts() + ")" : "")
                        .append(": ").append(error);
                if (first == null) {
                    first = new StepFailedException(s.id(), error);
                }
            }
        }
        throw new RunFailedException(message.toString(), this, first);
    }

    /** The run, then one line per step: id, kind, status, attempt, duration, outputs or error. */
    @Override
    public String toString() {
        StringBuilder out = new StringBuilder();
        out.append("run ").append(id()).append(" (").append(workflowId()).append("): ").append(status());
        error().ifPresent(e -> out.append(": ").append(e));
        int idWidth = 4;
        int kindWidth = 4;
        for (StepResult s : steps) {
            idWidth = Math.max(idWidth, s.id().length());
            kindWidth = Math.max(kindWidth, String.valueOf(s.kind()).length());
        }
        idWidth = Math.min(idWidth, 40);
        kindWidth = Math.min(kindWidth, 20);
        String format = "%n  %-" + idWidth + "s  %-" + kindWidth + "s  %-9s  %7s  %8s  %s";
        out.append(String.format(format, "STEP", "TYPE", "STATUS", "ATTEMPT", "TIME", "DETAIL"));
        int shown = 0;
        for (StepResult s : steps) {
            if (shown++ == 200) {
                out.append(String.format("%n  ... %d more steps", steps.size() - 200));
                break;
            }
            String time = s.started().isPresent() && s.ended().isPresent()
                    ? format(Duration.between(s.started().get(), s.ended().get())) : "";
            String detail = s.error().map(e -> "error: " + firstLine(e))
                    .or(() -> s.waitingFor().map(w -> "waiting for: " + w))
                    .orElse(s.outputs().isEmpty() ? "" : JsonCodec.write(s.outputs()));
            out.append(String.format(format, s.id(), String.valueOf(s.kind()), s.status(),
                    s.attempts() == 0 ? "" : String.valueOf(s.attempts()), time, detail));
        }
        return out.toString();
    }

    private static String format(Duration d) {
        long ms = d.toMillis();
        return ms < 1000 ? ms + "ms" : ms < 60_000 ? String.format("%.1fs", ms / 1000.0) : (ms / 60_000) + "m" + (ms / 1000 % 60) + "s";
    }

    private static String firstLine(String s) {
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl) + " ...";
    }

    private static String abbreviated(java.util.Collection<String> ids) {
        List<String> list = new ArrayList<>(ids);
        return list.size() <= 20 ? String.join(", ", list)
                : String.join(", ", list.subList(0, 20)) + ", ... (" + list.size() + " in all)";
    }
}
