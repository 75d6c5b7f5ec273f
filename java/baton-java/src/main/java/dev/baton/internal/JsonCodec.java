package dev.baton.internal;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * JSON between Java and the engine: text to trees, trees to plain Java values and back.
 * Values read are what {@link JsonValues} calls their JSON form: {@code Long} (or
 * {@code BigInteger}), {@code Double}, {@code Boolean}, {@code String}, unmodifiable
 * {@code List} and {@code Map}.
 *
 * <pre>{@code
 * Object rows = JsonCodec.toJava(JsonCodec.parse("{\"rows\": 42}").get("rows")); // 42L
 * }</pre>
 */
public final class JsonCodec {

    static final ObjectMapper MAPPER = JsonMapper.builder().build();

    private JsonCodec() {}

    /** The tree of {@code json}; malformed JSON from the engine is a bug, an {@link IllegalStateException}. */
    public static JsonNode parse(String json) {
        try {
            return MAPPER.readTree(json);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("malformed JSON from Baton's native library: " + e.getOriginalMessage()
                    + ": " + abbreviate(json), e);
        }
    }

    /** The JSON text of a value in its JSON form (see {@link JsonValues#normalize}). */
    public static String write(Object value) {
        try {
            return MAPPER.writeValueAsString(value);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("cannot write as JSON: " + e.getOriginalMessage(), e);
        }
    }

    /** A tree as plain, unmodifiable Java values; {@code null} for JSON null or a missing node. */
    public static Object toJava(JsonNode node) {
        if (node == null || node.isNull() || node.isMissingNode()) {
            return null;
        }
        if (node.isObject()) {
            return toMap(node);
        }
        if (node.isArray()) {
            List<Object> list = new ArrayList<>(node.size());
            node.forEach(item -> list.add(toJava(item)));
            return Collections.unmodifiableList(list);
        }
        if (node.isIntegralNumber()) {
            return node.canConvertToLong() ? (Object) node.longValue() : node.bigIntegerValue();
        }
        if (node.isNumber()) {
            return node.doubleValue();
        }
        if (node.isBoolean()) {
            return node.booleanValue();
        }
        return node.asText();
    }

    /** An object node's fields as an unmodifiable map in their order; empty for a missing node. */
    public static Map<String, Object> toMap(JsonNode node) {
        if (node == null || !node.isObject()) {
            return Map.of();
        }
        Map<String, Object> map = new LinkedHashMap<>();
        node.properties().forEach(e -> map.put(e.getKey(), toJava(e.getValue())));
        return Collections.unmodifiableMap(map);
    }

    private static String abbreviate(String s) {
        return s == null || s.length() <= 200 ? String.valueOf(s) : s.substring(0, 200) + "...";
    }
}
