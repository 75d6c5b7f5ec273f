package dev.baton.internal;

import com.fasterxml.jackson.databind.JsonNode;
import dev.baton.BatonException;
import dev.baton.DefinitionError;
import dev.baton.IllegalActionException;
import dev.baton.InvalidParamException;
import dev.baton.InvalidRequestException;
import dev.baton.RunRejectedException;
import dev.baton.StoreException;
import dev.baton.UnknownRunException;
import dev.baton.UnknownStepException;
import dev.baton.UnknownVersionException;
import dev.baton.UnknownWorkflowException;
import dev.baton.WorkflowDefinitionException;
import java.util.ArrayList;
import java.util.List;

/**
 * The one place where the native library's answers become values or exceptions. An answer is
 * {@code {"ok": value}} or {@code {"error": {"kind", "message", "errors"?}}}; each kind has its
 * exception:
 *
 * <table>
 *   <caption>error kinds</caption>
 *   <tr><th>kind</th><th>exception</th></tr>
 *   <tr><td>{@code definition}</td><td>{@link WorkflowDefinitionException}, with every error</td></tr>
 *   <tr><td>{@code store}</td><td>{@link StoreException}</td></tr>
 *   <tr><td>{@code unknown_run}</td><td>{@link UnknownRunException}</td></tr>
 *   <tr><td>{@code unknown_workflow}</td><td>{@link UnknownWorkflowException}</td></tr>
 *   <tr><td>{@code unknown_version}</td><td>{@link UnknownVersionException}</td></tr>
 *   <tr><td>{@code unknown_step}</td><td>{@link UnknownStepException}</td></tr>
 *   <tr><td>{@code illegal_action}</td><td>{@link IllegalActionException}</td></tr>
 *   <tr><td>{@code run_rejected}</td><td>{@link RunRejectedException}</td></tr>
 *   <tr><td>{@code invalid_request}</td><td>{@link InvalidRequestException}</td></tr>
 *   <tr><td>{@code param}</td><td>{@link InvalidParamException}</td></tr>
 *   <tr><td>{@code closed}</td><td>{@link IllegalStateException}</td></tr>
 *   <tr><td>{@code internal}, others</td><td>{@link BatonException}</td></tr>
 * </table>
 *
 * <pre>{@code
 * String runId = Envelope.unwrap(NativeBridge.start(handle, "etl", "{}")).asText();
 * }</pre>
 */
public final class Envelope {

    private Envelope() {}

    /**
     * The {@code ok} value of an answer (a {@code NullNode} for null).
     *
     * @param workflowId the workflow the call was about, for definition errors; may be null
     */
    public static JsonNode unwrap(String answer, String workflowId) {
        if (answer == null) {
            throw new BatonException("internal error in the native library: no answer");
        }
        JsonNode root = JsonCodec.parse(answer);
        if (root.has("ok")) {
            return root.get("ok");
        }
        JsonNode error = root.path("error");
        if (!error.isObject()) {
            throw new BatonException("internal error in the native library: an answer with neither ok nor error: " + answer);
        }
        throw exception(error, workflowId);
    }

    /** {@link #unwrap(String, String)} for calls about no workflow in particular. */
    public static JsonNode unwrap(String answer) {
        return unwrap(answer, null);
    }

    static RuntimeException exception(JsonNode error, String workflowId) {
        ErrorKind kind = ErrorKind.of(error.path("kind").asText("internal"));
        String message = error.path("message").asText("(no message)");
        return switch (kind) {
            case DEFINITION -> new WorkflowDefinitionException(workflowId, definitionErrors(error.path("errors"), message));
            case STORE -> new StoreException(message);
            case UNKNOWN_RUN -> new UnknownRunException(message);
            case UNKNOWN_WORKFLOW -> new UnknownWorkflowException(message);
            case UNKNOWN_VERSION -> new UnknownVersionException(message);
            case UNKNOWN_STEP -> new UnknownStepException(message);
            case ILLEGAL_ACTION -> new IllegalActionException(message);
            case RUN_REJECTED -> new RunRejectedException(message);
            case INVALID_REQUEST -> new InvalidRequestException(message);
            case PARAM -> new InvalidParamException(message);
            case CLOSED, STATE -> new IllegalStateException(message);
            case TIMEOUT, INTERNAL -> new BatonException(message);
        };
    }

    private static List<DefinitionError> definitionErrors(JsonNode errors, String message) {
        List<DefinitionError> list = new ArrayList<>();
        if (errors.isArray()) {
            for (JsonNode e : errors) {
                list.add(new DefinitionError(
                        text(e, "step"), text(e, "field"), e.path("message").asText(""),
                        text(e, "file"), e.path("line").asInt(0), e.path("column").asInt(0)));
            }
        }
        if (list.isEmpty()) {
            list.add(new DefinitionError(null, null, message));
        }
        return list;
    }

    private static String text(JsonNode node, String field) {
        JsonNode value = node.get(field);
        return value == null || value.isNull() ? null : value.asText();
    }
}
