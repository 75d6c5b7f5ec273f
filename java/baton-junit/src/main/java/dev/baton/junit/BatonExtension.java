package dev.baton.junit;

import java.lang.reflect.AnnotatedElement;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.Optional;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.ExtensionConfigurationException;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.ParameterContext;
import org.junit.jupiter.api.extension.ParameterResolver;
import org.junit.platform.commons.support.AnnotationSupport;

/**
 * The JUnit 5 extension behind {@link BatonTest}: resolves {@link BatonTestEnv} parameters (of
 * the test and of its {@code @BeforeEach} and {@code @AfterEach} methods, which share one env)
 * and closes the env after the test.
 *
 * <pre>{@code
 * @ExtendWith(BatonExtension.class)   // what @BatonTest does
 * class MyTest { ... }
 * }</pre>
 */
public final class BatonExtension implements ParameterResolver, AfterEachCallback {

    private static final ExtensionContext.Namespace NAMESPACE = ExtensionContext.Namespace.create(BatonExtension.class);
    private static final String ENV = "env";

    @Override
    public boolean supportsParameter(ParameterContext parameter, ExtensionContext context) {
        return parameter.getParameter().getType() == BatonTestEnv.class;
    }

    @Override
    public Object resolveParameter(ParameterContext parameter, ExtensionContext context) {
        if (context.getTestMethod().isEmpty()) {
            throw new ExtensionConfigurationException("a BatonTestEnv belongs to one test: take it as a parameter of the"
                    + " test method (or of @BeforeEach/@AfterEach), not of " + parameter.getDeclaringExecutable());
        }
        return context.getStore(NAMESPACE).getOrComputeIfAbsent(ENV, k -> BatonTestEnv.open(start(context)), BatonTestEnv.class);
    }

    @Override
    public void afterEach(ExtensionContext context) {
        BatonTestEnv env = context.getStore(NAMESPACE).remove(ENV, BatonTestEnv.class);
        if (env != null) {
            env.close();
        }
    }

    /** The clock's start from the nearest {@link BatonTest}: the method's, else its class's. */
    private static Instant start(ExtensionContext context) {
        Optional<BatonTest> annotation = find(context.getTestMethod());
        for (Optional<Class<?>> c = context.getTestClass(); annotation.isEmpty() && c.isPresent();
                c = Optional.ofNullable(c.get().getEnclosingClass())) {
            annotation = find(c);
        }
        String start = annotation.map(BatonTest::start).orElse(BatonTestEnv.DEFAULT_START);
        try {
            return Instant.parse(start);
        } catch (DateTimeParseException e) {
            throw new ExtensionConfigurationException("@BatonTest(start = \"" + start
                    + "\"): not an ISO-8601 instant such as \"2026-11-24T02:00:00Z\"", e);
        }
    }

    private static Optional<BatonTest> find(Optional<? extends AnnotatedElement> element) {
        return AnnotationSupport.findAnnotation(element, BatonTest.class);
    }
}
