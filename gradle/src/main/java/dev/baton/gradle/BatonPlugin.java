package dev.baton.gradle;

import org.gradle.api.InvalidUserDataException;
import org.gradle.api.Plugin;
import org.gradle.api.Project;
import org.gradle.api.Task;
import org.gradle.api.tasks.TaskContainer;

/**
 * The plugin {@code dev.baton}: a {@code baton { }} block declaring workflows, and the tasks
 * {@code batonValidate} (which {@code check} depends on), {@code batonRun<Name>} per workflow and
 * {@code batonRuns}. The name of a workflow in the build ({@code 'etl'}) names its task
 * ({@code batonRunEtl}); the workflow keeps the id of its definition, under which the store
 * keeps its runs.
 *
 * <pre>{@code
 * apply plugin: 'dev.baton'
 * baton {
 *     workflow('etl') {
 *         file = file('src/workflows/etl.yaml')
 *         params = [date: '2026-11-24']
 *     }
 * }
 * }</pre>
 *
 * <p>Written against the Gradle API of 4.4, which later versions keep: eager tasks, no lazy
 * properties.
 */
public class BatonPlugin implements Plugin<Project> {

    static final String GROUP = "baton";

    @Override
    public void apply(Project project) {
        BatonExtension baton = project.getExtensions().create("baton", BatonExtension.class, project);
        TaskContainer tasks = project.getTasks();

        ValidateTask validate = tasks.create("batonValidate", ValidateTask.class, task -> {
            task.setGroup(GROUP);
            task.setDescription("Validates every Baton workflow of the build.");
            task.setWorkflows(baton.getWorkflows());
        });
        // `check` comes with the java (or base) plugin, applied before or after this one.
        tasks.matching(task -> task.getName().equals("check")).all(check -> check.dependsOn(validate));

        baton.getWorkflows().all(workflow -> {
            String name = RunTask.nameFor(workflow.getName());
            // Different names can make one task name (`nightly-etl`, `nightly_etl`): say which workflows clash.
            Task other = tasks.findByName(name);
            if (other != null) {
                throw new InvalidUserDataException(workflow.label(null) + ": its task " + name + " exists already"
                        + (other instanceof RunTask ? ", for " + ((RunTask) other).getWorkflow().label(null) : ""));
            }
            // RunTask describes itself: the description names the workflow's id, read when asked.
            tasks.create(name, RunTask.class, task -> {
                task.setGroup(GROUP);
                task.setWorkflow(workflow);
                task.setBaton(baton);
            });
        });

        tasks.create("batonRuns", RunsTask.class, task -> {
            task.setGroup(GROUP);
            task.setDescription("Lists the recent runs of the Baton store; -P" + RunsTask.WORKFLOW_PROPERTY
                    + "=NAME lists those of workflow('NAME') (by its id), or of the id NAME.");
            task.setBaton(baton);
        });
    }
}
