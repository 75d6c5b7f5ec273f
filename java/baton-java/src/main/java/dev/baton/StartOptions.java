package dev.baton;

import java.util.Objects;
import java.util.Optional;
import java.util.OptionalInt;

/**
 * How {@link Baton#start(String, java.util.Map, StartOptions)} starts a run: which version, and
 * a request id that makes the start idempotent (a request id used before returns that start's
 * run, started or not). Immutable; each method returns a changed copy.
 *
 * <pre>{@code
 * Run run = baton.start("nightly-etl", Map.of("date", "2026-11-25"),
 *     StartOptions.requestId("etl-2026-11-25").version(2));
 * }</pre>
 */
public final class StartOptions {

    private static final StartOptions DEFAULTS = new StartOptions(null, null);

    private final String requestId;
    private final Integer version;

    private StartOptions(String requestId, Integer version) {
        this.requestId = requestId;
        this.version = version;
    }

    /** The active version, no request id. */
    public static StartOptions defaults() {
        return DEFAULTS;
    }

    /** Options with the request id {@code requestId}: {@code StartOptions.requestId("abc")}. */
    public static StartOptions requestId(String requestId) {
        return DEFAULTS.withRequestId(requestId);
    }

    /** Options that run version {@code version}: {@code StartOptions.ofVersion(2)}. */
    public static StartOptions ofVersion(int version) {
        return DEFAULTS.version(version);
    }

    /** A copy with the request id {@code requestId}. */
    public StartOptions withRequestId(String requestId) {
        Objects.requireNonNull(requestId, "requestId");
        if (requestId.isBlank()) {
            throw new IllegalArgumentException("a request id must not be blank");
        }
        return new StartOptions(requestId, version);
    }

    /**
     * A copy that runs version {@code version} of the workflow, not the active one.
     *
     * @throws IllegalArgumentException if {@code version < 1}
     */
    public StartOptions version(int version) {
        if (version < 1) {
            throw new IllegalArgumentException("versions start at 1, not " + version);
        }
        return new StartOptions(requestId, version);
    }

    /** The request id, if any. */
    public Optional<String> requestId() {
        return Optional.ofNullable(requestId);
    }

    /** The version to run; empty for the active one. */
    public OptionalInt version() {
        return version == null ? OptionalInt.empty() : OptionalInt.of(version);
    }

    @Override
    public String toString() {
        return "StartOptions[requestId=" + requestId + ", version=" + version + "]";
    }
}
