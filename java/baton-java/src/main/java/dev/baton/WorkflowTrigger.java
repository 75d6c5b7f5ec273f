package dev.baton;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.baton.internal.Durations;
import dev.baton.internal.JsonCodec;
import dev.baton.internal.JsonValues;
import java.time.Duration;
import java.time.ZoneId;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.function.Consumer;

/**
 * What starts runs of a registered workflow on its own: a cron schedule, a signal, or signals
 * joined on their params ({@link #signals}). Immutable;
 * each method returns a changed copy. The run's parameters may use {@code ${...}} over
 * {@code trigger.*} ({@code trigger.scheduled_time}) and {@code signal.*} (the signal's params).
 * It is an object of the core's {@code triggers}, checked with the rest of the workflow by
 * {@link Workflow.Builder#build()} (the cron expression, the zone, which fields apply).
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

    /** The JSON object; never changed once the trigger is made. */
    private final ObjectNode json;

    /** A view of one of the {@code triggers} of a workflow's JSON. */
    WorkflowTrigger(ObjectNode json) {
        this.json = json;
    }

    private static WorkflowTrigger of(String field, String value) {
        ObjectNode json = JsonCodec.object();
        json.put(field, value);
        return new WorkflowTrigger(json);
    }

    /** A copy, changed by {@code change}. */
    private WorkflowTrigger with(Consumer<ObjectNode> change) {
        ObjectNode copy = json.deepCopy();
        change.accept(copy);
        return new WorkflowTrigger(copy);
    }

    /**
     * A cron schedule: 5 fields (minute to day of week), or 6/7 with seconds first; read in UTC
     * unless {@link #zone} says otherwise.
     */
    public static WorkflowTrigger cron(String expression) {
        return of("cron", Objects.requireNonNull(expression, "expression"));
    }

    /** A run for each signal {@code name} sent (see {@link #match} to pick some). */
    public static WorkflowTrigger signal(String name) {
        return of("signal", Objects.requireNonNull(name, "name"));
    }

    /**
     * A run once each of the signals {@code names} has been sent, with the same values of the
     * {@link #join} params; its parameters see them as {@code signals.<name>.*}
     * ({@code ${signals['db/a'].date}}).
     */
    public static WorkflowTrigger signals(String... names) {
        ObjectNode json = JsonCodec.object();
        var list = json.putArray("signals");
        for (String name : names) {
            list.add(Objects.requireNonNull(name, "name"));
        }
        return new WorkflowTrigger(json);
    }

    /** The params whose values joined signals share ({@code join("date")}). Joined signals only. */
    public WorkflowTrigger join(String... params) {
        return with(j -> {
            var list = j.putArray("join");
            for (String p : params) {
                list.add(Objects.requireNonNull(p, "param"));
            }
        });
    }

    /**
     * Which signals named {@code name} count in the join: {@code ${...}} over {@code signal.<param>}.
     *
     * @throws IllegalArgumentException if {@code name} is not one of the joined signals
     */
    public WorkflowTrigger matchSignal(String name, String expression) {
        Objects.requireNonNull(expression, "expression");
        return withSignal(name, o -> o.put("match", expression));
    }

    /**
     * The params of signal {@code name} that join it to the others, in order (Maestro's
     * {@code join_keys}), instead of the trigger's {@link #join}.
     *
     * @throws IllegalArgumentException if {@code name} is not one of the joined signals
     */
    public WorkflowTrigger joinSignal(String name, String... params) {
        return withSignal(name, o -> {
            var list = o.putArray("join");
            for (String p : params) {
                list.add(Objects.requireNonNull(p, "param"));
            }
        });
    }

    /** A copy whose joined signal {@code name} is a map changed by {@code change}. */
    private WorkflowTrigger withSignal(String name, Consumer<ObjectNode> change) {
        Objects.requireNonNull(name, "name");
        return with(j -> {
            var list = j.withArray("signals");
            for (int i = 0; i < list.size(); i++) {
                var item = list.get(i);
                String itemName = item.isTextual() ? item.asText() : item.path("name").asText();
                if (itemName.equals(name)) {
                    ObjectNode o = item.isObject() ? (ObjectNode) item : JsonCodec.object().put("name", name);
                    change.accept(o);
                    list.set(i, o);
                    return;
                }
            }
            throw new IllegalArgumentException("`" + name + "` is not one of the joined signals " + signals());
        });
    }

    /** The names of the joined signals, for a trigger made by {@link #signals}. */
    public java.util.List<String> signals() {
        var out = new java.util.ArrayList<String>();
        for (var item : json.path("signals")) {
            out.add(item.isTextual() ? item.asText() : item.path("name").asText());
        }
        return out;
    }

    /** The params joined signals share. */
    public java.util.List<String> join() {
        var out = new java.util.ArrayList<String>();
        json.path("join").forEach(p -> out.add(p.asText()));
        return out;
    }

    /** The zone a cron expression reads its times in (default UTC). Cron triggers only. */
    public WorkflowTrigger zone(ZoneId zone) {
        String id = Objects.requireNonNull(zone, "zone").getId();
        return with(j -> j.put("timezone", id));
    }

    /** What to do about times missed while no engine ran (default {@link Misfire#RUN_ONCE}). Cron triggers only. */
    public WorkflowTrigger misfire(Misfire misfire) {
        String name = JsonCodec.name(Objects.requireNonNull(misfire, "misfire"));
        return with(j -> j.put("misfire", name));
    }

    /**
     * Fires a fixed delay after each cron time, under {@code bound}, drawn from the workflow id
     * and the trigger's place: workflows on one schedule do not all start at once. The runs
     * still see the cron time as {@code trigger.scheduled_time}. Cron triggers only.
     */
    public WorkflowTrigger jitter(Duration bound) {
        String text = Durations.format(Objects.requireNonNull(bound, "bound"));
        return with(j -> j.put("jitter", text));
    }

    /** Which signals start a run: {@code ${...}} over {@code signal.<param>}. Signal triggers only. */
    public WorkflowTrigger match(String expression) {
        Objects.requireNonNull(expression, "expression");
        return with(j -> j.put("match", expression));
    }

    /**
     * A parameter of the runs it starts; a string value may use {@code ${...}} over
     * {@code trigger.*} and {@code signal.*}.
     *
     * @throws IllegalArgumentException if JSON cannot carry the value
     */
    public WorkflowTrigger param(String name, Object value) {
        return with(j -> JsonValues.putParam(j.withObjectProperty("params"), name, value, "trigger param `" + name + "`"));
    }

    /** The cron expression, for a cron trigger. */
    public Optional<String> cronExpression() {
        return JsonCodec.text(json, "cron");
    }

    /** The IANA zone of a cron trigger, if not UTC. */
    public Optional<String> zone() {
        return JsonCodec.text(json, "timezone");
    }

    /** The bound of a cron trigger's delay after its times, if it has one ({@link #jitter(Duration)}). */
    public Optional<Duration> jitter() {
        return JsonCodec.duration(json, "jitter");
    }

    public Optional<Misfire> misfire() {
        return Optional.ofNullable(JsonCodec.choice(json, "misfire", Misfire.class, null));
    }

    /** The signal's name, for a signal trigger. */
    public Optional<String> signal() {
        return JsonCodec.text(json, "signal");
    }

    public Optional<String> match() {
        return JsonCodec.text(json, "match");
    }

    /** The parameters of the runs it starts, in their JSON form. */
    public Map<String, Object> params() {
        return JsonCodec.toMap(json.get("params"));
    }

    /** The JSON object, to be placed in a workflow's (a copy: the tree it goes into may change). */
    ObjectNode json() {
        return json.deepCopy();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof WorkflowTrigger t && json.equals(t.json);
    }

    @Override
    public int hashCode() {
        return json.hashCode();
    }

    @Override
    public String toString() {
        return cronExpression().map(c -> "WorkflowTrigger[cron " + c + zone().map(z -> " " + z).orElse("") + "]")
                .orElseGet(() -> signal().map(n -> "WorkflowTrigger[signal " + n + match().map(m -> " " + m).orElse("") + "]")
                        .orElseGet(() -> "WorkflowTrigger[signals " + String.join(" + ", signals())
                                + (join().isEmpty() ? "" : " join " + String.join(",", join())) + "]"));
    }
}
