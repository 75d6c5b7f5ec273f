package dev.baton;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.Objects;

/**
 * A registered workflow, as {@link Baton#workflows()} lists it.
 *
 * <pre>{@code
 * for (WorkflowInfo w : baton.workflows()) {
 *     System.out.println(w.id() + " v" + w.activeVersion() + (w.enabled() ? "" : " (disabled)"));
 * }
 * }</pre>
 *
 * @param id the workflow's id
 * @param activeVersion the version that starts and fires
 * @param latestVersion the newest version registered
 * @param enabled whether its triggers fire ({@link Baton#enable}, {@link Baton#disable})
 * @param triggers the number of triggers of the active version
 * @param runStrategy the run strategy of the active version
 */
public record WorkflowInfo(String id, int activeVersion, int latestVersion, boolean enabled, int triggers, RunStrategy runStrategy) {

    public WorkflowInfo {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(runStrategy, "runStrategy");
    }

    /** The engine's JSON form. */
    static WorkflowInfo of(JsonNode w) {
        return new WorkflowInfo(w.path("id").asText(), w.path("active_version").asInt(), w.path("latest_version").asInt(),
                w.path("enabled").asBoolean(true), w.path("triggers").asInt(), RunStrategy.of(w.path("run_strategy").asText("parallel")));
    }
}
