package dev.baton.internal;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.ObjectReader;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.math.BigDecimal;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.OptionalLong;

/**
 * JSON between Java and the engine: text to trees, trees to plain Java values and back, and
 * the fields of the core's JSON read as Java values. Values read are what {@link JsonValues}
 * calls their JSON form: {@code Long} (or {@code BigInteger}), {@code Double} (or
 * {@code BigDecimal}, for a decimal no double holds exactly), {@code Boolean},
 * {@code String}, unmodifiable {@code List} and {@code Map}. Choices ({@code failure_mode},
 * ...) are Java enums named in lower case.
 *
 * <pre>{@code
 * Object rows = JsonCodec.toJava(JsonCodec.parse("{\"rows\": 42}").get("rows")); // 42L
 * Optional<Duration> timeout = JsonCodec.duration(step, "timeout");
 * }</pre>
 */
public final class JsonCodec {

    /**
     * Without Jackson's cap on string length (20 M characters): the engine's answers and tasks
     * hold the values users gave it, and a 50 MB param comes back whole.
     */
    static final ObjectMapper MAPPER = JsonMapper.builder(JsonFactory.builder()
            .streamReadConstraints(StreamReadConstraints.builder().maxStringLength(Integer.MAX_VALUE).build())
            .build())
            // Step outputs of java.time types are ISO-8601 text, Optional its value or null.
            .addModule(new com.fasterxml.jackson.datatype.jsr310.JavaTimeModule())
            .addModule(new com.fasterxml.jackson.datatype.jdk8.Jdk8Module())
            .disable(com.fasterxml.jackson.databind.SerializationFeature.WRITE_DATES_AS_TIMESTAMPS)
            .disable(com.fasterxml.jackson.databind.SerializationFeature.WRITE_DURATIONS_AS_TIMESTAMPS)
            .disable(com.fasterxml.jackson.databind.DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
            .build();

    /**
     * Trees keep decimals as written: a {@code BigDecimal} output comes back with every digit
     * (the engine keeps numbers as their text).
     */
    private static final ObjectReader TREES = MAPPER.readerFor(JsonNode.class)
            .with(com.fasterxml.jackson.databind.DeserializationFeature.USE_BIG_DECIMAL_FOR_FLOATS)
            .with(JsonNodeFactory.withExactBigDecimals(true));

    private JsonCodec() {}

    /** The tree of {@code json}; malformed JSON from the engine is a bug, an {@link IllegalStateException}. */
    public static JsonNode parse(String json) {
        try {
            return TREES.readTree(json);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("malformed JSON from Baton's native library: " + e.getOriginalMessage()
                    + ": " + abbreviate(json), e);
        }
    }

    /** A new empty JSON object. */
    public static ObjectNode object() {
        return MAPPER.createObjectNode();
    }

    /**
     * The tree of a value in its JSON form (see {@link JsonValues#normalize}), as its JSON text
     * reads: the same tree as the core's answer holds for it, so that trees compare equal.
     */
    public static JsonNode tree(Object value) {
        return parse(write(value));
    }

    /** The JSON text of a value in its JSON form (see {@link JsonValues#normalize}), or of a tree. */
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
            // A Double when one holds the number (up to 15 digits always do); else the exact BigDecimal.
            BigDecimal exact = node.decimalValue();
            double d = exact.doubleValue();
            boolean holds = Double.isFinite(d) && (exact.precision() <= 15 || BigDecimal.valueOf(d).compareTo(exact) == 0);
            return holds ? (Object) d : exact;
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

    /** The text of {@code field}, if {@code node} has it. */
    public static Optional<String> text(JsonNode node, String field) {
        JsonNode value = node.get(field);
        return value == null || value.isNull() ? Optional.empty() : Optional.of(value.asText());
    }

    /** The whole number {@code field}, if {@code node} has it. */
    public static OptionalInt integer(JsonNode node, String field) {
        JsonNode value = node.get(field);
        return value == null || value.isNull() ? OptionalInt.empty() : OptionalInt.of(value.intValue());
    }

    /** The whole number {@code field}, if {@code node} has it. */
    public static OptionalLong longInteger(JsonNode node, String field) {
        JsonNode value = node.get(field);
        return value == null || value.isNull() ? OptionalLong.empty() : OptionalLong.of(value.longValue());
    }

    /** The duration {@code field}, in the form {@link Durations#format} writes, if {@code node} has it. */
    public static Optional<Duration> duration(JsonNode node, String field) {
        return text(node, field).map(Durations::decode);
    }

    /** The strings of the array {@code field}, unmodifiable; empty if absent. */
    public static List<String> texts(JsonNode node, String field) {
        List<String> list = new ArrayList<>();
        node.path(field).forEach(item -> list.add(item.asText()));
        return Collections.unmodifiableList(list);
    }

    /** The choice {@code field} as a constant of {@code type}, or {@code absent} if not set. */
    public static <E extends Enum<E>> E choice(JsonNode node, String field, Class<E> type, E absent) {
        return text(node, field).map(name -> Enum.valueOf(type, name.toUpperCase(Locale.ROOT))).orElse(absent);
    }

    /** The name of a choice in JSON: {@code FAIL_IMMEDIATELY} is {@code fail_immediately}. */
    public static String name(Enum<?> value) {
        return value.name().toLowerCase(Locale.ROOT);
    }
}
