package dev.baton;

/**
 * The code of a Java step. It reads its parameters and upstream outputs from the
 * {@link StepContext} and writes its own outputs there; throwing fails the attempt (which the
 * step's {@link Retry} may retry).
 *
 * <pre>{@code
 * JavaStep count = ctx -> {
 *     long rows = db.count(ctx.param("table"));
 *     ctx.output("rows", rows);
 * };
 * Workflow.named("etl").step("count", s -> s.java(count)).build();
 * }</pre>
 *
 * <p>A run resumed after a crash may run an attempt again: use {@link StepContext#idempotencyKey()}
 * to make side effects happen once.
 */
@FunctionalInterface
public interface JavaStep {

    /** Runs one attempt. */
    void run(StepContext ctx) throws Exception;
}
