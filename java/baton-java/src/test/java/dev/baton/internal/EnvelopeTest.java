package dev.baton.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.baton.BatonException;
import dev.baton.DefinitionError;
import dev.baton.InvalidParamException;
import dev.baton.StoreException;
import dev.baton.UnknownRunException;
import dev.baton.UnknownWorkflowException;
import dev.baton.WorkflowDefinitionException;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The native answers and the exceptions they become, without the native library. */
class EnvelopeTest {

    private static RuntimeException error(String kind, String message) {
        return assertThrows(RuntimeException.class, () -> Envelope.unwrap(
                "{\"error\": {\"kind\": \"" + kind + "\", \"message\": \"" + message + "\"}}"));
    }

    @Test
    void okValues() {
        assertEquals(17L, Envelope.unwrap("{\"ok\": 17}").asLong());
        assertEquals("01ABC", Envelope.unwrap("{\"ok\": \"01ABC\"}").asText());
        assertTrue(Envelope.unwrap("{\"ok\": null}").isNull());
        assertEquals(Map.of("a", List.of(1L, 2.5)), JsonCodec.toJava(Envelope.unwrap("{\"ok\": {\"a\": [1, 2.5]}}")));
    }

    @Test
    void eachKindHasItsException() {
        assertInstanceOf(StoreException.class, error("store", "in use by another process (pid 7)"));
        assertInstanceOf(UnknownRunException.class, error("unknown_run", "no run `x`"));
        assertInstanceOf(UnknownWorkflowException.class, error("unknown_workflow", "no workflow `x`"));
        assertInstanceOf(InvalidParamException.class, error("param", "unknown parameter"));
        assertInstanceOf(IllegalStateException.class, error("closed", "this Baton instance is closed"));
        assertInstanceOf(IllegalStateException.class, error("state", "this Baton runs on the system clock"));
        assertEquals(BatonException.class, error("timeout", "the engine is still busy").getClass());
        RuntimeException internal = error("internal", "internal error in the native library: boom");
        assertEquals(BatonException.class, internal.getClass());
        assertEquals("internal error in the native library: boom", internal.getMessage());
        assertEquals(BatonException.class, error("something_new", "x").getClass());
        assertEquals("in use by another process (pid 7)", error("store", "in use by another process (pid 7)").getMessage());
    }

    @Test
    void definitionErrorsCarryEveryProblemWithItsPlace() {
        WorkflowDefinitionException e = assertThrows(WorkflowDefinitionException.class, () -> Envelope.unwrap("""
                {"error": {"kind": "definition", "message": "two problems", "errors": [
                  {"file": "etl.yaml", "line": 7, "column": 5, "step": "load", "field": "type", "message": "unknown step type `shel`"},
                  {"step": "a", "field": "depends_on.0", "message": "unknown step `b`"},
                  {"message": "a cycle: a -> c -> a"}
                ]}}""", "etl"));

        assertEquals("etl", e.workflowId());
        assertEquals(List.of(
                new DefinitionError("load", "type", "unknown step type `shel`", "etl.yaml", 7, 5),
                new DefinitionError("a", "depends_on.0", "unknown step `b`"),
                new DefinitionError(null, null, "a cycle: a -> c -> a")), e.errors());
        assertEquals("etl.yaml:7:5: step `load`: type: unknown step type `shel`", e.errors().get(0).toString());
        assertTrue(e.getMessage().contains("(3 problems)"), e.getMessage());
    }

    @Test
    void aDefinitionErrorWithoutAListKeepsItsMessage() {
        WorkflowDefinitionException e = assertThrows(WorkflowDefinitionException.class, () -> Envelope.unwrap(
                "{\"error\": {\"kind\": \"definition\", \"message\": \"`shell` is a built-in step type\"}}"));
        assertEquals(List.of(new DefinitionError(null, null, "`shell` is a built-in step type")), e.errors());
    }

    @Test
    void malformedAnswersAreInternalErrors() {
        assertThrows(BatonException.class, () -> Envelope.unwrap("{\"neither\": 1}"));
        assertThrows(BatonException.class, () -> Envelope.unwrap(null));
        assertThrows(IllegalStateException.class, () -> Envelope.unwrap("{not json"));
    }
}
