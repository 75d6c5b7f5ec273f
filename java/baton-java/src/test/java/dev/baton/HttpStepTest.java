package dev.baton;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.sun.net.httpserver.HttpServer;
import dev.baton.internal.JsonCodec;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** {@code http} steps from the DSL, against a server of the JDK's on 127.0.0.1. */
@Timeout(60)
class HttpStepTest {

    private static final String SECRET = "tok-h77p-5ecr3t";

    /** What the server got: method, request URI as sent, Authorization header, body. */
    private final List<List<String>> got = new CopyOnWriteArrayList<>();
    private HttpServer server;
    private String base;

    @BeforeEach
    void startTheServer() throws IOException {
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        server.createContext("/", exchange -> {
            String body = new String(exchange.getRequestBody().readAllBytes(), StandardCharsets.UTF_8);
            String auth = String.valueOf(exchange.getRequestHeaders().getFirst("Authorization"));
            got.add(List.of(exchange.getRequestMethod(), exchange.getRequestURI().getRawPath()
                    + "?" + exchange.getRequestURI().getRawQuery(), auth, body));
            boolean missing = exchange.getRequestURI().getPath().startsWith("/missing");
            byte[] answer = (missing ? "{\"error\": \"no such item\"}" : "{\"id\": 42, \"data\": {\"items\": [{\"name\": \"first\"}]}}")
                    .getBytes(StandardCharsets.UTF_8);
            exchange.getResponseHeaders().add("Content-Type", "application/json");
            exchange.sendResponseHeaders(missing ? 404 : 201, answer.length);
            exchange.getResponseBody().write(answer);
            exchange.close();
        });
        server.start();
        base = "http://127.0.0.1:" + server.getAddress().getPort();
    }

    @AfterEach
    void stopTheServer() {
        server.stop(0);
    }

    private Workflow workflow() {
        return Workflow.named("api")
                .param("base", base)
                .param("name", "x")
                .secretParam("token")
                .step("create", s -> s.http("POST", "${raw(base)}/items/${name}")
                        .header("Authorization", "Bearer ${token}")
                        .jsonBody(Map.of("name", "${name}", "tags", List.of("a", "${name}")))
                        .expect(201)
                        .output("id", "id")
                        .output("first", "data.items.0.name"))
                .step("missing", s -> s.dependsOn("create").http("${raw(base)}/missing/${create.id}")
                        .failureMode(FailureMode.IGNORE_FAILURE))
                .build();
    }

    @Test
    void anHttpStepValidatesAndRoundTripsThroughTheCore() {
        Workflow workflow = workflow();
        Step create = workflow.steps().get(0);
        assertEquals(Step.HTTP, create.kind());
        assertEquals("POST", create.method().orElseThrow());
        assertEquals("${raw(base)}/items/${name}", create.url().orElseThrow());
        assertEquals(Map.of("Authorization", "Bearer ${token}"), create.headers());
        assertEquals(Map.of("name", "${name}", "tags", List.of("a", "${name}")), create.requestBody().orElseThrow());
        assertEquals(List.of(201), create.expect());
        assertEquals(Map.of("id", "id", "first", "data.items.0.name"), create.outputs());
        // The core reads it back as the same step.
        Workflow again = Workflow.fromJson(workflow.toJson());
        Json.assertJsonEquals(workflow.toJson(), again.toJson());
        assertEquals(create.outputs(), again.steps().get(0).outputs());

        WorkflowDefinitionException e = assertThrows(WorkflowDefinitionException.class, () -> Workflow.named("w")
                .step("a", s -> s.http("FETCH", "http://localhost/").expect(42).output("status", "x"))
                .build());
        assertTrue(e.getMessage().contains("`FETCH` is not a method an http step sends"), e.getMessage());
        assertTrue(e.getMessage().contains("`42` is not a status code"), e.getMessage());
        assertTrue(e.getMessage().contains("`status` is always an output"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Workflow.named("w").step("a", s -> s.http("POST", "http://x/").jsonBody("text")));
    }

    @Test
    void anHttpStepSendsItsRequestAndGivesBackWhatItPicked() {
        try (Baton baton = Baton.inMemory()) {
            baton.register(workflow());
            String hostile = "x&admin=1/é";
            RunResult result = baton.start("api", Map.of("token", SECRET, "name", hostile)).await(Duration.ofSeconds(30));

            assertEquals(RunStatus.SUCCEEDED, result.status(), result::toString);
            assertEquals(201L, result.step("create").output("status"));
            assertEquals(42L, result.step("create").output("id"));
            assertEquals("first", result.step("create").output("first"));
            List<String> create = got.get(0);
            assertEquals("POST", create.get(0));
            assertEquals("/items/x%26admin%3D1%2F%C3%A9?null", create.get(1));
            assertEquals("Bearer " + SECRET, create.get(2));
            assertEquals(Json.tree(JsonCodec.write(Map.of("name", hostile, "tags", List.of("a", hostile)))), Json.tree(create.get(3)));

            StepResult missing = result.step("missing");
            assertEquals(StepStatus.FAILED, missing.status());
            assertEquals("GET " + base + "/missing/42: unexpected status 404 Not Found (expected 2xx); "
                    + "the response body begins: {\"error\": \"no such item\"}", missing.error().orElseThrow());
            assertFalse((result + " " + result.steps()).contains(SECRET));
        }
    }
}
