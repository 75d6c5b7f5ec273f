package dev.baton.junit;

import java.lang.annotation.Documented;
import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Gives each test of the class (or the annotated test) its own {@link BatonTestEnv}: an
 * in-memory engine on a virtual clock, injected as a parameter and closed after the test.
 *
 * <pre>{@code
 * @BatonTest(start = "2026-11-24T02:00:00Z")
 * class NightlyEtlTest {
 *     @Test
 *     void loads(BatonTestEnv env) { ... }
 * }
 * }</pre>
 */
@Documented
@Retention(RetentionPolicy.RUNTIME)
@Target({ElementType.TYPE, ElementType.METHOD, ElementType.ANNOTATION_TYPE})
@ExtendWith(BatonExtension.class)
public @interface BatonTest {

    /** Where the virtual clock starts: an ISO-8601 instant. */
    String start() default BatonTestEnv.DEFAULT_START;
}
