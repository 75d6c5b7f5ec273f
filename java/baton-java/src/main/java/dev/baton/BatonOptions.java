package dev.baton;

import dev.baton.internal.Durations;
import java.time.Instant;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.Executor;

/**
 * How a {@link Baton} runs: the executor its Java steps run on and its store's engine.
 * Immutable; made by {@link #builder()}.
 *
 * <pre>{@code
 * ExecutorService pool = Executors.newFixedThreadPool(16);
 * try (Baton baton = Baton.open(dir, BatonOptions.builder().executor(pool).storeEngine("redb").build())) {
 *     ...
 * }
 * }</pre>
 */
public final class BatonOptions {

    private static final BatonOptions DEFAULTS = builder().build();

    private final Executor executor;
    private final int stepThreads;
    private final String storeEngine;
    private final String retention;
    private final String engineId;
    private final String lease;
    private final Integer maxRuns;
    private final Instant virtualClock;
    private final boolean controlEndpoint;
    private final boolean scheduler;

    private BatonOptions(Builder b) {
        this.controlEndpoint = b.controlEndpoint;
        this.scheduler = b.scheduler;
        this.executor = b.executor;
        this.stepThreads = b.stepThreads;
        this.storeEngine = b.storeEngine;
        this.retention = b.retention;
        this.engineId = b.engineId;
        this.lease = b.lease;
        this.maxRuns = b.maxRuns;
        this.virtualClock = b.virtualClock;
    }

    /** Every option at its default. */
    public static BatonOptions defaults() {
        return DEFAULTS;
    }

    public static Builder builder() {
        return new Builder();
    }

    /**
     * The executor Java steps and host step types run on; empty for Baton's own: a pool of
     * {@link #stepThreads()} daemon threads with an unbounded queue, shut down by
     * {@link Baton#close()}. An executor given here is the caller's to shut down.
     */
    public Optional<Executor> executor() {
        return Optional.ofNullable(executor);
    }

    /**
     * The threads of Baton's own pool when no executor is given, unless {@link Builder#stepThreads}
     * says: Java steps mostly wait (on a database, Spark, a service), so the pool is sized for
     * waiting, not for the cores. Threads start as steps come and end after 30 s idle.
     */
    public static final int DEFAULT_STEP_THREADS = 64;

    /** The size of Baton's own pool (when no executor is given): by default {@link #DEFAULT_STEP_THREADS}. */
    public int stepThreads() {
        return stepThreads;
    }

    /** {@code redb} or {@code sled}; empty for the engine's default. */
    public Optional<String> storeEngine() {
        return Optional.ofNullable(storeEngine);
    }

    /** How long history is kept (see {@link Builder#retention(String)}); empty for the defaults. */
    public Optional<String> retention() {
        return Optional.ofNullable(retention);
    }

    /**
     * This engine's id among the engines sharing its store (see {@link Builder#engineId});
     * empty for the default, the machine's name and the process id.
     */
    public Optional<String> engineId() {
        return Optional.ofNullable(engineId);
    }

    /**
     * How long this engine's runs stay its own after its last heartbeat, as text ({@code
     * "15s"}; see {@link Builder#lease(String)}); empty for the default, 15 seconds.
     */
    public Optional<String> lease() {
        return Optional.ofNullable(lease);
    }

    /**
     * The most runs this engine drives at once on a shared database (see {@link
     * Builder#maxRuns}); empty for no limit.
     */
    public Optional<Integer> maxRuns() {
        return Optional.ofNullable(maxRuns);
    }

    /**
     * Where the engine's virtual clock starts; empty for the system clock. See
     * {@link Builder#virtualClock(Instant)}.
     */
    public Optional<Instant> virtualClock() {
        return Optional.ofNullable(virtualClock);
    }

    /**
     * Whether a store on disk answers {@code baton} commands from other processes ({@code baton
     * runs}, {@code show}, {@code stop}...) through a socket in the store directory; default true.
     */
    public boolean controlEndpoint() {
        return controlEndpoint;
    }

    /** Whether the engine fires the cron and signal triggers of registered workflows; default true. */
    public boolean scheduler() {
        return scheduler;
    }

    @Override
    public String toString() {
        return "BatonOptions[executor=" + (executor == null ? stepThreads + " threads" : executor)
                + ", storeEngine=" + (storeEngine == null ? "default" : storeEngine)
                + (engineId == null ? "" : ", engineId=" + engineId) + (lease == null ? "" : ", lease=" + lease) + "]";
    }

    /** Builds {@link BatonOptions}. */
    public static final class Builder {
        private Executor executor;
        private int stepThreads = DEFAULT_STEP_THREADS;
        private String storeEngine;
        private String retention;
        private String engineId;
        private String lease;
        private Integer maxRuns;
        private Instant virtualClock;
        private boolean controlEndpoint = true;
        private boolean scheduler = true;

        private Builder() {}

        /**
         * Whether to open the control socket ({@code control.sock} in the store directory,
         * owner-only) through which {@code baton} commands of other processes reach this engine.
         */
        public Builder controlEndpoint(boolean on) {
            this.controlEndpoint = on;
            return this;
        }

        /** Whether to fire the cron and signal triggers of registered workflows. */
        public Builder scheduler(boolean on) {
            this.scheduler = on;
            return this;
        }

        /** Runs Java steps on {@code executor} (which Baton never shuts down). */
        public Builder executor(Executor executor) {
            this.executor = Objects.requireNonNull(executor, "executor");
            return this;
        }

        /** The number of threads of Baton's own pool, used when no {@link #executor} is given. */
        public Builder stepThreads(int threads) {
            if (threads < 1) {
                throw new IllegalArgumentException("stepThreads must be at least 1, not " + threads);
            }
            this.stepThreads = threads;
            return this;
        }

        /** The store's engine: {@code redb} or {@code sled}. Ignored in memory. */
        public Builder storeEngine(String storeEngine) {
            this.storeEngine = Objects.requireNonNull(storeEngine, "storeEngine");
            return this;
        }

        /**
         * How long finished runs (with their steps and events), signals and firings are kept
         * before the engine prunes them in the background, as {@code baton serve --retain} takes
         * it: {@code "90d"} for all of them, or per kind, {@code "runs=90d,signals=7d,
         * firings=forever,every=1h"} ({@code every}: how often pruning runs). Defaults: runs 30d,
         * signals 7d, firings 30d, every 1h. An invalid text fails {@link Baton#open} with an
         * {@link InvalidRequestException} naming the problem.
         */
        public Builder retention(String retention) {
            this.retention = Objects.requireNonNull(retention, "retention");
            return this;
        }

        /** {@link #retention(String)} of {@code keep} for runs, signals and firings alike. */
        public Builder retention(java.time.Duration keep) {
            Objects.requireNonNull(keep, "keep");
            return retention(Math.max(1, keep.toMillis()) + "ms");
        }

        /**
         * Names this engine among the engines that share its store (several JVMs, or {@code
         * baton serve}, on one PostgreSQL database): {@code baton engines} and
         * {@link Baton#engines()} list it by this id, {@link RunInfo#engine()} names it on the
         * runs it drives, and shell steps see it as {@code $BATON_ENGINE_ID}. An engine opened
         * again with the same id takes its unfinished runs back at once, without waiting for
         * its {@link #lease lease} to end. Default: the machine's name and the process id. An
         * id with other characters than letters, digits, {@code _}, {@code .} and {@code -}
         * fails {@link Baton#open} with an {@link InvalidRequestException}.
         *
         * <pre>{@code
         * BatonOptions.builder().engineId("billing-" + podName).lease(Duration.ofSeconds(10)).build();
         * }</pre>
         */
        public Builder engineId(String engineId) {
            this.engineId = Objects.requireNonNull(engineId, "engineId");
            return this;
        }

        /**
         * How long this engine's runs stay its own after its last heartbeat, as {@code baton
         * serve --lease} takes it ({@code "15s"}, {@code "500ms"}, {@code "1m"}): on a store
         * shared with other engines, they take its unfinished runs over once it has passed
         * (the engine died, or lost the database). The engine writes a heartbeat three times
         * per lease. A short lease means a quick take-over, and more writes. Default 15s; at
         * least 300ms. A text that is not a duration, or too short a lease, fails
         * {@link Baton#open} with an {@link InvalidRequestException}.
         */
        public Builder lease(String lease) {
            this.lease = Objects.requireNonNull(lease, "lease");
            return this;
        }

        /**
         * On a database shared with other engines, the most runs this engine drives at once:
         * past it, the runs it starts are left for the other engines to claim (and it claims
         * none), so that a busy replica hands work to idle ones. Default: no limit. Ignored on
         * a store directory.
         */
        public Builder maxRuns(int maxRuns) {
            if (maxRuns < 1) {
                throw new IllegalArgumentException("maxRuns must be at least 1, not " + maxRuns);
            }
            this.maxRuns = maxRuns;
            return this;
        }

        /** {@link #lease(String)} of {@code lease}. */
        public Builder lease(java.time.Duration lease) {
            Objects.requireNonNull(lease, "lease");
            return lease(Durations.format(lease));
        }

        /**
         * Runs the engine on a virtual clock that reads {@code start} and moves only when told
         * ({@link Baton#virtualClock()}): sleeps, retry delays and timeouts take no real time.
         * For tests; {@code dev.baton:baton-junit} builds on it.
         */
        public Builder virtualClock(Instant start) {
            this.virtualClock = Objects.requireNonNull(start, "start");
            return this;
        }

        public BatonOptions build() {
            return new BatonOptions(this);
        }
    }
}
