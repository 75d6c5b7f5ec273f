package dev.baton.gradle;

import dev.baton.Baton;
import dev.baton.WorkflowDefinitionException;
import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import org.gradle.api.DefaultTask;
import org.gradle.api.GradleException;
import org.gradle.api.InvalidUserDataException;
import org.gradle.api.NamedDomainObjectContainer;
import org.gradle.api.file.FileCollection;
import org.gradle.api.tasks.Classpath;
import org.gradle.api.tasks.Input;
import org.gradle.api.tasks.InputFiles;
import org.gradle.api.tasks.OutputFile;
import org.gradle.api.tasks.TaskAction;

/**
 * {@code batonValidate}: checks every workflow as the engine would before a run (the same
 * checks as {@code baton validate}) and fails listing every problem of every workflow. Up to
 * date while the definitions, the providers and their classpaths are unchanged.
 */
public class ValidateTask extends DefaultTask {

    private NamedDomainObjectContainer<WorkflowSpec> workflows;
    private File report;

    void setWorkflows(NamedDomainObjectContainer<WorkflowSpec> workflows) {
        this.workflows = workflows;
    }

    /** Each workflow's source (file or provider), by name. */
    @Input
    public SortedMap<String, String> getSources() {
        SortedMap<String, String> sources = new TreeMap<>();
        workflows.forEach(w -> sources.put(w.getName(), w.source()));
        return sources;
    }

    /** The definition files. Not {@code @InputFile}s, so that a missing one is reported like any other problem. */
    @InputFiles
    public FileCollection getDefinitionFiles() {
        return getProject().files((Callable<List<File>>) () -> {
            List<File> files = new ArrayList<>();
            workflows.forEach(w -> {
                if (w.getFile() != null) {
                    files.add(w.getFile());
                }
            });
            return files;
        });
    }

    /** The classpaths of the providers: their classes (so their tasks) are inputs. */
    @Classpath
    public FileCollection getProviderClasspath() {
        return getProject().files((Callable<List<FileCollection>>) () -> {
            List<FileCollection> classpaths = new ArrayList<>();
            workflows.forEach(w -> {
                if (w.getProvider() != null && w.getClasspath() != null) {
                    classpaths.add(w.getClasspath());
                }
            });
            return classpaths;
        });
    }

    /**
     * What was validated, one workflow a line, by its name in the build (and its id where it
     * differs): {@code build/reports/baton/validation.txt} unless set.
     */
    @OutputFile
    public File getReport() {
        return report != null ? report : new File(getProject().getBuildDir(), "reports/baton/validation.txt");
    }

    public void setReport(File report) {
        this.report = report;
    }

    @TaskAction
    public void validate() throws IOException {
        List<String> problems = new ArrayList<>();
        StringBuilder report = new StringBuilder();
        // In memory: validating needs no store, and leaves the build's store free.
        try (Baton baton = Baton.inMemory()) {
            for (WorkflowSpec spec : workflows) {
                try (LoadedWorkflow loaded = spec.load()) {
                    baton.validate(loaded.workflow());
                    String id = loaded.workflow().id();
                    report.append(spec.getName()).append(": valid (").append(id.equals(spec.getName()) ? "" : "id `" + id + "`, ")
                            .append(spec.source()).append(", ").append(loaded.workflow().steps().size()).append(" steps)\n");
                } catch (WorkflowDefinitionException e) {
                    problems.addAll(spec.describe(e));
                } catch (InvalidUserDataException e) {
                    problems.add(e.getMessage());
                }
            }
        }
        if (!problems.isEmpty()) {
            throw new GradleException("Baton found " + (problems.size() == 1 ? "1 problem" : problems.size() + " problems")
                    + " in the workflows of " + getProject() + ":\n  " + String.join("\n  ", problems));
        }
        getLogger().info("baton: {} workflow(s) valid", workflows.size());
        File out = getReport();
        Files.createDirectories(out.getParentFile().toPath());
        Files.write(out.toPath(), report.toString().getBytes(StandardCharsets.UTF_8));
    }
}
