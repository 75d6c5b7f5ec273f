package dev.baton.gradle;

import java.io.File;
import org.gradle.api.Action;
import org.gradle.api.NamedDomainObjectContainer;
import org.gradle.api.Project;

/**
 * The {@code baton { }} block: the store the build's runs are kept in, and the workflows.
 *
 * <pre>{@code
 * baton {
 *     store = file("$buildDir/baton")                  // the default
 *     workflow('etl') {
 *         file = file('src/workflows/etl.yaml')
 *     }
 *     workflow('report') {
 *         provider = 'example.Workflows#report'
 *         classpath = sourceSets.main.runtimeClasspath
 *     }
 * }
 * }</pre>
 */
public class BatonExtension {

    private final Project project;
    private final NamedDomainObjectContainer<WorkflowSpec> workflows;
    private File store;

    public BatonExtension(Project project) {
        this.project = project;
        this.workflows = project.container(WorkflowSpec.class, name -> new WorkflowSpec(name, project));
    }

    /** The store's directory: {@code $buildDir/baton} unless set. */
    public File getStore() {
        return store != null ? store : new File(project.getBuildDir(), "baton");
    }

    public void setStore(File store) {
        this.store = store;
    }

    /** The workflows, by their names in the build; {@code workflow(name) { }} adds one. */
    public NamedDomainObjectContainer<WorkflowSpec> getWorkflows() {
        return workflows;
    }

    /**
     * Declares the workflow {@code name}, configured by {@code configure} (a closure in a build
     * script), and its task {@code batonRun<Name>}. The name is the build's, for the task and
     * messages: the workflow keeps the id of its definition, which may differ.
     */
    public WorkflowSpec workflow(String name, Action<? super WorkflowSpec> configure) {
        return workflows.create(name, configure);
    }
}
