package dev.baton.junit;

import dev.baton.Baton;
import dev.baton.BatonOptions;
import dev.baton.JavaStep;
import dev.baton.Run;
import dev.baton.RunResult;
import dev.baton.Step;
import dev.baton.VirtualClock;
import dev.baton.Workflow;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.stream.Collectors;
import org.opentest4j.AssertionFailedError;

/**
 * One test's engine: in memory, on a virtual clock, closed after the test. JUnit injects it
 * into tests of a {@link BatonTest} class; {@link #open(Instant)} makes one by hand.
 *
 * <pre>{@code
 * @Test
 * void retriesThenLoads(BatonTestEnv env) {
 *     env.register(Pipelines.nightlyEtl());
 *     env.mockStep("nightly-etl", "load", ctx -> { if (ctx.attempt() < 3) throw new IOException("busy"); });
 *     Run run = env.start("nightly-etl", Map.of("date", "2026-11-24"));
 *     env.clock().runUntilIdle();                       // the retry delays pass at once
 *     BatonAssertions.assertThat(run.await()).succeeded().stepAttempts("load", 3);
 *     assertEquals(3, env.calls("nightly-etl", "load").size());
 * }
 * }</pre>
 *
 * <p>Nothing about workflows is simulated: the engine runs them as in production. Only time is
 * virtual, and mocked steps run the test's code in place of theirs.
 */
public final class BatonTestEnv implements AutoCloseable {

    /** Where the clock starts unless {@link BatonTest#start()} says otherwise. */
    public static final String DEFAULT_START = "2026-01-01T00:00:00Z";

    private final Baton baton;
    private final Map<String, Workflow> workflows = new ConcurrentHashMap<>();
    /** Calls of mocked steps, by "workflow/step", in the order they began. */
    private final Map<String, List<StepCall>> calls = new ConcurrentHashMap<>();

    private BatonTestEnv(Baton baton) {
        this.baton = baton;
    }

    /** An engine in memory whose virtual clock reads {@code start}; close it after use. */
    public static BatonTestEnv open(Instant start) {
        Objects.requireNonNull(start, "start");
        return new BatonTestEnv(Baton.inMemory(BatonOptions.builder().virtualClock(start).build()));
    }

    /** The engine, for what this class does not wrap. */
    public Baton baton() {
        return baton;
    }

    /** The engine's clock: {@link VirtualClock#advance}, {@link VirtualClock#runUntilIdle}. */
    public VirtualClock clock() {
        return baton.virtualClock();
    }

    /**
     * Registers {@code workflow} (see {@link Baton#register}).
     *
     * @throws IllegalArgumentException if a step mocked before names no step of it
     */
    public BatonTestEnv register(Workflow workflow) {
        Objects.requireNonNull(workflow, "workflow");
        String prefix = workflow.id() + "/";
        for (String key : calls.keySet()) {
            if (key.startsWith(prefix)) {
                requireStep(workflow, key.substring(prefix.length()));
            }
        }
        baton.register(workflow);
        workflows.put(workflow.id(), workflow);
        return this;
    }

    /**
     * Runs {@code code} in place of step {@code stepId} of {@code workflowId}, whatever its type
     * (a shell command, a Java step, a host type), and records each call ({@link #calls}). The
     * step keeps its dependencies, retries and timeout: a mock that throws fails the attempt,
     * which is retried as the step says. Mocks may come before or after {@link #register}.
     *
     * @throws IllegalArgumentException if the workflow is registered and has no such step
     */
    public BatonTestEnv mockStep(String workflowId, String stepId, JavaStep code) {
        Objects.requireNonNull(workflowId, "workflowId");
        Objects.requireNonNull(stepId, "stepId");
        Objects.requireNonNull(code, "code");
        Workflow workflow = workflows.get(workflowId);
        if (workflow != null) {
            requireStep(workflow, stepId);
        }
        List<StepCall> recorded = calls.computeIfAbsent(key(workflowId, stepId), k -> new CopyOnWriteArrayList<>());
        baton.overrideStep(workflowId, stepId, ctx -> {
            recorded.add(StepCall.of(ctx));
            code.run(ctx);
        });
        return this;
    }

    /** {@link #mockStep(String, String, JavaStep)} with a mock that only sets {@code outputs}. */
    public BatonTestEnv mockStep(String workflowId, String stepId, Map<String, ?> outputs) {
        Map<String, ?> copy = Map.copyOf(Objects.requireNonNull(outputs, "outputs"));
        return mockStep(workflowId, stepId, ctx -> copy.forEach(ctx::output));
    }

    /**
     * The calls of a mocked step so far, in the order they began, across runs: each with the
     * params, upstream outputs and attempt it saw.
     *
     * @throws IllegalArgumentException if the step is not mocked
     */
    public List<StepCall> calls(String workflowId, String stepId) {
        List<StepCall> recorded = calls.get(key(workflowId, stepId));
        if (recorded == null) {
            String mocked = calls.keySet().stream().sorted().collect(Collectors.joining(", "));
            throw new IllegalArgumentException("step `" + stepId + "` of `" + workflowId + "` is not mocked: calls are"
                    + " recorded for mocked steps (env.mockStep); mocked: " + (mocked.isEmpty() ? "none" : mocked));
        }
        return Collections.unmodifiableList(new ArrayList<>(recorded));
    }

    /** Starts a run of a registered workflow (see {@link Baton#start}). */
    public Run start(String workflowId, Map<String, ?> params) {
        return baton.start(workflowId, params);
    }

    /** Starts a run with the workflow's default params. */
    public Run start(String workflowId) {
        return start(workflowId, Map.of());
    }

    /**
     * Moves the clock as far as the run needs ({@link VirtualClock#runUntilIdle}) and returns
     * the run at its end.
     *
     * @throws AssertionFailedError if the run cannot end by time alone (a step waiting for
     *     something else), with its step table
     */
    public RunResult finish(Run run) {
        Objects.requireNonNull(run, "run");
        clock().runUntilIdle();
        RunResult result = run.result();
        if (!result.status().isFinal()) {
            throw new AssertionFailedError("run " + run.id() + " of `" + run.workflowId() + "` has not ended at "
                    + clock().now() + " and no timer is left to fire\n\n" + StepTable.of(result));
        }
        return result;
    }

    /** Closes the engine; idempotent. */
    @Override
    public void close() {
        baton.close();
    }

    @Override
    public String toString() {
        return "BatonTestEnv[" + baton + "]";
    }

    private static String key(String workflowId, String stepId) {
        return workflowId + "/" + stepId;
    }

    private static void requireStep(Workflow workflow, String stepId) {
        if (workflow.step(stepId).isEmpty()) {
            String steps = workflow.steps().stream().map(Step::id).collect(Collectors.joining(", "));
            throw new IllegalArgumentException("cannot mock step `" + stepId + "`: workflow `" + workflow.id()
                    + "` has no such step; its steps: " + steps);
        }
    }
}
