/**
 * Baton for Java: define workflows with a fluent DSL and hand them to Baton's native engine.
 *
 * <pre>{@code
 * Workflow etl = Workflow.named("nightly-etl")
 *     .param("date", "2026-11-24")
 *     .step("extract", s -> s.java(ctx -> ctx.output("rows", 42L))
 *         .retry(Retry.exponential(3, Duration.ofSeconds(1))))
 *     .step("load", s -> s.dependsOn("extract").shell("echo load ${date}"))
 *     .build();
 * String json = etl.toJson(); // the engine's model, the same as a YAML or JSON file
 * }</pre>
 *
 * <p>Everything here is the public API; {@code dev.baton.internal} is not.
 */
package dev.baton;
