package dev.baton;

import com.fasterxml.jackson.databind.JsonNode;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * When a running run should end, by its steps' history ({@link Baton#eta(String)}): each
 * step still to run takes its median, once the steps before it are over.
 *
 * @param at the expected end
 * @param remaining how long from now
 * @param unknown steps still to finish that have no history yet: counted as instant
 */
public record Eta(Instant at, Duration remaining, List<String> unknown) {

    public Eta {
        Objects.requireNonNull(at, "at");
        Objects.requireNonNull(remaining, "remaining");
        unknown = List.copyOf(unknown);
    }

    /** The engine's JSON form. */
    static Eta of(JsonNode json) {
        List<String> unknown = new ArrayList<>();
        json.path("unknown").forEach(s -> unknown.add(s.asText()));
        return new Eta(Instant.ofEpochMilli(json.path("at_ms").asLong()),
                Duration.ofMillis(json.path("remaining_ms").asLong()), unknown);
    }
}
