package dev.baton.internal;

import com.fasterxml.jackson.databind.JsonNode;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

/**
 * Baton's logging: the engine's {@code tracing} events and the Java side's own messages, routed
 * to SLF4J when it is on the class path (found by reflection: no dependency) and has a provider,
 * else to {@code java.util.logging}. A logger is named after the event's target, with
 * {@code ::} read as {@code .} so that logging configurations can set a level for a whole
 * prefix ({@code baton_core}, {@code baton_core.engine}).
 *
 * <p>One daemon thread per class loader ({@code baton-log}) drains the engine's records while
 * at least one {@code Baton} is open ({@link #acquire()}, {@link #release()}), and ends after.
 * The engine's level follows the logging configuration: the level of the {@code baton_core}
 * logger (JUL or SLF4J), read at each open; the environment variable {@code BATON_LOG} (a
 * {@code tracing} filter such as {@code debug}) overrides it.
 *
 * <pre>{@code
 * Logs.log(Level.WARNING, "dev.baton", "cannot resume run " + id, null);
 * }</pre>
 */
public final class Logs {

    private static final Sink SINK = Sink.find();
    private static final Object LOCK = new Object();
    private static int users;
    private static Thread forwarder;

    private Logs() {}

    /** Logs {@code message} (and {@code error}, if not null) at {@code level} to the logger {@code target}. */
    public static void log(Level level, String target, String message, Throwable error) {
        try {
            SINK.log(level, loggerName(target), message, error);
        } catch (Throwable ignored) {
            // Logging must never break the engine.
        }
    }

    /** The name of the logger of a {@code tracing} target: {@code a::b} is {@code a.b}. */
    static String loggerName(String target) {
        return target == null || target.isEmpty() ? "baton" : target.replace("::", ".");
    }

    /** Which backend logs go to: {@code slf4j} or {@code jul}. */
    public static String backend() {
        return SINK.name();
    }

    /**
     * Sets the engine's level to the one the logging configuration gives the
     * {@code baton_core} logger; called before each open, so that a configuration changed
     * since holds.
     */
    public static void followConfiguration() {
        try {
            NativeBridge.logLevel(SINK.level("baton_core"));
        } catch (Throwable ignored) {
            // Logging must never break the engine; it keeps its level.
        }
    }

    /** A Baton opened: forward the engine's logs (starts the thread if needed). */
    public static void acquire() {
        synchronized (LOCK) {
            users++;
            if (forwarder == null || !forwarder.isAlive()) {
                Thread t = new Thread(Logs::forward, "baton-log");
                t.setDaemon(true);
                forwarder = t;
                t.start();
            }
        }
    }

    /** A Baton closed: once none is open the thread drains what is left and ends. */
    public static void release() {
        synchronized (LOCK) {
            users = Math.max(0, users - 1);
            LOCK.notifyAll();
        }
    }

    private static boolean inUse() {
        synchronized (LOCK) {
            return users > 0;
        }
    }

    private static void forward() {
        try {
            while (true) {
                boolean last = !inUse();
                String batch = NativeBridge.nextLogs(512, last ? 0 : 500);
                if (batch != null && batch.length() > 2) {
                    for (JsonNode record : JsonCodec.parse(batch)) {
                        emit(record);
                    }
                }
                if (last) {
                    synchronized (LOCK) {
                        if (users == 0) {
                            forwarder = null;
                            return;
                        }
                    }
                }
            }
        } catch (Throwable t) {
            synchronized (LOCK) {
                forwarder = null;
            }
            log(Level.WARNING, "dev.baton.log", "stopped forwarding the engine's logs", t);
        }
    }

    static void emit(JsonNode record) {
        StringBuilder message = new StringBuilder(record.path("message").asText(""));
        JsonNode fields = record.path("fields");
        if (fields.isObject() && fields.size() > 0) {
            message.append(message.length() == 0 ? "" : " ").append('{');
            boolean first = true;
            for (Map.Entry<String, JsonNode> f : fields.properties()) {
                message.append(first ? "" : ", ").append(f.getKey()).append('=')
                        .append(f.getValue().isTextual() ? f.getValue().asText() : f.getValue().toString());
                first = false;
            }
            message.append('}');
        }
        log(level(record.path("level").asText("INFO")), record.path("target").asText("baton"), message.toString(), null);
    }

    static Level level(String tracingLevel) {
        switch (tracingLevel.toUpperCase(Locale.ROOT)) {
            case "ERROR":
                return Level.SEVERE;
            case "WARN":
                return Level.WARNING;
            case "DEBUG":
                return Level.FINE;
            case "TRACE":
                return Level.FINER;
            default:
                return Level.INFO;
        }
    }

    /** Where records go. */
    private interface Sink {
        String name();

        void log(Level level, String logger, String message, Throwable error) throws Throwable;

        /** The most verbose of error, warn, info, debug, trace that {@code logger} takes; or off. */
        String level(String logger) throws Throwable;

        static Sink find() {
            try {
                return Slf4j.create();
            } catch (Throwable notThere) {
                return new Jul();
            }
        }
    }

    private static final class Jul implements Sink {
        @Override
        public String name() {
            return "jul";
        }

        @Override
        public String level(String logger) {
            Logger l = Logger.getLogger(logger);
            String[] names = {"trace", "debug", "info", "warn", "error"};
            Level[] levels = {Level.FINER, Level.FINE, Level.INFO, Level.WARNING, Level.SEVERE};
            for (int i = 0; i < levels.length; i++) {
                if (l.isLoggable(levels[i])) {
                    return names[i];
                }
            }
            return "off";
        }

        @Override
        public void log(Level level, String logger, String message, Throwable error) {
            Logger l = Logger.getLogger(logger);
            if (l.isLoggable(level)) {
                LogRecord record = new LogRecord(level, message);
                record.setLoggerName(logger);
                // The source is the target, not this class: formatters then show the logger name.
                record.setSourceClassName(null);
                record.setSourceMethodName(null);
                record.setThrown(error);
                l.log(record);
            }
        }
    }

    /** SLF4J through method handles: {@code LoggerFactory.getLogger(name).info(message)}. */
    private static final class Slf4j implements Sink {
        private final MethodHandle getLogger;
        /** By level: isEnabled, log(String), log(String, Throwable). */
        private final MethodHandle[][] methods = new MethodHandle[5][];
        private final Map<String, Object> loggers = new ConcurrentHashMap<>();

        private Slf4j(ClassLoader loader) throws Throwable {
            Class<?> factory = Class.forName("org.slf4j.LoggerFactory", true, loader);
            Class<?> logger = Class.forName("org.slf4j.Logger", true, loader);
            MethodHandles.Lookup lookup = MethodHandles.publicLookup();
            getLogger = lookup.findStatic(factory, "getLogger", MethodType.methodType(logger, String.class));
            String[] names = {"error", "warn", "info", "debug", "trace"};
            for (int i = 0; i < names.length; i++) {
                String n = names[i];
                String enabled = "is" + Character.toUpperCase(n.charAt(0)) + n.substring(1) + "Enabled";
                methods[i] = new MethodHandle[] {
                    lookup.findVirtual(logger, enabled, MethodType.methodType(boolean.class)),
                    lookup.findVirtual(logger, n, MethodType.methodType(void.class, String.class)),
                    lookup.findVirtual(logger, n, MethodType.methodType(void.class, String.class, Throwable.class)),
                };
            }
            // slf4j-api without a provider logs nowhere: then java.util.logging is the better choice.
            Object loggerFactory = lookup.findStatic(factory, "getILoggerFactory",
                    MethodType.methodType(Class.forName("org.slf4j.ILoggerFactory", true, loader))).invoke();
            if (loggerFactory == null || loggerFactory.getClass().getName().contains("NOP")) {
                throw new ClassNotFoundException("SLF4J has no provider");
            }
        }

        static Slf4j create() throws Throwable {
            ClassLoader own = Logs.class.getClassLoader();
            try {
                return new Slf4j(own);
            } catch (ClassNotFoundException | NoClassDefFoundError e) {
                ClassLoader context = Thread.currentThread().getContextClassLoader();
                if (context == null || context == own) {
                    throw e;
                }
                return new Slf4j(context);
            }
        }

        @Override
        public String name() {
            return "slf4j";
        }

        @Override
        public String level(String name) throws Throwable {
            Object logger = getLogger.invoke(name);
            String[] names = {"error", "warn", "info", "debug", "trace"};
            for (int i = names.length - 1; i >= 0; i--) {
                if ((boolean) methods[i][0].invoke(logger)) {
                    return names[i];
                }
            }
            return "off";
        }

        @Override
        public void log(Level level, String name, String message, Throwable error) throws Throwable {
            int i = level.intValue() >= Level.SEVERE.intValue() ? 0
                    : level.intValue() >= Level.WARNING.intValue() ? 1
                    : level.intValue() >= Level.INFO.intValue() ? 2
                    : level.intValue() >= Level.FINE.intValue() ? 3 : 4;
            Object logger = loggers.computeIfAbsent(name, n -> {
                try {
                    return getLogger.invoke(n);
                } catch (Throwable t) {
                    throw new IllegalStateException(t);
                }
            });
            MethodHandle[] m = methods[i];
            if ((boolean) m[0].invoke(logger)) {
                if (error == null) {
                    m[1].invoke(logger, message);
                } else {
                    m[2].invoke(logger, message, error);
                }
            }
        }
    }
}
