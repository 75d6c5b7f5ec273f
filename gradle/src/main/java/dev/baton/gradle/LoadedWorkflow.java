package dev.baton.gradle;

import dev.baton.Workflow;
import dev.baton.WorkflowDefinitionException;
import java.io.File;
import java.io.IOException;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.net.MalformedURLException;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.gradle.api.file.FileCollection;

/**
 * A workflow read from its {@link WorkflowSpec}, with the class loader its Java steps run in
 * (for the provider form). Closing it closes that class loader: close it after the last run.
 *
 * <pre>{@code
 * try (LoadedWorkflow loaded = spec.load(); Baton baton = Baton.open(store)) {
 *     baton.register(loaded.workflow());
 *     ...
 * }
 * }</pre>
 */
final class LoadedWorkflow implements AutoCloseable {

    private static final Pattern PROVIDER = Pattern.compile("([\\p{javaJavaIdentifierPart}.$]+)#(\\p{javaJavaIdentifierStart}\\p{javaJavaIdentifierPart}*)");

    private final Workflow workflow;
    private final URLClassLoader loader;

    private LoadedWorkflow(Workflow workflow, URLClassLoader loader) {
        this.workflow = workflow;
        this.loader = loader;
    }

    Workflow workflow() {
        return workflow;
    }

    /** Reads a YAML file, or JSON for a {@code .json} file, as {@code baton run} does. */
    static LoadedWorkflow fromFile(WorkflowSpec spec, File file) {
        if (!file.isFile()) {
            throw spec.problem("file " + file + (file.exists() ? " is not a file" : " does not exist"));
        }
        String text;
        try {
            text = Files.readString(file.toPath());
        } catch (IOException e) {
            throw spec.problem("cannot read " + file + ": " + e.getMessage(), e);
        }
        // Read here, not by path: errors then name the file as the build does, relative to it.
        Workflow workflow = file.getName().endsWith(".json")
                ? Workflow.fromJson(text, spec.source())
                : Workflow.fromYaml(text, spec.source());
        return new LoadedWorkflow(workflow, null);
    }

    /**
     * Calls the static method {@code provider} ({@code Class#method}) found on {@code classpath}.
     * The class loader's parent is the plugin's, so that the build's code and the plugin share
     * {@code dev.baton.*} (and so one engine).
     */
    static LoadedWorkflow fromProvider(WorkflowSpec spec, String provider, FileCollection classpath) {
        Matcher m = PROVIDER.matcher(provider);
        if (!m.matches()) {
            throw spec.problem("provider `" + provider + "` is not `Class#method` (e.g. `example.Workflows#report`)");
        }
        String className = m.group(1);
        String methodName = m.group(2);
        URLClassLoader loader = new URLClassLoader(urls(spec, classpath), LoadedWorkflow.class.getClassLoader());
        try {
            Method method = staticMethod(spec, loadClass(spec, loader, className, classpath), methodName);
            Object workflow;
            try {
                workflow = method.invoke(null);
            } catch (InvocationTargetException e) {
                if (e.getCause() instanceof WorkflowDefinitionException) {
                    throw (WorkflowDefinitionException) e.getCause();
                }
                throw spec.problem(provider + " threw " + e.getCause(), e.getCause());
            } catch (IllegalAccessException e) {
                throw spec.problem("cannot call " + provider + ": " + e.getMessage(), e);
            }
            if (workflow == null) {
                throw spec.problem(provider + " returned null, not a Workflow");
            }
            return new LoadedWorkflow((Workflow) workflow, loader);
        } catch (RuntimeException | Error e) {
            close(loader);
            throw e;
        }
    }

    private static URL[] urls(WorkflowSpec spec, FileCollection classpath) {
        List<URL> urls = new ArrayList<>();
        if (classpath != null) {
            for (File f : classpath.getFiles()) {
                try {
                    urls.add(f.toURI().toURL());
                } catch (MalformedURLException e) {
                    throw spec.problem("classpath entry " + f + ": " + e.getMessage(), e);
                }
            }
        }
        return urls.toArray(new URL[0]);
    }

    private static Class<?> loadClass(WorkflowSpec spec, ClassLoader loader, String className, FileCollection classpath) {
        try {
            return Class.forName(className, true, loader);
        } catch (ClassNotFoundException e) {
            throw spec.problem("class " + className + " is not on its classpath"
                    + (classpath == null ? " (none is set: `classpath = sourceSets.main.runtimeClasspath`, say)" : ""));
        } catch (LinkageError e) {
            throw spec.problem("cannot load class " + className + ": " + e, e);
        }
    }

    /** The public static method {@code name()} returning a Workflow, or a problem saying how it differs. */
    private static Method staticMethod(WorkflowSpec spec, Class<?> type, String name) {
        String provider = type.getName() + "#" + name;
        Method method;
        try {
            method = type.getMethod(name);
        } catch (NoSuchMethodException e) {
            for (Method other : type.getDeclaredMethods()) {
                if (other.getName().equals(name)) {
                    throw spec.problem(provider + " must be public and take no parameters");
                }
            }
            throw spec.problem(type.getName() + " has no method `" + name + "`");
        }
        if (!Modifier.isStatic(method.getModifiers())) {
            throw spec.problem(provider + " must be static");
        }
        if (!Workflow.class.isAssignableFrom(method.getReturnType())) {
            throw spec.problem(provider + " returns " + method.getReturnType().getName() + ", not " + Workflow.class.getName());
        }
        return method;
    }

    @Override
    public void close() {
        close(loader);
    }

    private static void close(URLClassLoader loader) {
        if (loader != null) {
            try {
                loader.close();
            } catch (IOException e) {
                // It only releases the jars it read: nothing for the build to act on.
            }
        }
    }
}
