package dev.baton.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** The engine under {@code -Xcheck:jni}: every entry point and error path, no JNI warning. */
class JniCheckIT {

    @Test
    void everyEntryPointPassesCheckJni() throws Exception {
        try (ChildJvm child = ChildJvm.start(JniCheckMain.class)) {
            int exit = child.awaitExit(120);
            assertEquals(0, exit, child::output);
            assertTrue(child.output().contains("OK"), child::output);
            child.assertNoWarnings();
        }
    }
}
