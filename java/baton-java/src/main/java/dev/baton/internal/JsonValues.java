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
        if (value instanceof Map<?, ?> map) {
            Map<String, Object> copy = new LinkedHashMap<>();
            for (Map.Entry<?, ?> e : map.entrySet()) {
                if (!(e.getKey() instanceof String key)) {
                    throw new IllegalArgumentException("a map key must be a String, not " + describe(e.getKey()));
                }
                copy.put(key, normalize(e.getValue()));
            }
            return Collections.unmodifiableMap(copy);
        }
        if (value instanceof Iterable<?> items) {
            List<Object> copy = new ArrayList<>();
            items.forEach(item -> copy.add(normalize(item)));
            return Collections.unmodifiableList(copy);
        }
        if (value.getClass().isArray()) {
            List<Object> copy = new ArrayList<>();
            for (int i = 0, n = Array.getLength(value); i < n; i++) {
                copy.add(normalize(Array.get(value, i)));
            }
            return Collections.unmodifiableList(copy);
        }
        throw new IllegalArgumentException(describe(value)
                + " is not a JSON value: use a String, a number, a Boolean, a List or a Map of them");
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
