package dev.baton.it;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * A second JVM running one of the {@code *Main} classes here on the built jar, always with
 * {@code -Xcheck:jni}: its output must show no JNI warning (nor any WARNING at all: the
 * children's logging shows errors only).
 */
final class ChildJvm implements AutoCloseable {

    static final Path JAR = Path.of(System.getProperty("baton.shadedJar"));

    private final Process process;
    private final StringBuffer output = new StringBuffer();
    private final BlockingQueue<String> lines = new LinkedBlockingQueue<>();
    private final Thread reader;

    private ChildJvm(Process process) {
        this.process = process;
        this.reader = new Thread(() -> {
            try (BufferedReader in = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
                for (String line; (line = in.readLine()) != null; ) {
                    output.append(line).append('\n');
                    lines.add(line);
                }
            } catch (IOException e) {
                output.append("(reading failed: ").append(e).append(")\n");
            }
        }, "child-output");
        reader.setDaemon(true);
        reader.start();
    }

    /** Starts {@code main} with {@code args} on the jar and the test classes. */
    static ChildJvm start(Class<?> main, String... args) throws IOException {
        return start(List.of(), List.of(), main, args);
    }

    /** Starts {@code main} with JVM options, and more on the class path. */
    static ChildJvm start(List<String> options, List<Path> classPath, Class<?> main, String... args) throws IOException {
        String testClasses = testClasses().toString();
        StringBuilder cp = new StringBuilder().append(JAR).append(File.pathSeparator).append(testClasses);
        classPath.forEach(p -> cp.append(File.pathSeparator).append(p));
        List<String> command = new ArrayList<>(List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xcheck:jni",
                "-Xmx256m",
                "-Djava.util.logging.config.file=" + Path.of(testClasses, "child-logging.properties")));
        command.addAll(options);
        command.addAll(List.of("-cp", cp.toString(), main.getName()));
        command.addAll(List.of(args));
        Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
        return new ChildJvm(process);
    }

    /** Where this class was loaded from: the test classes. */
    static Path testClasses() {
        try {
            return Path.of(ChildJvm.class.getProtectionDomain().getCodeSource().getLocation().toURI());
        } catch (java.net.URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Waits for a line starting with {@code prefix}; returns it. */
    String awaitLine(String prefix, long seconds) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        while (System.nanoTime() < deadline) {
            String line = lines.poll(100, TimeUnit.MILLISECONDS);
            if (line != null && line.startsWith(prefix)) {
                return line;
            }
            if (line == null && !process.isAlive() && lines.isEmpty()) {
                break;
            }
        }
        throw new AssertionError("no line `" + prefix + "...` from the child; its output:\n" + output());
    }

    /** Waits until the child's output so far satisfies {@code done}; returns that output. */
    String awaitOutput(java.util.function.Predicate<String> done, String what, long seconds) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        while (!done.test(output())) {
            if (System.nanoTime() > deadline || !process.isAlive()) {
                Thread.sleep(100); // the last lines of a child that exited
                if (done.test(output())) {
                    break;
                }
                throw new AssertionError("no " + what + " from the child in " + seconds + " s; its output:\n" + output());
            }
            Thread.sleep(50);
        }
        return output();
    }

    /** Ends the child's standard input (the children that read it close then). */
    void closeInput() throws IOException {
        process.getOutputStream().close();
    }

    /** The child's process id. */
    long pid() {
        return process.pid();
    }

    /** Waits for the child to exit; returns its exit code. */
    int awaitExit(long seconds) throws InterruptedException {
        assertTrue(process.waitFor(seconds, TimeUnit.SECONDS),
                () -> "the child did not exit in " + seconds + " s; its output:\n" + output());
        reader.join(5_000);
        return process.exitValue();
    }

    /** Kills the child with SIGKILL (kill -9), as a crash would. */
    void kill9() throws InterruptedException {
        process.destroyForcibly();
        process.waitFor(30, TimeUnit.SECONDS);
        reader.join(5_000);
    }

    String output() {
        return output.toString();
    }

    /** The child's output shows no JNI warning or error from -Xcheck:jni, and no other warning. */
    void assertNoWarnings() {
        String out = output();
        assertFalse(out.contains("WARNING"), () -> "warnings in the child's output:\n" + out);
        assertFalse(out.contains("FATAL ERROR"), () -> "JNI errors in the child's output:\n" + out);
        assertFalse(out.contains("Exception in thread"), () -> "uncaught exceptions in the child's output:\n" + out);
    }

    @Override
    public void close() {
        process.destroyForcibly();
    }
}
