package dev.baton;

import com.fasterxml.jackson.databind.JsonNode;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalDouble;

/**
 * What the history of a registered workflow's steps says, as {@link Baton#insights(String)}
 * gives it: each step's usual durations, success and retry rates and trend, and how long a
 * run takes along the critical path. Figures appear once a step has ended 3 times.
 *
 * <pre>{@code
 * WorkflowInsights i = baton.insights("nightly-etl");
 * i.expected().ifPresent(d -> System.out.println("a run takes about " + d + " via " + i.criticalPath()));
 * }</pre>
 *
 * @param workflowId the workflow
 * @param steps its steps, in definition order
 * @param expected how long a run takes by the steps' medians along the critical path, once known
 * @param criticalPath the steps of that path, first to last
 */
public record WorkflowInsights(String workflowId, List<StepInsight> steps, Optional<Duration> expected,
        List<String> criticalPath) {

    public WorkflowInsights {
        Objects.requireNonNull(workflowId, "workflowId");
        steps = List.copyOf(steps);
        Objects.requireNonNull(expected, "expected");
        criticalPath = List.copyOf(criticalPath);
    }

    /** The figures of step {@code stepId}, if the workflow has that step. */
    public Optional<StepInsight> step(String stepId) {
        return steps.stream().filter(s -> s.step().equals(stepId)).findFirst();
    }

    /**
     * What the history of one step says.
     *
     * @param step the step's id
     * @param ended its ends recorded (runs, or iterations for a loop body's step)
     * @param p50 the median duration of its succeeded attempts
     * @param p90 the 90th percentile
     * @param p99 the 99th percentile
     * @param successRate ends that succeeded, from 0 to 1
     * @param retryRate ends that needed more than one attempt, from 0 to 1
     * @param trend whether its recent runs take longer than usual
     */
    public record StepInsight(String step, long ended, Optional<Duration> p50, Optional<Duration> p90,
            Optional<Duration> p99, OptionalDouble successRate, OptionalDouble retryRate, Trend trend) {
    }

    /** How a step's recent durations compare with its usual one. */
    public enum Trend {
        /** Too little history to tell. */
        UNKNOWN,
        /** Within 25% of the usual median. */
        STEADY,
        /** More than 25% slower. */
        SLOWER,
        /** More than 20% faster. */
        FASTER
    }

    /** The engine's JSON form. */
    static WorkflowInsights of(JsonNode json) {
        List<StepInsight> steps = new ArrayList<>();
        for (JsonNode s : json.path("steps")) {
            steps.add(new StepInsight(s.path("step").asText(), s.path("ended").asLong(), millis(s, "p50_ms"),
                    millis(s, "p90_ms"), millis(s, "p99_ms"), rate(s, "success_rate"), rate(s, "retry_rate"),
                    Trend.valueOf(s.path("trend").asText("unknown").toUpperCase(java.util.Locale.ROOT))));
        }
        List<String> path = new ArrayList<>();
        json.path("critical_path").forEach(p -> path.add(p.asText()));
        return new WorkflowInsights(json.path("workflow_id").asText(), steps, millis(json, "expected_ms"), path);
    }

    static Optional<Duration> millis(JsonNode node, String field) {
        JsonNode v = node.get(field);
        return v == null || v.isNull() ? Optional.empty() : Optional.of(Duration.ofMillis(v.asLong()));
    }

    private static OptionalDouble rate(JsonNode node, String field) {
        JsonNode v = node.get(field);
        return v == null || v.isNull() ? OptionalDouble.empty() : OptionalDouble.of(v.asDouble());
    }
}
