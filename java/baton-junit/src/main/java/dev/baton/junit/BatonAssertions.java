package dev.baton.junit;

import dev.baton.RunResult;
import java.util.Objects;

/**
 * Entry point of the fluent checks on a run. A failed check throws an
 * {@link org.opentest4j.AssertionFailedError} that says what was expected and ends with the
 * run's step table, as {@code baton show} prints it.
 *
 * <pre>{@code
 * import static dev.baton.junit.BatonAssertions.assertThat;
 *
 * assertThat(run.await())
 *     .succeeded()
 *     .stepSkipped("load")
 *     .stepOutput("extract", "rows", 0)
 *     .stepAttempts("extract", 1);
 * }</pre>
 */
public final class BatonAssertions {

    private BatonAssertions() {}

    /** Checks on {@code run}, a {@link RunResult} from {@code run.await()} or {@code env.finish(run)}. */
    public static RunAssert assertThat(RunResult run) {
        return new RunAssert(Objects.requireNonNull(run, "run"));
    }
}
