package dev.baton.gradle;

import dev.baton.DefinitionError;
import dev.baton.WorkflowDefinitionException;
import java.io.File;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.gradle.api.InvalidUserDataException;
import org.gradle.api.Named;
import org.gradle.api.Project;
import org.gradle.api.file.FileCollection;

/**
 * One {@code workflow('name') { }} of the {@code baton} block: where its definition comes from
 * (a YAML or JSON {@code file}, or a Java {@code provider} method on a {@code classpath}) and the
 * parameters its runs get. The name is the build's: it names the task {@code batonRun<Name>}
 * and the messages. The workflow keeps the id of its definition, under which it is registered,
 * run and listed; the two may differ ({@code workflow('etl')} of a file whose id is
 * {@code nightly-etl}).
 *
 * <pre>{@code
 * workflow('etl') {
 *     file = file('src/workflows/etl.yaml')
 *     params = [date: '2026-11-24']
 * }
 * workflow('report') {
 *     provider = 'example.Workflows#report'     // public static Workflow report()
 *     classpath = sourceSets.main.runtimeClasspath
 * }
 * }</pre>
 */
public class WorkflowSpec implements Named {

    private final String name;
    private final Project project;
    private File file;
    private String provider;
    private FileCollection classpath;
    private Map<String, Object> params = new LinkedHashMap<>();

    public WorkflowSpec(String name, Project project) {
        this.name = name;
        this.project = project;
    }

    @Override
    public String getName() {
        return name;
    }

    /** The definition's file: YAML, or JSON if its name ends in {@code .json}. */
    public File getFile() {
        return file;
    }

    public void setFile(File file) {
        this.file = file;
    }

    /** {@code Class#method}: a public static method taking nothing and returning a {@code dev.baton.Workflow}. */
    public String getProvider() {
        return provider;
    }

    public void setProvider(String provider) {
        this.provider = provider;
    }

    /** Where the provider's class and the code of its Java steps are: {@code sourceSets.main.runtimeClasspath}, say. */
    public FileCollection getClasspath() {
        return classpath;
    }

    public void setClasspath(FileCollection classpath) {
        this.classpath = classpath;
    }

    /** Parameters of every run, over the workflow's defaults; {@code -Pbaton.param.NAME=VALUE} overrides them. */
    public Map<String, Object> getParams() {
        return params;
    }

    public void setParams(Map<String, ?> params) {
        this.params = new LinkedHashMap<>(params);
    }

    /** Where the definition comes from, for messages and task inputs: the file, relative to the build, or the provider. */
    public String source() {
        return file != null ? project.getRootProject().relativePath(file) : String.valueOf(provider);
    }

    /**
     * Reads the definition and returns it with the class loader of its Java steps. Close it
     * after the last run.
     *
     * @throws InvalidUserDataException if the spec is incomplete or its source unusable
     * @throws WorkflowDefinitionException if the definition is invalid
     */
    LoadedWorkflow load() {
        if ((file == null) == (provider == null)) {
            throw problem("set either `file` (a YAML or JSON definition) or `provider` (`Class#method` returning a Workflow)");
        }
        return file != null ? LoadedWorkflow.fromFile(this, file) : LoadedWorkflow.fromProvider(this, provider, classpath);
    }

    /**
     * The workflow's id, read from its definition: this loads it (a provider's method runs).
     *
     * @throws InvalidUserDataException if the spec is incomplete or its source unusable
     * @throws WorkflowDefinitionException if the definition is invalid
     */
    String id() {
        try (LoadedWorkflow loaded = load()) {
            return loaded.workflow().id();
        }
    }

    /**
     * How messages name this workflow: {@code baton workflow 'etl'}, with the workflow's
     * {@code id} where it differs from the name ({@code baton workflow 'etl' (id `nightly-etl`)}).
     *
     * @param id the id, or {@code null} if unknown (the definition could not be read)
     */
    String label(String id) {
        String label = "baton workflow '" + name + "'";
        return id == null || id.equals(name) ? label : label + " (id `" + id + "`)";
    }

    /** A problem with this spec's configuration. */
    InvalidUserDataException problem(String message) {
        return problem(message, null);
    }

    InvalidUserDataException problem(String message, Throwable cause) {
        return new InvalidUserDataException(label(null) + ": " + message, cause);
    }

    /** Each problem of a definition, with this spec's source in front when the engine could not say where. */
    List<String> describe(WorkflowDefinitionException e) {
        List<String> problems = new ArrayList<>();
        for (DefinitionError error : e.errors()) {
            problems.add(error.file() != null ? error.toString() : source() + ": " + error);
        }
        return Collections.unmodifiableList(problems);
    }

    @Override
    public String toString() {
        return "workflow '" + name + "' (" + source() + ")";
    }
}
