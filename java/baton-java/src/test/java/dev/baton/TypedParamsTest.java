package dev.baton;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** {@code .requiredParam} and {@code .computedParam}: declared in Java, enforced and computed by the core. */
@Timeout(60)
class TypedParamsTest {

    private static Workflow load(List<Object> seen) {
        return Workflow.named("load")
                .param("days", 7)
                .requiredParam("day", ParamType.INTEGER)
                .computedParam("window", "${days * 24}")
                .computedParam("label", "${str(day) + '+' + str(window)}")
                .step("run", s -> s.java(ctx -> {
                    seen.add(ctx.param("day"));
                    seen.add(ctx.param("label"));
                }))
                .build();
    }

    @Test
    void aRequiredParamIsGivenByTheStartAndComputedOnesAreComputedAtTheStart() throws Exception {
        List<Object> seen = new CopyOnWriteArrayList<>();
        try (Baton baton = Baton.inMemory()) {
            baton.register(load(seen));
            InvalidParamException missing = assertThrows(InvalidParamException.class, () -> baton.start("load", Map.of()));
            assertTrue(missing.getMessage().contains("parameter `day` (integer) has no default"), missing.getMessage());
            InvalidParamException wrong = assertThrows(InvalidParamException.class,
                    () -> baton.start("load", Map.of("day", "monday")));
            assertTrue(wrong.getMessage().contains("parameter `day`"), wrong.getMessage());

            RunResult result = baton.start("load", Map.of("day", 20261201)).await(Duration.ofSeconds(30));

            assertEquals(RunStatus.SUCCEEDED, result.status(), result::toString);
            assertEquals(List.of("20261201", "20261201+168"), seen.stream().map(String::valueOf).toList());
            assertEquals("168", String.valueOf(result.params().get("window")));
        }
    }

    @Test
    void aComputedParamNamingASecretIsRefusedAtBuild() {
        WorkflowDefinitionException e = assertThrows(WorkflowDefinitionException.class, () -> Workflow.named("w")
                .secretParam("token")
                .computedParam("copy", "${token}")
                .step("a", s -> s.noop())
                .build());
        assertTrue(e.getMessage().contains("computed.copy: column 3: `token` is a secret"), e.getMessage());
    }
}
