package dev.baton.gradle;

import dev.baton.Baton;
import dev.baton.BatonException;
import dev.baton.Run;
import dev.baton.RunResult;
import dev.baton.RunTimeoutException;
import dev.baton.StepResult;
import dev.baton.WorkflowDefinitionException;
import java.io.File;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import org.gradle.api.DefaultTask;
import org.gradle.api.GradleException;
import org.gradle.api.InvalidUserDataException;
import org.gradle.api.file.FileCollection;
import org.gradle.api.tasks.Classpath;
import org.gradle.api.tasks.Internal;
import org.gradle.api.tasks.Optional;
import org.gradle.api.tasks.TaskAction;

/**
 * {@code batonRun<Name>}: runs one workflow to its end in the build's store, under the workflow's
 * own id, logging each step as it ends, and fails the build if the run does not succeed. Never
 * up to date: a run is an action, not a product. {@code -Pbaton.param.NAME=VALUE} overrides a
 * parameter.
 */
public class RunTask extends DefaultTask {

    /** Prefix of the project properties that override parameters. */
    static final String PARAM_PREFIX = "baton.param.";
    /** How often the steps that ended are logged while the run goes on. */
    private static final Duration PROGRESS_INTERVAL = Duration.ofSeconds(1);
    /** What every task name of a workflow begins with. */
    private static final String TASK_PREFIX = "batonRun";

    private WorkflowSpec workflow;
    private BatonExtension baton;

    /**
     * The task of the workflow named {@code name} in the build: {@code batonRunNightlyEtl} for
     * {@code nightly-etl} (or {@code nightly etl}): its letters and digits, each word capitalized.
     *
     * @throws InvalidUserDataException if the name has no letter or digit to make a task name of
     */
    static String nameFor(String name) {
        StringBuilder task = new StringBuilder(TASK_PREFIX);
        for (String word : name.split("[^\\p{L}\\p{N}]+")) {
            if (!word.isEmpty()) {
                int first = word.codePointAt(0);
                task.appendCodePoint(Character.toUpperCase(first)).append(word, Character.charCount(first), word.length());
            }
        }
        if (task.length() == TASK_PREFIX.length()) {
            throw new InvalidUserDataException("baton: `" + name + "` cannot name a workflow: its task " + TASK_PREFIX
                    + "<Name> is made of the name's letters and digits, and it has none");
        }
        return task.toString();
    }

    void setWorkflow(WorkflowSpec workflow) {
        this.workflow = workflow;
    }

    void setBaton(BatonExtension baton) {
        this.baton = baton;
    }

    @Internal
    public WorkflowSpec getWorkflow() {
        return workflow;
    }

    /**
     * Names the workflow's id too where it differs from its name in the build, reading it
     * from the file when asked (by {@code gradle tasks}, say), not while configuring every
     * build. A provider is not called for it: that would need the build's classes compiled.
     */
    @Override
    @Internal
    public String getDescription() {
        String set = super.getDescription();
        if (set != null || workflow == null) {
            return set;
        }
        String name = workflow.getName();
        if (workflow.getFile() != null) {
            try {
                String id = workflow.id();
                return "Runs the Baton workflow '" + id + "'" + (id.equals(name) ? "" : " (baton workflow '" + name + "')") + " to its end.";
            } catch (InvalidUserDataException | BatonException unreadable) {
                // The run reports it; the description names the source instead.
            }
        }
        return "Runs baton workflow '" + name + "' (" + workflow.source() + ") to its end.";
    }

    /** The provider's classpath: declared so that the classes it needs are built first. */
    @Classpath
    @Optional
    public FileCollection getClasspath() {
        return workflow.getProvider() != null ? workflow.getClasspath() : null;
    }

    /** The run's parameters: the spec's, then {@code -Pbaton.param.NAME=VALUE}s. */
    @Internal
    public Map<String, Object> getParams() {
        Map<String, Object> params = new LinkedHashMap<>();
        workflow.getParams().forEach((k, v) -> params.put(k, plain(v)));
        getProject().getProperties().forEach((k, v) -> {
            if (k.startsWith(PARAM_PREFIX) && k.length() > PARAM_PREFIX.length()) {
                params.put(k.substring(PARAM_PREFIX.length()), plain(v));
            }
        });
        return params;
    }

    /** Groovy strings ({@code "$buildDir/out"}) and files as text; numbers, booleans, lists and maps as they are. */
    private static Object plain(Object value) {
        return value instanceof CharSequence || value instanceof File ? value.toString() : value;
    }

    @TaskAction
    public void run() {
        File store = baton.getStore();
        RunResult result;
        String id = null;  // known once the definition is read
        try (LoadedWorkflow loaded = workflow.load(); Baton engine = Baton.open(store.toPath())) {
            id = loaded.workflow().id();
            // Under its own id, whatever the build names it.
            engine.register(loaded.workflow());
            Run run = engine.start(id, getParams());
            getLogger().lifecycle("baton: run {} of `{}` started (store {})", run.id(), run.workflowId(), store);
            result = awaitLoggingSteps(run);
        } catch (WorkflowDefinitionException e) {
            throw new GradleException(workflow.label(e.workflowId() != null ? e.workflowId() : id) + " is invalid:\n  "
                    + String.join("\n  ", workflow.describe(e)), e);
        } catch (BatonException e) {
            throw new GradleException(workflow.label(id) + ": " + e.getMessage(), e);
        }
        if (!result.succeeded()) {
            throw failure(result, store);
        }
        getLogger().lifecycle("baton: run {} of `{}` succeeded in {} ({} steps)",
                result.id(), result.workflowId(), elapsed(result), result.steps().size());
    }

    /** The build's failure: the failed steps with their errors, and how to see more. Logs what they printed. */
    private GradleException failure(RunResult result, File store) {
        StringBuilder message = new StringBuilder("baton: run ").append(result.id()).append(" of `")
                .append(result.workflowId()).append("` ").append(result.status().name().toLowerCase(Locale.ROOT));
        List<StepResult> failed = new ArrayList<>(result.failedSteps());
        failed.removeIf(StepResult::failureIgnored);
        if (failed.isEmpty()) {
            result.error().ifPresent(e -> message.append(": ").append(e));
        }
        for (StepResult step : failed) {
            message.append("\n  step `").append(step.id()).append("` failed")
                    .append(step.attempts() > 1 ? " (attempt " + step.attempts() + ")" : "")
                    .append(": ").append(step.error().orElse("(no error recorded)"));
            // A CI log may be all there is: keep the end of what the step printed.
            step.logTail().ifPresent(tail -> getLogger().error("baton: the end of what step `{}` printed:\n{}", step.id(), tail));
        }
        message.append("\nInspect it with: baton --store ").append(store).append(" show ").append(result.id());
        return new GradleException(message.toString());
    }

    /** Waits for the end of {@code run}, logging each step once it has ended. */
    private RunResult awaitLoggingSteps(Run run) {
        Set<String> logged = new HashSet<>();
        while (true) {
            try {
                RunResult done = run.await(PROGRESS_INTERVAL);
                logEndedSteps(done, logged);
                return done;
            } catch (RunTimeoutException stillRunning) {
                logEndedSteps(run.result(), logged);
            }
        }
    }

    private void logEndedSteps(RunResult result, Set<String> logged) {
        for (StepResult step : result.steps()) {
            if (step.status().isFinal() && logged.add(step.id())) {
                String status = step.status().name().toLowerCase(Locale.ROOT);
                String time = step.started().flatMap(s -> step.ended().map(e -> " in " + format(Duration.between(s, e)))).orElse("");
                String detail = step.error().map(e -> ": " + (e.startsWith(status + ": ") ? e.substring(status.length() + 2) : e))
                        .orElse(step.outputs().isEmpty() ? "" : ", outputs " + step.outputs());
                getLogger().lifecycle("  step `{}` {}{}{}", step.id(), status, time, detail);
            }
        }
    }

    private static String elapsed(RunResult result) {
        return result.info().started().flatMap(s -> result.info().ended().map(e -> format(Duration.between(s, e)))).orElse("?");
    }

    static String format(Duration d) {
        long ms = d.toMillis();
        return ms < 1000 ? ms + "ms" : ms < 60_000 ? String.format(Locale.ROOT, "%.1fs", ms / 1000.0)
                : (ms / 60_000) + "m" + (ms / 1000 % 60) + "s";
    }
}
