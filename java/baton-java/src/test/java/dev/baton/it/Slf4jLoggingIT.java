package dev.baton.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/** With SLF4J (and a provider) on the class path, the engine's events go to SLF4J loggers named after their target. */
class Slf4jLoggingIT {

    @Test
    void engineEventsGoToSlf4jWhenItIsThere() throws Exception {
        List<Path> slf4j = List.of(jarOf("org.slf4j.LoggerFactory"), jarOf("org.slf4j.simple.SimpleLogger"));
        try (ChildJvm child = ChildJvm.start(
                List.of("-Dorg.slf4j.simpleLogger.defaultLogLevel=info", "-Dorg.slf4j.simpleLogger.showThreadName=false"),
                slf4j, Slf4jMain.class)) {
            assertEquals(0, child.awaitExit(60), child::output);
            String out = child.output();
            assertTrue(out.contains("BACKEND slf4j"), out);
            // The target is the module that creates runs (it moved with run strategies): not the point here.
            assertTrue(out.matches("(?s).*INFO baton_core\\.[a-z_.]+ - run created \\{run=.*"), out);
            // The driver's modules log under baton_core.engine.run (attempts under .run.attempts).
            assertTrue(out.matches("(?s).*WARN baton_core\\.engine\\.run[a-z_.]* - step failed \\{.*")
                    && out.contains("error=java.lang.IllegalStateException: through slf4j"), out);
            assertTrue(out.contains("OK"), out);
        }
    }

    private static Path jarOf(String className) throws Exception {
        return Path.of(Class.forName(className).getProtectionDomain().getCodeSource().getLocation().toURI());
    }
}
