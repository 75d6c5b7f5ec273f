package dev.baton.internal;

import dev.baton.JavaStep;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;

/**
 * Hands the engine's JVM step tasks to Java code: one daemon thread ({@code baton-dispatch})
 * takes batches of tasks ({@link NativeBridge#nextTasks}) and submits each to the executor,
 * never running user code itself. It keeps the code of Java steps, bound by (workflow id, step
 * id), and of host step types, by name.
 *
 * <p>A task of a Java step whose code this JVM does not have (a run resumed before its
 * workflow is registered) is parked, and the step shows WAITING with the reason;
 * {@link #bind} of that workflow sends it on.
 *
 * <pre>{@code
 * Dispatcher d = new Dispatcher(handle, executor, "baton-dispatch");
 * d.bind("etl", workflow.javaSteps());
 * d.start();
 * ...
 * d.stopping(); NativeBridge.close(handle); d.stop();
 * }</pre>
 */
public final class Dispatcher {

    static final int BATCH = 256;
    static final long POLL_MILLIS = 200;

    /** How long code asked to stop may take before it counts as stuck. */
    static final long STUCK_AFTER_MILLIS = 5_000;

    private final long handle;
    private final Executor executor;
    /** Baton's own pool, which grows by a thread for each stuck step; null for a host's executor. */
    private final ThreadPoolExecutor ownPool;
    private final Thread thread;
    private final Object lock = new Object();
    /** Java step code by workflow id, then step id; guarded by {@link #lock}. */
    private final Map<String, Map<String, JavaStep>> javaSteps = new HashMap<>();
    /** Parked tasks by workflow id; guarded by {@link #lock}. */
    private final Map<String, List<Execution>> parked = new HashMap<>();
    private final Map<String, JavaStep> hostTypes = new ConcurrentHashMap<>();
    /** Every attempt handed over and not answered yet: queued, parked or running. */
    private final Map<Long, Execution> live = new ConcurrentHashMap<>();
    private volatile boolean stopping;

    public Dispatcher(long handle, Executor executor, String threadName) {
        this(handle, executor, null, threadName);
    }

    /** Runs steps on {@code ownPool}, Baton's own, which it may resize. */
    public Dispatcher(long handle, ThreadPoolExecutor ownPool, String threadName) {
        this(handle, ownPool, ownPool, threadName);
    }

    private Dispatcher(long handle, Executor executor, ThreadPoolExecutor ownPool, String threadName) {
        this.handle = handle;
        this.executor = executor;
        this.ownPool = ownPool;
        this.thread = new Thread(this::loop, threadName);
        this.thread.setDaemon(true);
    }

    public void start() {
        thread.start();
    }

    /**
     * Binds the Java steps of {@code workflowId} to {@code code}, over what its earlier versions
     * bound (a step of the same id gets the new code; a step only an earlier version has keeps
     * its own, so that runs of that version, resumed or pinned by a subworkflow, still run),
     * then sends on the tasks parked for that workflow whose code is now known.
     */
    public void bind(String workflowId, Map<String, JavaStep> code) {
        List<Execution> resumed = new ArrayList<>();
        synchronized (lock) {
            Map<String, JavaStep> bound = new java.util.HashMap<>(javaSteps.getOrDefault(workflowId, Map.of()));
            bound.putAll(code);
            javaSteps.put(workflowId, Map.copyOf(bound));
            List<Execution> waiting = parked.get(workflowId);
            if (waiting != null) {
                for (var it = waiting.iterator(); it.hasNext(); ) {
                    Execution e = it.next();
                    if (code.containsKey(e.stepId)) {
                        it.remove();
                        resumed.add(e);
                        waiting(e.token, null);
                    }
                }
                if (waiting.isEmpty()) {
                    parked.remove(workflowId);
                }
            }
        }
        resumed.forEach(this::submit);
    }

    /** Binds the host step type {@code name} to {@code handler} ({@code null} unbinds it); returns what was bound. */
    public JavaStep bindType(String name, JavaStep handler) {
        return handler == null ? hostTypes.remove(name) : hostTypes.put(name, handler);
    }

    /** The host step types bound. */
    public Set<String> typeNames() {
        return Set.copyOf(hostTypes.keySet());
    }

    /** The engine is about to close: the errors of a closed handle are expected from now on. */
    public void stopping() {
        stopping = true;
    }

    /**
     * After the engine closed: waits for the dispatch thread to end, and asks every attempt
     * still under way to stop (their answers are not wanted any more).
     */
    public void stop(long waitMillis) {
        stopping = true;
        try {
            thread.join(waitMillis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        synchronized (lock) {
            parked.clear();
        }
        for (Execution e : live.values()) {
            e.cancel();
        }
        live.clear();
    }

    /** Attempts handed over and not answered yet (for tests and diagnostics). */
    public int inFlight() {
        return live.size();
    }

    private void loop() {
        while (true) {
            String batch;
            try {
                batch = NativeBridge.nextTasks(handle, BATCH, POLL_MILLIS);
            } catch (IllegalStateException e) {
                if (!stopping) {
                    Logs.log(Level.SEVERE, "dev.baton.dispatch", "the engine's task queue failed; Java steps stop running", e);
                }
                return;
            } catch (Throwable t) {
                Logs.log(Level.SEVERE, "dev.baton.dispatch", "cannot take tasks from the engine; Java steps stop running", t);
                return;
            }
            if (batch == null) {
                return; // closed
            }
            // A line per item: "T\t..." a task, "C\t<token>" a cancellation.
            for (int start = 0, end; start < batch.length(); start = end + 1) {
                end = batch.indexOf('\n', start);
                if (end < 0) {
                    end = batch.length();
                }
                String line = batch.substring(start, end);
                try {
                    if (line.startsWith("C\t")) {
                        cancel(Long.parseLong(line, 2, line.length(), 10));
                    } else {
                        dispatch(Execution.parse(this, line));
                    }
                } catch (Throwable t) {
                    Logs.log(Level.SEVERE, "dev.baton.dispatch", "cannot dispatch " + line, t);
                }
            }
        }
    }

    private void cancel(long token) {
        Execution e = live.remove(token);
        if (e == null) {
            return;
        }
        synchronized (lock) {
            List<Execution> waiting = parked.get(e.workflowId);
            if (waiting != null) {
                waiting.remove(e);
            }
        }
        e.cancel();
        CompletableFuture.delayedExecutor(STUCK_AFTER_MILLIS, TimeUnit.MILLISECONDS).execute(() -> stuck(e));
    }

    /**
     * Code that ignores the interrupt keeps its thread after a timeout, a stop or a close: it is
     * logged, and Baton's own pool gets a thread in its place, so other steps still run.
     */
    private void stuck(Execution e) {
        Thread t = e.markStuck();
        if (t == null || stopping) {
            return;
        }
        Logs.log(Level.WARNING, "dev.baton.dispatch", "step `" + e.stepId + "` of run " + e.runId + " has not returned "
                + STUCK_AFTER_MILLIS / 1000 + " s after it was asked to stop and ignores interrupts; thread "
                + t.getName() + " stays busy with it"
                + (ownPool != null ? "; Baton adds a thread to its pool meanwhile" : ", and the executor has one thread less"), null);
        resize(+1);
    }

    /** A stuck attempt's code has returned: its thread is back in the pool. */
    void unstuck(Execution e) {
        resize(-1);
    }

    private synchronized void resize(int delta) {
        if (ownPool == null) {
            return;
        }
        int size = ownPool.getCorePoolSize() + delta;
        // The maximum is never below the core size: raise it first, lower it last.
        if (delta > 0) {
            ownPool.setMaximumPoolSize(size);
            ownPool.setCorePoolSize(size);
        } else {
            ownPool.setCorePoolSize(size);
            ownPool.setMaximumPoolSize(size);
        }
    }

    private void dispatch(Execution e) {
        live.put(e.token, e);
        if (!"java".equals(e.type)) {
            submit(e);
            return;
        }
        synchronized (lock) {
            Map<String, JavaStep> code = javaSteps.get(e.workflowId);
            if (code == null || !code.containsKey(e.stepId)) {
                parked.computeIfAbsent(e.workflowId, k -> new ArrayList<>()).add(e);
                waiting(e.token, "Java code for step `" + e.stepId + "` of workflow `" + e.workflowId
                        + "` is not registered in this JVM: call baton.register(...) with the workflow");
                return;
            }
        }
        submit(e);
    }

    private void submit(Execution e) {
        try {
            executor.execute(e);
        } catch (RejectedExecutionException rejected) {
            complete(e, Execution.failure(new RejectedExecutionException(
                    "the executor of Java steps refused the step (is it shut down?)", rejected)));
        } catch (Throwable t) {
            // No thread for it (OutOfMemoryError: unable to create native thread), or an
            // executor that throws: the step fails instead of waiting for ever.
            complete(e, Execution.failure(t));
        }
    }

    /** Runs the attempt's code on the calling (executor) thread; returns the outcome JSON. */
    String execute(Execution e) throws Exception {
        JavaStep code;
        if ("java".equals(e.type)) {
            synchronized (lock) {
                code = javaSteps.getOrDefault(e.workflowId, Map.of()).get(e.stepId);
            }
        } else {
            code = hostTypes.get(e.type);
        }
        if (code == null) {
            throw new IllegalStateException("no code for step `" + e.stepId + "` of workflow `" + e.workflowId
                    + "` (type `" + e.type + "`) in this JVM");
        }
        TaskContext ctx = new TaskContext(e);
        code.run(ctx);
        return ctx.outcomeJson();
    }

    /** Sends the attempt's outcome to the engine, unless it was cancelled or the engine closed. */
    void complete(Execution e, String outcome) {
        if (live.remove(e.token) == null) {
            return; // cancelled: the engine no longer waits for it
        }
        try {
            NativeBridge.complete(handle, e.token, outcome);
        } catch (IllegalStateException closed) {
            // The engine closed while the step ran; the run resumes at the next open.
        }
    }

    /** An attempt that ended without running (cancelled first). */
    void finished(Execution e) {
        live.remove(e.token, e);
    }

    private void waiting(long token, String reason) {
        try {
            NativeBridge.waiting(handle, token, reason);
        } catch (IllegalStateException closed) {
            // closing
        }
    }

    /** Waits up to {@code millis} for the dispatch thread to end (tests). */
    boolean awaitTermination(long millis) throws InterruptedException {
        TimeUnit.MILLISECONDS.timedJoin(thread, millis);
        return !thread.isAlive();
    }

    /** The attempts under way (tests). */
    Collection<Execution> live() {
        return live.values();
    }
}
