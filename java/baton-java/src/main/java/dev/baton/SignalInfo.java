package dev.baton;

import com.fasterxml.jackson.databind.JsonNode;
import dev.baton.internal.JsonCodec;
import java.time.Instant;
import java.util.Map;
import java.util.Optional;

/**
 * A signal in the store: what {@link Baton#signal} sent or a step's {@code emitSignal} emitted.
 *
 * <pre>{@code
 * for (SignalInfo s : baton.signals("table_ready")) {
 *     System.out.println(s.sentAt() + " " + s.params().get("table"));
 * }
 * }</pre>
 *
 * @param id unique, and sortable by time
 * @param name the signal's name
 * @param params its parameters, in their JSON form
 * @param sentAt when it was sent
 * @param source the run and step that emitted it, if a step did
 */
public record SignalInfo(String id, String name, Map<String, Object> params, Instant sentAt, Optional<String> source) {

    /** The signal record in the engine's JSON form. */
    static SignalInfo of(JsonNode signal) {
        return new SignalInfo(
                signal.path("id").asText(),
                signal.path("name").asText(),
                JsonCodec.toMap(signal.get("params")),
                Instant.ofEpochMilli(signal.path("sent_ms").asLong()),
                Optional.ofNullable(signal.hasNonNull("source") ? signal.get("source").asText() : null));
    }
}
