package dev.baton.gradle;

import dev.baton.Baton;
import dev.baton.BatonException;
import dev.baton.RunInfo;
import dev.baton.WorkflowDefinitionException;
import java.io.File;
import java.time.Duration;
import java.time.ZoneId;
import java.time.format.DateTimeFormatter;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import org.gradle.api.DefaultTask;
import org.gradle.api.GradleException;
import org.gradle.api.InvalidUserDataException;
import org.gradle.api.tasks.Input;
import org.gradle.api.tasks.TaskAction;

/**
 * {@code batonRuns}: lists the most recent runs of the build's store, newest last, as
 * {@code baton runs} does. {@code -Pbaton.workflow=NAME} lists one workflow's: NAME is a
 * workflow's name in the build, {@code workflow('NAME')}, whose runs the store keeps under its
 * id (read from its definition); any other NAME is an id of the store (a workflow the build no
 * longer has, say).
 */
public class RunsTask extends DefaultTask {

    /** Project property: the workflow whose runs to list, by its name in the build or its id. */
    static final String WORKFLOW_PROPERTY = "baton.workflow";
    private static final DateTimeFormatter TIME = DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss").withZone(ZoneId.systemDefault());

    private BatonExtension baton;
    private int limit = 20;

    void setBaton(BatonExtension baton) {
        this.baton = baton;
    }

    /** How many runs to list, the most recent ones: 20 unless set. */
    @Input
    public int getLimit() {
        return limit;
    }

    public void setLimit(int limit) {
        this.limit = limit;
    }

    @TaskAction
    public void list() {
        File store = baton.getStore();
        String filter = (String) getProject().findProperty(WORKFLOW_PROPERTY);
        WorkflowSpec spec = filter == null ? null : baton.getWorkflows().findByName(filter);
        String id = spec != null ? idOf(spec) : filter;
        List<RunInfo> runs;
        if (store.isDirectory()) {
            try (Baton engine = Baton.open(store.toPath())) {
                runs = id == null ? engine.runs() : engine.runs(id);
                if (id != null && spec == null && runs.isEmpty()) {
                    Set<String> known = new TreeSet<>(baton.getWorkflows().getNames());
                    engine.runs().forEach(r -> known.add(r.workflowId()));
                    throw new InvalidUserDataException("baton: unknown workflow `" + id + "`: neither the build nor the store "
                            + store + " has it (known: " + (known.isEmpty() ? "none" : String.join(", ", known)) + ")");
                }
            } catch (BatonException e) {
                throw new GradleException("baton: cannot read the store " + store + ": " + e.getMessage(), e);
            }
        } else {
            runs = List.of();
        }
        if (runs.isEmpty()) {
            getLogger().quiet("No runs{} in {}", id == null ? "" : " of " + (spec != null ? spec.label(id) : "`" + id + "`"), store);
            return;
        }
        List<RunInfo> recent = runs.subList(Math.max(0, runs.size() - limit), runs.size());
        String format = "%-26s  %-20s  %-9s  %-19s  %8s  %s";
        getLogger().quiet(String.format(format, "RUN", "WORKFLOW", "STATUS", "CREATED", "TIME", "ERROR").trim());
        for (RunInfo run : recent) {
            String time = run.started().flatMap(s -> run.ended().map(e -> RunTask.format(Duration.between(s, e)))).orElse("");
            getLogger().quiet(String.format(format, run.id(), run.workflowId(), run.status(), TIME.format(run.created()), time,
                    run.error().orElse("")).trim());
        }
        if (recent.size() < runs.size()) {
            getLogger().quiet("(" + (runs.size() - recent.size()) + " older runs not shown; `batonRuns { limit = " + runs.size() + " }` shows them)");
        }
    }

    /** The id under which the store keeps {@code spec}'s runs, read from its definition. */
    private static String idOf(WorkflowSpec spec) {
        try {
            return spec.id();
        } catch (InvalidUserDataException | WorkflowDefinitionException e) {
            // A provider's classes, say, may not be built: batonRuns does not build them.
            throw new InvalidUserDataException("baton: cannot list the runs of " + spec.label(null) + ": its id is unknown, its definition"
                    + " unreadable (-P" + WORKFLOW_PROPERTY + "=ID takes the id itself):\n  " + e.getMessage(), e);
        }
    }
}
