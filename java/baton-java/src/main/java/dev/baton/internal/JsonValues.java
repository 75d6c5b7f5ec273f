package dev.baton.internal;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.lang.reflect.Array;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Parameter values in their JSON form, immutable, so that a value means the same whether it
 * was set in Java or read from JSON: {@code null}, {@code String}, {@code Boolean},
 * {@code Long} (any integer that fits), {@code BigInteger}, {@code Double},
 * {@code BigDecimal}, {@code List} and {@code Map<String, ?>} of these.
 *
 * <pre>{@code
 * JsonValues.normalize(List.of(1, 2.5f)); // [1L, 2.5d], unmodifiable
 * }</pre>
 */
public final class JsonValues {

    private JsonValues() {}

    /**
     * The JSON form of {@code value}: integers become {@code Long}, floats {@code Double},
     * arrays and collections unmodifiable lists, maps unmodifiable maps in their order.
     *
     * @throws IllegalArgumentException for a value JSON cannot carry (a POJO, NaN, a map
     *     with a key that is not a string)
     */
    public static Object normalize(Object value) {
        return normalize(value, java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>()));
    }

    /** {@link #normalize(Object)}; {@code open} holds the containers being copied, to find a cycle. */
    private static Object normalize(Object value, java.util.Set<Object> open) {
        if (value == null || value instanceof String || value instanceof Boolean || value instanceof Long
                || value instanceof BigDecimal) {
            return value;
        }
        if (value instanceof CharSequence || value instanceof Character) {
            return value.toString();
        }
        if (value instanceof Integer || value instanceof Short || value instanceof Byte) {
            return ((Number) value).longValue();
        }
        if (value instanceof BigInteger big) {
            return big.bitLength() < 64 ? (Object) big.longValue() : big;
        }
        if (value instanceof Double || value instanceof Float) {
            double d = value instanceof Float f ? Double.parseDouble(f.toString()) : (Double) value;
            if (Double.isNaN(d) || Double.isInfinite(d)) {
                throw new IllegalArgumentException("JSON has no " + value);
            }
            return d;
        }
        if (value instanceof Enum<?> e) {
            return e.name();
        }
        if (value instanceof java.util.Optional<?> optional) {
            return normalize(optional.orElse(null), open);
        }
        boolean container = value instanceof Map<?, ?> || value instanceof Iterable<?> || value.getClass().isArray();
        if (container && !open.add(value)) {
            throw new IllegalArgumentException("a cycle: " + describe(value) + " contains itself");
        }
        try {
            if (value instanceof Map<?, ?> map) {
                Map<String, Object> copy = new LinkedHashMap<>();
                for (Map.Entry<?, ?> e : map.entrySet()) {
                    if (!(e.getKey() instanceof String key)) {
                        throw new IllegalArgumentException("a map key must be a String, not " + describe(e.getKey()));
                    }
                    copy.put(key, normalize(e.getValue(), open));
                }
                return Collections.unmodifiableMap(copy);
            }
            if (value instanceof Iterable<?> items) {
                List<Object> copy = new ArrayList<>();
                items.forEach(item -> copy.add(normalize(item, open)));
                return Collections.unmodifiableList(copy);
            }
            if (value.getClass().isArray()) {
                List<Object> copy = new ArrayList<>();
                for (int i = 0, n = Array.getLength(value); i < n; i++) {
                    copy.add(normalize(Array.get(value, i), open));
                }
                return Collections.unmodifiableList(copy);
            }
        } finally {
            open.remove(value);
        }
        return normalize(asJson(value), open);
    }

    /**
     * A record, a bean or a java.time value as JSON: records and beans are maps of their
     * properties, java.time values ISO-8601 text.
     */
    private static Object asJson(Object value) {
        Object json;
        try {
            json = JsonCodec.MAPPER.convertValue(value, Object.class);
        } catch (IllegalArgumentException e) {
            String why = e.getMessage() != null && e.getMessage().contains("Infinite recursion")
                    ? "it refers to itself (a cycle)"
                    : "it has no JSON form (" + firstLine(e.getMessage()) + ")";
            throw new IllegalArgumentException(describe(value) + " is not a JSON value: " + why, e);
        }
        if (json != null && json.getClass() == value.getClass()) {
            throw new IllegalArgumentException(describe(value)
                    + " is not a JSON value: use a String, a number, a Boolean, a List, a Map, a record or a bean");
        }
        return json;
    }

    private static String firstLine(String message) {
        if (message == null) {
            return "no detail";
        }
        int end = message.indexOf('\n');
        return end < 0 ? message : message.substring(0, end);
    }

    /**
     * {@code value} (in its JSON form) as a {@code type}: a record, a bean, an enum by name, a
     * java.time value from its text, a number of another width; {@code what} names it in errors.
     *
     * @throws IllegalArgumentException if it does not convert
     */
    public static <T> T convert(Object value, Class<T> type, String what) {
        Objects.requireNonNull(type, "type");
        if (value == null || type.isInstance(value)) {
            return type.cast(value);
        }
        try {
            return JsonCodec.MAPPER.convertValue(value, type);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(what + ": " + describe(value) + " (" + value + ") does not convert to "
                    + type.getName() + ": " + firstLine(e.getMessage()), e);
        }
    }

    private static String describe(Object value) {
        return value == null ? "null" : "a " + value.getClass().getName();
    }

    /**
     * Sets {@code name} to {@code value} in the JSON object {@code params}; an error names
     * {@code where} (e.g. "step `load`, param `date`").
     *
     * @throws IllegalArgumentException for a value JSON cannot carry
     */
    public static void putParam(ObjectNode params, String name, Object value, String where) {
        Objects.requireNonNull(name, "name");
        try {
            params.set(name, JsonCodec.tree(normalize(value)));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(where + ": " + e.getMessage(), e);
        }
    }
}
