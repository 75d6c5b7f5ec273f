package dev.baton.it;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The unit tests ran under {@code -Xcheck:jni} (Surefire's argLine): whatever the JVM reported
 * went to the fork's native stdout, which Surefire keeps in {@code *.dumpstream} files. None of
 * it may be a JNI warning or error.
 */
class CheckJniReportIT {

    private static final List<String> JNI_PROBLEMS = List.of(
            "WARNING in native method", "FATAL ERROR in native method", "JNI local refs", "-Xcheck:jni");

    @Test
    void theUnitTestsRanUnderCheckJniWithoutWarnings() throws IOException {
        Path reports = Path.of(System.getProperty("baton.surefireReports"));
        if (!Files.isDirectory(reports)) {
            return; // -DskipTests: nothing ran
        }
        List<Path> files;
        try (Stream<Path> list = Files.list(reports)) {
            files = list.toList();
        }
        // This build's reports: those written since its first test report (older ones are stale).
        FileTime since = files.stream()
                .filter(f -> f.getFileName().toString().startsWith("TEST-"))
                .map(CheckJniReportIT::modified)
                .min(FileTime::compareTo)
                .orElse(FileTime.fromMillis(0));
        List<String> problems = new ArrayList<>();
        for (Path f : files) {
            if (f.getFileName().toString().endsWith(".dumpstream") && modified(f).compareTo(since) >= 0) {
                for (String line : Files.readAllLines(f)) {
                    if (JNI_PROBLEMS.stream().anyMatch(line::contains)) {
                        problems.add(f.getFileName() + ": " + line);
                    }
                }
            }
        }
        assertEquals(List.of(), problems, "JNI problems reported by -Xcheck:jni in the unit tests");
    }

    private static FileTime modified(Path f) {
        try {
            return Files.getLastModifiedTime(f);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }
}
