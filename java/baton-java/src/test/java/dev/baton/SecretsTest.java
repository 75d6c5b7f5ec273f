package dev.baton;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** {@code .secretParam}: the step's context has the value, nothing the engine gives back does. */
@Timeout(60)
class SecretsTest {

    private static final String SECRET = "tok-j4v4-5ecr3t";

    private static Workflow deploy(List<String> seen) {
        return Workflow.named("deploy")
                .param("region", "eu")
                .secretParam("token")
                .step("login", s -> s.java(ctx -> {
                    seen.add(ctx.param("token"));
                    ctx.output("echo", "logged in with " + ctx.param("token"));
                }))
                .step("shell", s -> s.dependsOn("login")
                        .env("API_TOKEN", "${token}")
                        .shell("test \"$API_TOKEN\" = \"${token}\" && echo \"shell has ${token}\""))
                .step("fails", s -> s.failureMode(FailureMode.IGNORE_FAILURE).java(ctx -> {
                    throw new IllegalStateException("refused: " + ctx.param("token"));
                }))
                .build();
    }

    @Test
    void aSecretParamReachesTheStepsAndNothingShowsIt() {
        List<String> seen = new CopyOnWriteArrayList<>();
        List<RunEvent> events = new CopyOnWriteArrayList<>();
        try (Baton baton = Baton.inMemory(); AutoCloseable sub = baton.onEvent(events::add)) {
            Workflow workflow = deploy(seen);
            assertEquals(List.of("token"), workflow.secretParams());
            assertTrue(workflow.toJson().contains("\"secrets\":[\"token\"]"), workflow.toJson());
            baton.register(workflow);

            RunResult result = baton.start("deploy", Map.of("token", SECRET)).await(Duration.ofSeconds(30));

            assertEquals(RunStatus.SUCCEEDED, result.status(), result::toString);
            assertEquals(List.of(SECRET), seen);
            assertEquals(StepStatus.SUCCEEDED, result.step("shell").status());
            assertEquals("***", result.params().get("token"));
            assertEquals("logged in with ***", result.step("login").output("echo"));
            assertEquals("shell has ***", result.step("shell").logTail().orElseThrow().trim());
            assertTrue(result.step("fails").error().orElseThrow().contains("refused: ***"), result::toString);
            String shown = result + " " + result.steps() + " " + baton.runs() + " " + baton.timeline(result.id())
                    + " " + baton.run(result.id()) + " " + events;
            assertFalse(shown.contains(SECRET), shown);
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }

    @Test
    void aStartWithoutTheSecretIsRefusedNamingIt() {
        try (Baton baton = Baton.inMemory()) {
            baton.register(deploy(new CopyOnWriteArrayList<>()));
            InvalidParamException e = assertThrows(InvalidParamException.class, () -> baton.start("deploy", Map.of()));
            assertTrue(e.getMessage().contains("secret `token` is not given"), e.getMessage());
        }
    }

    @Test
    void aSecretWithADefaultIsRefusedByTheCore() {
        WorkflowDefinitionException e = assertThrows(WorkflowDefinitionException.class, () -> Workflow.named("w")
                .param("token", "x")
                .secretParam("token")
                .step("a", s -> s.noop())
                .build());
        assertTrue(e.getMessage().contains("a secret has no default"), e.getMessage());
    }
}
