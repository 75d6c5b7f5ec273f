package dev.baton;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.baton.internal.Logs;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The engine's tracing events reach java.util.logging (no SLF4J on the tests' class path). */
@Timeout(60)
class LogsTest {

    @Test
    void engineEventsReachJavaUtilLoggingUnderTheirTarget() throws Exception {
        try (Captured captured = new Captured("baton_core", Level.ALL); Baton baton = Baton.inMemory()) {
            List<LogRecord> records = captured.records;
            baton.register(Workflow.named("logged")
                    .step("fails", s -> s.java(ctx -> {
                        throw new IllegalStateException("logged failure");
                    }))
                    .build());
            String runId = baton.start("logged").await(Duration.ofSeconds(30)).id();

            long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
            while (System.nanoTime() < deadline && records.stream().noneMatch(r -> r.getLevel() == Level.WARNING)) {
                Thread.sleep(20);
            }
            assertEquals("jul", Logs.backend());
            LogRecord created = records.stream().filter(r -> r.getMessage().startsWith("run created")).findFirst()
                    .orElseThrow(() -> new AssertionError("no `run created` among " + messages(records)));
            assertEquals(Level.INFO, created.getLevel());
            assertTrue(created.getLoggerName().startsWith("baton_core."), created.getLoggerName());
            assertTrue(created.getMessage().contains("run=" + runId), created.getMessage());
            assertTrue(records.stream().anyMatch(r -> r.getLevel() == Level.WARNING
                    && r.getMessage().contains("logged failure")), () -> messages(records));
        }
    }

    @Test
    void theEngineLogsAtTheLevelTheLoggingConfigurationGivesBatonCore(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir)
            throws Exception {
        try (Captured captured = new Captured("baton_core", Level.INFO)) {
            List<LogRecord> records = captured.records;
            // At INFO (the default), the engine's debug records are not even made.
            try (Baton baton = Baton.open(dir.resolve("quiet"))) {
                baton.runs();
            }
            assertTrue(records.stream().noneMatch(r -> r.getMessage().startsWith("store opened")), () -> messages(records));
            // Set to FINE in the logging configuration, debug records come, with no variable.
            captured.logger.setLevel(Level.FINE);
            try (Baton baton = Baton.open(dir.resolve("verbose"))) {
                long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
                while (System.nanoTime() < deadline && records.stream().noneMatch(r -> r.getMessage().startsWith("store opened"))) {
                    Thread.sleep(20);
                }
            }
            LogRecord opened = records.stream().filter(r -> r.getMessage().startsWith("store opened")).findFirst()
                    .orElseThrow(() -> new AssertionError("no debug record among " + messages(records)));
            assertEquals(Level.FINE, opened.getLevel());
        } finally {
            Logs.followConfiguration();
        }
    }

    @Test
    void aListenerThatThrowsIsLoggedOnceWithItsTraceThenCounted() {
        try (Captured captured = new Captured("dev.baton.Baton", null)) {
            List<LogRecord> records = captured.records;
            java.util.concurrent.atomic.AtomicInteger calls = new java.util.concurrent.atomic.AtomicInteger();
            try (Baton baton = Baton.inMemory()) {
                baton.onEvent(e -> {
                    calls.incrementAndGet();
                    throw new IllegalStateException("listener bug");
                });
                baton.register(Workflow.named("many").step("a", s -> s.noop()).step("b", s -> s.noop()).build());
                for (int i = 0; i < 5; i++) {
                    baton.start("many").await(Duration.ofSeconds(30));
                }
                // Events reach the listener on its own thread: let it see some before closing.
                long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
                while (calls.get() < 3 && System.nanoTime() < deadline) {
                    Thread.onSpinWait();
                }
            }
            List<LogRecord> thrown = records.stream().filter(r -> r.getMessage().startsWith("an event listener threw")).toList();
            assertEquals(2, thrown.size(), () -> messages(records));
            assertEquals("listener bug", thrown.get(0).getThrown().getMessage());
            assertTrue(thrown.get(1).getMessage().matches("an event listener threw \\d+ times in all"), thrown.get(1).getMessage());
        }
    }

    /**
     * The records of one logger, kept off the console, at {@code level} ({@code null}: as
     * configured) while open; the logger is as it was once closed.
     */
    private static final class Captured extends Handler implements AutoCloseable {
        final List<LogRecord> records = new CopyOnWriteArrayList<>();
        /** Held: JUL keeps loggers weakly. */
        final Logger logger;
        private final Level before;

        Captured(String name, Level level) {
            logger = Logger.getLogger(name);
            before = logger.getLevel();
            if (level != null) {
                logger.setLevel(level);
            }
            logger.setUseParentHandlers(false);
            logger.addHandler(this);
        }

        @Override
        public void publish(LogRecord record) {
            records.add(record);
        }

        @Override
        public void flush() {}

        @Override
        public void close() {
            logger.removeHandler(this);
            logger.setUseParentHandlers(true);
            logger.setLevel(before);
        }
    }

    private static String messages(List<LogRecord> records) {
        return records.stream().map(r -> r.getLevel() + " " + r.getLoggerName() + ": " + r.getMessage()).toList().toString();
    }
}
