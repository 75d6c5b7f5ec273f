/**
 * Baton for Java: define workflows with a fluent DSL and run them with Baton's engine, in this
 * process.
 *
 * <pre>{@code
 * try (Baton baton = Baton.open(Path.of("/var/lib/myservice/baton"))) { // Baton.inMemory() for tests
 *     baton.register(Workflow.named("nightly-etl")
 *         .param("date", "2026-11-24")
 *         .step("extract", s -> s.java(ctx -> ctx.output("rows", 42L))
 *             .retry(Retry.exponential(3, Duration.ofSeconds(1))))
 *         .step("load", s -> s.dependsOn("extract").shell("echo load ${date}"))
 *         .build());
 *     RunResult result = baton.start("nightly-etl", Map.of("date", "2026-11-25"))
 *         .await(Duration.ofMinutes(10));
 *     result.step("extract").output("rows"); // 42L
 * }
 * }</pre>
 *
 * <p>Everything here is the public API; {@code dev.baton.internal} is not.
 */
package dev.baton;
