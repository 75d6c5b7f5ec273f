/**
 * Testing Baton workflows with JUnit 5: each test gets an in-memory engine on a virtual clock
 * ({@link dev.baton.junit.BatonTestEnv}), steps can be replaced by mocks whose calls are
 * recorded, and {@link dev.baton.junit.BatonAssertions} checks a run, printing its step table
 * when a check fails.
 *
 * <pre>{@code
 * @BatonTest
 * class NightlyEtlTest {
 *     @Test
 *     void skipsLoadWhenNoRows(BatonTestEnv env) {
 *         env.register(Pipelines.nightlyEtl());
 *         env.mockStep("nightly-etl", "extract", ctx -> ctx.output("rows", 0));
 *         Run run = env.start("nightly-etl", Map.of("date", "2026-11-24"));
 *         env.clock().advance(Duration.ofHours(3));
 *         BatonAssertions.assertThat(run.await())
 *             .succeeded()
 *             .stepSkipped("load")
 *             .stepOutput("extract", "rows", 0);
 *     }
 * }
 * }</pre>
 */
package dev.baton.junit;
