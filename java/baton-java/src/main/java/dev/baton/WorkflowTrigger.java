package dev.baton;

import dev.baton.internal.JsonValues;
import java.time.ZoneId;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * What starts runs of a registered workflow on its own: a cron schedule or a signal. Immutable;
 * each method returns a changed copy. The run's parameters may use {@code ${...}} over
 * {@code trigger.*} ({@code trigger.scheduled_time}) and {@code signal.*} (the signal's params).
 *
 * <pre>{@code
 * Workflow.named("nightly-etl")
 *     .param("date", "")
 *     .trigger(WorkflowTrigger.cron("0 2 * * *").zone(ZoneId.of("Europe/Paris"))
 *         .param("date", "${format_date(trigger.scheduled_time, 'yyyy-MM-dd')}"))
 *     .trigger(WorkflowTrigger.signal("table_ready").match("${signal.table == 'events'}"))
 *     ...
 * }</pre>
 */
public final class WorkflowTrigger {

    private final String cron;
    private final String zone;
    private final Misfire misfire;
    private final String signal;
    private final String match;
    private final Map<String, Object> params;

    private WorkflowTrigger(String cron, String zone, Misfire misfire, String signal, String match, Map<String, Object> params) {
        this.cron = cron;
        this.zone = zone;
        this.misfire = misfire;
        this.signal = signal;
        this.match = match;
        this.params = Collections.unmodifiableMap(params);
    }

    /**
     * A cron schedule: 5 fields (minute to day of week), or 6/7 with seconds first; read in UTC
     * unless {@link #zone} says otherwise. The engine checks the expression at registration.
     */
    public static WorkflowTrigger cron(String expression) {
        return new WorkflowTrigger(Objects.requireNonNull(expression, "expression"), null, null, null, null, Map.of());
    }

    /** A run for each signal {@code name} sent (see {@link #match} to pick some). */
    public static WorkflowTrigger signal(String name) {
        return new WorkflowTrigger(null, null, null, Objects.requireNonNull(name, "name"), null, Map.of());
    }

    /** The zone a cron expression reads its times in (default UTC). Cron triggers only. */
    public WorkflowTrigger zone(ZoneId zone) {
        Objects.requireNonNull(zone, "zone");
        requireCron("zone");
        return new WorkflowTrigger(cron, zone.getId(), misfire, signal, match, params);
    }

    /** What to do about times missed while no engine ran (default {@link Misfire#RUN_ONCE}). Cron triggers only. */
    public WorkflowTrigger misfire(Misfire misfire) {
        Objects.requireNonNull(misfire, "misfire");
        requireCron("misfire");
        return new WorkflowTrigger(cron, zone, misfire, signal, match, params);
    }

    /** Which signals start a run: {@code ${...}} over {@code signal.<param>}. Signal triggers only. */
    public WorkflowTrigger match(String expression) {
        Objects.requireNonNull(expression, "expression");
        if (signal == null) {
            throw new IllegalArgumentException("`match` is for signal triggers; this one is cron `" + cron + "`");
        }
        return new WorkflowTrigger(cron, zone, misfire, signal, expression, params);
    }

    /**
     * A parameter of the runs it starts; a string value may use {@code ${...}} over
     * {@code trigger.*} and {@code signal.*}.
     *
     * @throws IllegalArgumentException if JSON cannot carry the value
     */
    public WorkflowTrigger param(String name, Object value) {
        Map<String, Object> copy = new LinkedHashMap<>(params);
        JsonValues.putParam(copy, name, value, "trigger param `" + name + "`");
        return new WorkflowTrigger(cron, zone, misfire, signal, match, copy);
    }

    private void requireCron(String what) {
        if (cron == null) {
            throw new IllegalArgumentException("`" + what + "` is for cron triggers; this one is signal `" + signal + "`");
        }
    }

    /** The cron expression, for a cron trigger. */
    public Optional<String> cronExpression() {
        return Optional.ofNullable(cron);
    }

    /** The IANA zone of a cron trigger, if not UTC. */
    public Optional<String> zone() {
        return Optional.ofNullable(zone);
    }

    public Optional<Misfire> misfire() {
        return Optional.ofNullable(misfire);
    }

    /** The signal's name, for a signal trigger. */
    public Optional<String> signal() {
        return Optional.ofNullable(signal);
    }

    public Optional<String> match() {
        return Optional.ofNullable(match);
    }

    /** The parameters of the runs it starts, in their JSON form. */
    public Map<String, Object> params() {
        return params;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof WorkflowTrigger t && Objects.equals(cron, t.cron) && Objects.equals(zone, t.zone)
                && misfire == t.misfire && Objects.equals(signal, t.signal) && Objects.equals(match, t.match)
                && params.equals(t.params);
    }

    @Override
    public int hashCode() {
        return Objects.hash(cron, zone, misfire, signal, match, params);
    }

    @Override
    public String toString() {
        return cron != null ? "WorkflowTrigger[cron " + cron + (zone == null ? "" : " " + zone) + "]"
                : "WorkflowTrigger[signal " + signal + (match == null ? "" : " " + match) + "]";
    }
}
