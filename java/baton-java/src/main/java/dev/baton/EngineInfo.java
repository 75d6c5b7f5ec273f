package dev.baton;

import com.fasterxml.jackson.databind.JsonNode;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * An engine of the store, as its last heartbeat says: what {@link Baton#engines()} lists. On a
 * PostgreSQL database shared by several engines (JVMs opened with
 * {@link BatonOptions.Builder#engineId}, {@code baton serve}), each writes a heartbeat a few
 * times per lease; one whose heartbeat is older than its lease is no longer {@link #alive()},
 * and the others take its unfinished runs over.
 *
 * <pre>{@code
 * for (EngineInfo e : baton.engines()) {
 *     System.out.println(e.id() + (e.alive() ? " live" : " dead") + ", " + e.runs() + " runs, on " + e.host());
 * }
 * }</pre>
 *
 * @param id the engine's id ({@link BatonOptions.Builder#engineId}, {@code --engine-id})
 * @param host the machine it runs on
 * @param pid its process
 * @param started when it opened the store, by the store's clock
 * @param heartbeat its last heartbeat, by the store's clock
 * @param lease how long its runs stay its own after a heartbeat ({@link BatonOptions.Builder#lease})
 * @param kinds the step kinds it can run ({@code shell}, {@code java}, host step types...)
 * @param workflows the workflows registered in it, whose Java steps it can run: a run with
 *     Java steps goes only to an engine that registered its workflow
 * @param claims whether it takes runs that others started or left (a {@link Baton} does);
 *     false for one that drives only the runs it starts ({@code baton run})
 * @param stopped whether it closed: its runs were free to take at once
 * @param runs the unfinished runs it holds
 * @param alive whether its runs are still its own: not stopped, and its last heartbeat within
 *     its lease
 */
public record EngineInfo(String id, String host, long pid, Instant started, Instant heartbeat, Duration lease,
        List<String> kinds, List<String> workflows, boolean claims, boolean stopped, int runs, boolean alive) {

    public EngineInfo {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(host, "host");
        Objects.requireNonNull(started, "started");
        Objects.requireNonNull(heartbeat, "heartbeat");
        Objects.requireNonNull(lease, "lease");
        kinds = List.copyOf(kinds);
        workflows = List.copyOf(workflows);
    }

    /** The engine's JSON form ({@code baton engines --json}). */
    static EngineInfo of(JsonNode e) {
        return new EngineInfo(e.path("id").asText(), e.path("host").asText(), e.path("pid").asLong(),
                Instant.ofEpochMilli(e.path("started_ms").asLong()), Instant.ofEpochMilli(e.path("heartbeat_ms").asLong()),
                Duration.ofMillis(e.path("lease_ms").asLong()), texts(e.path("kinds")), texts(e.path("workflows")),
                e.path("claims").asBoolean(), e.path("stopped").asBoolean(), e.path("runs").asInt(),
                e.path("alive").asBoolean());
    }

    private static List<String> texts(JsonNode array) {
        List<String> texts = new ArrayList<>();
        array.forEach(t -> texts.add(t.asText()));
        return texts;
    }
}
