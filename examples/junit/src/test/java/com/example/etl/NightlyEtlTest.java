package com.example.etl;

import static dev.baton.junit.BatonAssertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.baton.Run;
import dev.baton.junit.BatonTest;
import dev.baton.junit.BatonTestEnv;
import dev.baton.junit.StepCall;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The nightly ETL, hours of it in milliseconds: no database, no warehouse, no waiting. */
@BatonTest(start = "2026-11-25T02:00:00Z")
class NightlyEtlTest {

    @Test
    void skipsLoadWhenThereAreNoOrders(BatonTestEnv env) {
        env.register(NightlyEtl.workflow(date -> 0));
        Run run = env.start(NightlyEtl.ID, Map.of("date", "2026-11-24"));

        env.clock().advance(Duration.ofHours(3));

        assertThat(run.await()).succeeded().stepOutput("extract", "rows", 0).stepSkipped("load");
    }

    @Test
    void loadsAfterTheReplicasAndRetriesABusyWarehouse(BatonTestEnv env) {
        env.register(NightlyEtl.workflow(date -> 42));
        env.mockStep(NightlyEtl.ID, "load", ctx -> {          // in place of the shell command
            if (ctx.attempt() < 3) {
                throw new IllegalStateException("warehouse busy");
            }
        });
        Run run = env.start(NightlyEtl.ID, Map.of("date", "2026-11-24"));

        env.clock().advance(Duration.ofMinutes(59));
        assertEquals(List.of(), env.calls(NightlyEtl.ID, "load"), "the replicas get their hour");
        env.clock().advance(Duration.ofHours(2));

        assertThat(run.await()).succeeded().stepAttempts("load", 3);
        List<StepCall> loads = env.calls(NightlyEtl.ID, "load");
        assertEquals(List.of(1, 2, 3), loads.stream().map(StepCall::attempt).toList());
        assertEquals(42L, loads.get(2).input("extract", "rows"));
        assertEquals("2026-11-24", loads.get(2).param("date"));
    }
}
