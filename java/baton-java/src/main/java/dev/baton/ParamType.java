package dev.baton;

/**
 * The type of a parameter declared without a default ({@code required:} in YAML): a start's
 * value is read as this type, and refused, naming the parameter, when it is not one.
 *
 * <pre>{@code
 * Workflow.named("load").requiredParam("day", ParamType.INTEGER)
 * }</pre>
 */
public enum ParamType {
    /** A whole number. */
    INTEGER,
    /** Any number. */
    NUMBER,
    /** {@code true} or {@code false}. */
    BOOLEAN,
    /** Text. */
    STRING,
    /** A list. */
    LIST,
    /** A map. */
    MAP,
    /** Any value. */
    ANY
}
