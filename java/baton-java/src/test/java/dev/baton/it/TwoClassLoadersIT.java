package dev.baton.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;

import java.lang.reflect.Method;
import java.lang.reflect.Proxy;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Two class loaders in one JVM (a Gradle daemon, Spark) each load the jar, its own copy of the
 * native library, and run a workflow with a Java step, at the same time.
 */
@Timeout(120)
class TwoClassLoadersIT {

    @Test
    void twoClassLoadersEachRunAWorkflow() throws Exception {
        URL jar = ChildJvm.JAR.toUri().toURL();
        try (URLClassLoader first = new URLClassLoader(new URL[] {jar}, ClassLoader.getPlatformClassLoader());
                URLClassLoader second = new URLClassLoader(new URL[] {jar}, ClassLoader.getPlatformClassLoader())) {
            ExecutorService pool = Executors.newFixedThreadPool(2);
            try {
                Future<Object[]> a = pool.submit(() -> runIn(first, "first"));
                Future<Object[]> b = pool.submit(() -> runIn(second, "second"));
                Object[] ra = a.get(90, TimeUnit.SECONDS);
                Object[] rb = b.get(90, TimeUnit.SECONDS);
                assertEquals("SUCCEEDED", ra[0].toString());
                assertEquals("SUCCEEDED", rb[0].toString());
                assertEquals("first", ra[1]);
                assertEquals("second", rb[1]);
                assertNotEquals(ra[2], rb[2]); // each its own copy of the library
            } finally {
                pool.shutdownNow();
            }
            assertNotSame(first.loadClass("dev.baton.Baton"), second.loadClass("dev.baton.Baton"));
        }
    }

    /**
     * In {@code loader}: opens a Baton, runs a workflow whose Java step outputs {@code name}.
     *
     * @return the run's status, the step's output, the native library's path
     */
    private static Object[] runIn(ClassLoader loader, String name) throws Exception {
        Class<?> batonClass = loader.loadClass("dev.baton.Baton");
        Class<?> workflowClass = loader.loadClass("dev.baton.Workflow");
        Class<?> javaStep = loader.loadClass("dev.baton.JavaStep");
        Class<?> stepContext = loader.loadClass("dev.baton.StepContext");
        Method output = stepContext.getMethod("output", String.class, Object.class);
        Object code = Proxy.newProxyInstance(loader, new Class<?>[] {javaStep}, (proxy, method, args) -> {
            if (method.getName().equals("run")) {
                output.invoke(args[0], "name", name);
                return null;
            }
            return method.invoke(name, args); // toString, hashCode, equals
        });
        Object workflow = workflowClass.getMethod("fromJson", String.class).invoke(null,
                "{\"id\": \"cl\", \"steps\": [{\"id\": \"a\", \"type\": \"java\"}, "
                        + "{\"id\": \"b\", \"type\": \"shell\", \"command\": \"echo ${a.name}\", \"depends_on\": [\"a\"]}]}");
        workflow = workflowClass.getMethod("bind", String.class, javaStep).invoke(workflow, "a", code);
        Path library = (Path) loader.loadClass("dev.baton.internal.NativeLoader").getMethod("load").invoke(null);
        try (AutoCloseable baton = (AutoCloseable) batonClass.getMethod("inMemory").invoke(null)) {
            batonClass.getMethod("register", workflowClass).invoke(baton, workflow);
            Object run = batonClass.getMethod("start", String.class, Map.class).invoke(baton, "cl", Map.of());
            Object result = run.getClass().getMethod("await", Duration.class).invoke(run, Duration.ofSeconds(60));
            Object step = result.getClass().getMethod("step", String.class).invoke(result, "a");
            return new Object[] {
                result.getClass().getMethod("status").invoke(result),
                step.getClass().getMethod("output", String.class).invoke(step, "name"),
                library,
            };
        }
    }
}
