package dev.baton;

import com.fasterxml.jackson.databind.JsonNode;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * Why a run failed, as {@link Baton#diagnose(String)} tells it: the step that failed first
 * (followed into child runs and loop iterations), what it took down, where its error was
 * seen before, what mended it then, and what changed since the step last succeeded.
 *
 * <pre>{@code
 * System.out.println(baton.diagnose(runId).summary());
 * }</pre>
 *
 * @param runId the run diagnosed
 * @param workflowId its workflow
 * @param summary in plain words
 * @param rootCause the first failure in causal order; empty for a run that did not fail
 * @param skipped steps of the run that did not run, or were stopped, because of it
 * @param otherFailures other steps of the run that failed
 * @param similar where the same error signature was seen before
 * @param resolvedBefore what mended this failure before, from the step's history
 * @param changed what differs from the last run in which the step succeeded
 */
public record Diagnosis(String runId, String workflowId, String summary, Optional<RootCause> rootCause, int skipped,
        List<String> otherFailures, List<Similar> similar, List<String> resolvedBefore, List<String> changed) {

    public Diagnosis {
        Objects.requireNonNull(runId, "runId");
        Objects.requireNonNull(rootCause, "rootCause");
        otherFailures = List.copyOf(otherFailures);
        similar = List.copyOf(similar);
        resolvedBefore = List.copyOf(resolvedBefore);
        changed = List.copyOf(changed);
    }

    /**
     * The step that failed first.
     *
     * @param runId the run it failed in (a child run or an iteration for a failure inside one)
     * @param workflowId its workflow ({@code wf.loop} for a loop's body)
     * @param step the step
     * @param signature the error with its digits masked, as it reads across runs
     * @param error the error as it was
     * @param attempts the attempts made
     * @param logTail the end of its output
     * @param path from the run diagnosed down to it: {@code sub}, {@code load}
     */
    public record RootCause(String runId, String workflowId, String step, String signature, String error, int attempts,
            Optional<String> logTail, List<String> path) {
    }

    /**
     * A step whose history holds the same error signature.
     *
     * @param workflowId its workflow
     * @param step the step
     * @param times ends that failed with the signature
     * @param last when it last failed so, among its last outcomes
     */
    public record Similar(String workflowId, String step, long times, Optional<Instant> last) {
    }

    /** The engine's JSON form. */
    static Diagnosis of(JsonNode j) {
        Optional<RootCause> cause = Optional.ofNullable(j.get("root_cause")).filter(c -> !c.isNull()).map(c ->
                new RootCause(c.path("run_id").asText(), c.path("workflow_id").asText(), c.path("step").asText(),
                        c.path("signature").asText(), c.path("error").asText(), c.path("attempts").asInt(),
                        Firing.text(c, "log_tail"), texts(c.path("path"))));
        List<Similar> similar = new ArrayList<>();
        for (JsonNode s : j.path("similar")) {
            JsonNode last = s.get("last_ms");
            similar.add(new Similar(s.path("workflow_id").asText(), s.path("step").asText(), s.path("times").asLong(),
                    last == null || last.isNull() ? Optional.empty() : Optional.of(Instant.ofEpochMilli(last.asLong()))));
        }
        return new Diagnosis(j.path("run_id").asText(), j.path("workflow_id").asText(), j.path("summary").asText(), cause,
                j.path("skipped").asInt(), texts(j.path("other_failures")), similar, texts(j.path("resolved_before")),
                texts(j.path("changed")));
    }

    private static List<String> texts(JsonNode list) {
        List<String> out = new ArrayList<>();
        list.forEach(v -> out.add(v.asText()));
        return out;
    }
}
