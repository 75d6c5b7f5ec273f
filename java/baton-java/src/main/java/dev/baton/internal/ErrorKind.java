package dev.baton.internal;

import java.util.Locale;

/**
 * The kinds of failure the core reports, mirrored from its {@code baton_core::error::ErrorKind}
 * in the same order; a test compares the two lists. {@link Envelope} maps each kind to its
 * exception class with an exhaustive {@code switch}, so a kind added here does not compile
 * until it is mapped.
 *
 * <pre>{@code
 * ErrorKind.of("unknown_run"); // UNKNOWN_RUN
 * }</pre>
 */
public enum ErrorKind {
    DEFINITION,
    PARAM,
    UNKNOWN_RUN,
    UNKNOWN_WORKFLOW,
    UNKNOWN_VERSION,
    UNKNOWN_STEP,
    ILLEGAL_ACTION,
    RUN_REJECTED,
    INVALID_REQUEST,
    STORE,
    CLOSED,
    TIMEOUT,
    STATE,
    INTERNAL;

    /** The kind's name on the wire: {@code unknown_run}. */
    public String wireName() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** The kind named {@code wireName}; {@link #INTERNAL} for a name this library does not know. */
    public static ErrorKind of(String wireName) {
        for (ErrorKind kind : values()) {
            if (kind.wireName().equals(wireName)) {
                return kind;
            }
        }
        return INTERNAL;
    }
}
