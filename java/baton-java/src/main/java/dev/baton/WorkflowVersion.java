package dev.baton;

import com.fasterxml.jackson.databind.JsonNode;
import java.time.Instant;
import java.util.Objects;

/**
 * A version of a registered workflow, as {@link Baton#versions(String)} lists it.
 *
 * <pre>{@code
 * baton.versions("nightly-etl").forEach(v -> System.out.println(v.version() + (v.active() ? " *" : "")));
 * }</pre>
 *
 * @param version its number, from 1
 * @param definition the content hash of its definition (what {@link RunInfo#definition()} shows)
 * @param registeredAt when it was registered
 * @param active whether it is the version that starts and fires
 */
public record WorkflowVersion(int version, String definition, Instant registeredAt, boolean active) {

    public WorkflowVersion {
        Objects.requireNonNull(definition, "definition");
        Objects.requireNonNull(registeredAt, "registeredAt");
    }

    /** The engine's JSON form. */
    static WorkflowVersion of(JsonNode v) {
        return new WorkflowVersion(v.path("version").asInt(), v.path("definition").asText(),
                Instant.ofEpochMilli(v.path("registered_ms").asLong()), v.path("active").asBoolean());
    }
}
