package dev.baton;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** {@link Baton#open(String)}: a directory or a PostgreSQL URL. */
@Timeout(60)
class StoreLocationTest {

    @TempDir
    Path dir;

    @Test
    void aDirectoryGivenAsTextIsAStoreDirectory() {
        try (Baton baton = Baton.open(dir.resolve("store").toString())) {
            baton.register(Workflow.named("w").step("a", s -> s.noop()).build());
            assertEquals(RunStatus.SUCCEEDED, baton.start("w").await(Duration.ofSeconds(30)).status());
        }
        try (Baton again = Baton.open(dir.resolve("store"))) {
            assertEquals(1, again.runs().size(), "the same store as the Path form");
        }
    }

    @Test
    void aDatabaseThatCannotBeReachedIsAStoreErrorNamingItWithoutItsPassword() {
        for (String url : new String[] {
                "postgresql://baton:s3cret@127.0.0.1:1/nope", "jdbc:postgresql://127.0.0.1:1/nope?user=baton&password=s3cret"}) {
            StoreException e = assertThrows(StoreException.class, () -> Baton.open(url));
            assertTrue(e.getMessage().contains("127.0.0.1:1"), e.getMessage());
            assertFalse(e.getMessage().contains("s3cret"), e.getMessage());
        }
    }
}
