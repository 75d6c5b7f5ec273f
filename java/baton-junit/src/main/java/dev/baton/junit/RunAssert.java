package dev.baton.junit;

import dev.baton.RunResult;
import dev.baton.RunStatus;
import dev.baton.StepResult;
import dev.baton.StepStatus;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.stream.Collectors;
import org.opentest4j.AssertionFailedError;

/**
 * Fluent checks on one run, made by {@link BatonAssertions#assertThat}. Each returns
 * {@code this}; the first that fails throws an {@link AssertionFailedError} ending with the
 * run's step table. Output values compare as JSON values: {@code 0} matches a stored {@code 0L}.
 *
 * <pre>{@code
 * assertThat(result).failed()
 *     .errorContains("step `load` failed")
 *     .stepFailed("load").stepAttempts("load", 6).stepErrorContains("load", "exited with code 1")
 *     .stepSkipped("report");
 * }</pre>
 */
public final class RunAssert {

    private final RunResult run;

    RunAssert(RunResult run) {
        this.run = run;
    }

    /** The run under check, for checks of one's own. */
    public RunResult actual() {
        return run;
    }

    /** The run SUCCEEDED. */
    public RunAssert succeeded() {
        return hasStatus(RunStatus.SUCCEEDED);
    }

    /** The run FAILED. */
    public RunAssert failed() {
        return hasStatus(RunStatus.FAILED);
    }

    /** The run is in {@code status}. */
    public RunAssert hasStatus(RunStatus status) {
        Objects.requireNonNull(status, "status");
        if (run.status() != status) {
            throw failure("expected the run to be " + status + ", but it is " + run.status()
                    + run.error().map(e -> ": " + e).orElse(""), status, run.status());
        }
        return this;
    }

    /** The run's error (why it failed) contains {@code text}. */
    public RunAssert errorContains(String text) {
        Objects.requireNonNull(text, "text");
        String error = run.error().orElse(null);
        if (error == null || !error.contains(text)) {
            throw failure("expected the run's error to contain \"" + text + "\", but it is "
                    + (error == null ? "absent" : "\"" + error + "\""), text, error);
        }
        return this;
    }

    /** Every step SUCCEEDED. */
    public RunAssert allStepsSucceeded() {
        List<String> others = run.steps().stream().filter(s -> s.status() != StepStatus.SUCCEEDED)
                .map(s -> s.id() + " " + s.status()).collect(Collectors.toList());
        if (!others.isEmpty()) {
            throw failure("expected every step to have SUCCEEDED, but not: " + String.join(", ", others), null, null);
        }
        return this;
    }

    /** Step {@code stepId} SUCCEEDED. */
    public RunAssert stepSucceeded(String stepId) {
        return stepStatus(stepId, StepStatus.SUCCEEDED);
    }

    /** Step {@code stepId} FAILED (an ignored failure too). */
    public RunAssert stepFailed(String stepId) {
        return stepStatus(stepId, StepStatus.FAILED);
    }

    /** Step {@code stepId} was SKIPPED: a condition, a trigger rule or a failure upstream. */
    public RunAssert stepSkipped(String stepId) {
        return stepStatus(stepId, StepStatus.SKIPPED);
    }

    /** Step {@code stepId} is in {@code status}. */
    public RunAssert stepStatus(String stepId, StepStatus status) {
        Objects.requireNonNull(status, "status");
        StepResult step = step(stepId);
        if (step.status() != status) {
            throw failure("expected step `" + stepId + "` to be " + status + ", but it is " + step.status()
                    + step.error().map(e -> ": " + e).orElse(""), status, step.status());
        }
        return this;
    }

    /** Step {@code stepId} ran {@code attempts} times (its last attempt is number {@code attempts}). */
    public RunAssert stepAttempts(String stepId, int attempts) {
        StepResult step = step(stepId);
        if (step.attempts() != attempts) {
            throw failure("expected step `" + stepId + "` to have made " + attempts + " attempt" + (attempts == 1 ? "" : "s")
                    + ", but it made " + step.attempts(), attempts, step.attempts());
        }
        return this;
    }

    /** Step {@code stepId} was served from the result cache: it succeeded without running. */
    public RunAssert stepCached(String stepId) {
        StepResult step = step(stepId);
        if (!step.cached()) {
            throw failure("expected step `" + stepId + "` to be served from the result cache, but it "
                    + (step.succeeded() ? "ran" : "is " + step.status()), null, null);
        }
        return this;
    }

    /** Step {@code stepId} was not served from the result cache (it ran, or did not run at all). */
    public RunAssert stepNotCached(String stepId) {
        StepResult step = step(stepId);
        if (step.cached()) {
            throw failure("expected step `" + stepId + "` to run, but the result cache served it (from run "
                    + step.cachedFrom().orElseThrow() + ")", null, null);
        }
        return this;
    }

    /** Step {@code stepId} has the output {@code key}, equal to {@code expected} as a JSON value. */
    public RunAssert stepOutput(String stepId, String key, Object expected) {
        Objects.requireNonNull(key, "key");
        StepResult step = step(stepId);
        if (!step.outputs().containsKey(key)) {
            throw failure("expected step `" + stepId + "` to have the output `" + key + "`, but its outputs are "
                    + Values.json(step.outputs()), expected, null);
        }
        Object actual = step.output(key);
        if (!Values.same(expected, actual)) {
            throw failure("expected output `" + key + "` of step `" + stepId + "` to be " + Values.json(expected)
                    + ", but it is " + Values.json(actual), expected, actual);
        }
        return this;
    }

    /** Step {@code stepId} has exactly the outputs {@code expected}, compared as JSON values. */
    public RunAssert stepOutputs(String stepId, Map<String, ?> expected) {
        Objects.requireNonNull(expected, "expected");
        StepResult step = step(stepId);
        if (!Values.same(expected, step.outputs())) {
            throw failure("expected the outputs of step `" + stepId + "` to be " + Values.json(expected) + ", but they are "
                    + Values.json(step.outputs()), expected, step.outputs());
        }
        return this;
    }

    /** The last error of step {@code stepId} contains {@code text}. */
    public RunAssert stepErrorContains(String stepId, String text) {
        Objects.requireNonNull(text, "text");
        StepResult step = step(stepId);
        String error = step.error().orElse(null);
        if (error == null || !error.contains(text)) {
            throw failure("expected the error of step `" + stepId + "` to contain \"" + text + "\", but it is "
                    + (error == null ? "absent" : "\"" + error + "\""), text, error);
        }
        return this;
    }

    private StepResult step(String stepId) {
        Objects.requireNonNull(stepId, "stepId");
        return run.steps().stream().filter(s -> s.id().equals(stepId)).findFirst().orElseThrow(() -> failure(
                "the run of `" + run.workflowId() + "` has no step `" + stepId + "`; its steps: "
                        + run.steps().stream().map(StepResult::id).collect(Collectors.joining(", ")), null, null));
    }

    private AssertionFailedError failure(String message, Object expected, Object actual) {
        String text = message + "\n\n" + StepTable.of(run);
        return expected == null && actual == null
                ? new AssertionFailedError(text)
                : new AssertionFailedError(text, expected, actual);
    }

    @Override
    public String toString() {
        return "RunAssert[" + run.id() + "]";
    }
}
