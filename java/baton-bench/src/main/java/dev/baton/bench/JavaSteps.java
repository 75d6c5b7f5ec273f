package dev.baton.bench;

import dev.baton.Baton;
import dev.baton.RunResult;
import dev.baton.RunStatus;
import dev.baton.Workflow;
import dev.baton.internal.NativeBridge;
import dev.baton.internal.NativeLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Java steps through the JNI bridge.
 *
 * <pre>
 * mvn -B -q -f java/pom.xml -Pbench package -DskipTests
 * java -jar java/baton-bench/target/benchmarks.jar -rf json -rff jmh.json
 * python3 java/baton-bench/medians.py jmh.json     # medians, and the round trip per step
 * </pre>
 *
 * <p>The round trip of a Java step through JNI is what a Java step costs more than a step
 * that stays in the engine: {@link #tenThousandJavaSteps} against {@link #tenThousandNativeSteps}
 * (same engine, same records, same result), per step.
 */
public class JavaSteps {

    /** One JNI crossing with a string argument: {@code complete} of a token no one waits for. */
    @State(Scope.Benchmark)
    public static class Bridge {
        long handle;

        @Setup
        public void open() {
            NativeLoader.load();
            String answer = NativeBridge.open(null, null);
            handle = Long.parseLong(answer.replaceAll("[^0-9]", ""));
        }

        @TearDown
        public void close() {
            NativeBridge.close(handle);
        }
    }

    @Benchmark
    @BenchmarkMode(Mode.SampleTime)
    @OutputTimeUnit(TimeUnit.MICROSECONDS)
    @Warmup(iterations = 3, time = 2)
    @Measurement(iterations = 5, time = 2)
    @Fork(1)
    public void jniCrossing(Bridge bridge) {
        NativeBridge.complete(bridge.handle, -1L, "{}");
    }

    /** An engine with two workflows of Java no-op steps. */
    @State(Scope.Benchmark)
    public static class Engine {
        @Param({"memory", "redb"})
        public String store;

        Baton baton;
        Path dir;

        @Setup(Level.Trial)
        public void open() throws Exception {
            if (store.equals("memory")) {
                baton = Baton.inMemory();
            } else {
                dir = Files.createTempDirectory("baton-bench");
                baton = Baton.open(dir);
            }
            baton.register(Workflow.named("one").step("noop", s -> s.java(ctx -> {})).build());
            baton.register(Workflow.named("one-native").step("nap", s -> s.sleep(Duration.ZERO)).build());
            Workflow.Builder wide = Workflow.named("wide").maxParallel(256);
            for (int i = 0; i < 10_000; i++) {
                wide.step("s" + i, s -> s.java(ctx -> {}));
            }
            baton.register(wide.build());
            Workflow.Builder inEngine = Workflow.named("wide-native").maxParallel(256);
            for (int i = 0; i < 10_000; i++) {
                inEngine.step("s" + i, s -> s.sleep(Duration.ZERO));
            }
            baton.register(inEngine.build());
            // What a user writes: no maxParallel, the default options.
            Workflow.Builder fanOut = Workflow.named("fan-out");
            for (int i = 0; i < 2_000; i++) {
                fanOut.step("s" + i, s -> s.java(ctx -> {}));
            }
            baton.register(fanOut.build());
        }

        @TearDown(Level.Trial)
        public void close() {
            baton.close();
        }
    }

    /** The latency of a run of one Java step: start, dispatch to Java, completion, run end. */
    @Benchmark
    @BenchmarkMode(Mode.SampleTime)
    @OutputTimeUnit(TimeUnit.MICROSECONDS)
    @Warmup(iterations = 3, time = 2)
    @Measurement(iterations = 5, time = 3)
    @Fork(1)
    public RunResult oneJavaStepRun(Engine engine) {
        return check(engine.baton.start("one").await());
    }

    /** The same, with a step that stays in the engine ({@code sleep} of 0 s): the latency without the trip to Java. */
    @Benchmark
    @BenchmarkMode(Mode.SampleTime)
    @OutputTimeUnit(TimeUnit.MICROSECONDS)
    @Warmup(iterations = 3, time = 2)
    @Measurement(iterations = 5, time = 3)
    @Fork(1)
    public RunResult oneNativeStepRun(Engine engine) {
        return check(engine.baton.start("one-native").await());
    }

    /** 2,000 Java no-op steps in one run at the default settings; divide by 2,000 for the cost per step. */
    @Benchmark
    @BenchmarkMode(Mode.SingleShotTime)
    @OutputTimeUnit(TimeUnit.MILLISECONDS)
    @Warmup(iterations = 5)
    @Measurement(iterations = 15)
    @Fork(1)
    public RunResult twoThousandJavaStepsAtDefaults(Engine engine) {
        return check(engine.baton.start("fan-out").await());
    }

    /** 10,000 Java no-op steps in one run, 256 at a time; divide by 10,000 for the cost per step. */
    @Benchmark
    @BenchmarkMode(Mode.SingleShotTime)
    @OutputTimeUnit(TimeUnit.MILLISECONDS)
    @Warmup(iterations = 3)
    @Measurement(iterations = 10)
    @Fork(1)
    public RunResult tenThousandJavaSteps(Engine engine) {
        return check(engine.baton.start("wide").await());
    }

    /**
     * The same run with steps that stay in the engine ({@code sleep} of 0 s: the same launch
     * path, records and result, but no trip to Java); the difference from
     * {@link #tenThousandJavaSteps} is what the JNI round trip costs per step.
     */
    @Benchmark
    @BenchmarkMode(Mode.SingleShotTime)
    @OutputTimeUnit(TimeUnit.MILLISECONDS)
    @Warmup(iterations = 3)
    @Measurement(iterations = 10)
    @Fork(1)
    public RunResult tenThousandNativeSteps(Engine engine) {
        return check(engine.baton.start("wide-native").await());
    }

    private static RunResult check(RunResult result) {
        if (result.status() != RunStatus.SUCCEEDED) {
            throw new IllegalStateException("run failed: " + result);
        }
        return result;
    }
}
