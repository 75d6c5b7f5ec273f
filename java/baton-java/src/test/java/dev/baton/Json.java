package dev.baton;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

/** Compares JSON texts as trees: field order and spacing do not matter, values do. */
final class Json {
    private static final ObjectMapper MAPPER = new ObjectMapper();

    private Json() {}

    static JsonNode tree(String json) {
        try {
            return MAPPER.readTree(json);
        } catch (Exception e) {
            throw new AssertionError("not JSON: " + json, e);
        }
    }

    static void assertJsonEquals(String expected, String actual) {
        assertEquals(tree(expected), tree(actual), () -> "expected " + expected + "\n but was " + actual);
    }
}
