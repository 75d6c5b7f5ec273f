package dev.baton.junit;

import dev.baton.RunResult;
import dev.baton.StepResult;
import dev.baton.StepStatus;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * A run as {@code baton show} prints it: the run, then one line per step (status, attempts,
 * duration, outputs or error), then the output of the steps that failed. Assertion failures
 * end with it, so that a failing test tells what the run did.
 */
final class StepTable {

    private static final int LOG_LINES = 20;

    private StepTable() {}

    static String of(RunResult run) {
        StringBuilder out = new StringBuilder();
        line(out, "run       %s", run.id());
        line(out, "workflow  %s", run.workflowId());
        line(out, "status    %s", run.status());
        line(out, "created   %s", run.info().created().truncatedTo(ChronoUnit.SECONDS));
        run.info().started().ifPresent(start ->
                line(out, "duration  %s", run.info().ended().map(end -> human(start, end)).orElse("-")));
        if (!run.params().isEmpty()) {
            List<String> params = new ArrayList<>();
            run.params().forEach((k, v) -> params.add(k + "=" + Values.plain(v)));
            line(out, "params    %s", String.join(" ", params));
        }
        run.error().ifPresent(e -> line(out, "error     %s", e));
        line(out, "steps     %s", counts(run.steps()));
        int width = 4;
        for (StepResult s : run.steps()) {
            width = Math.max(width, s.id().length());
        }
        String row = "%-" + width + "s  %-6s  %-9s  %7s  %9s  %s";
        out.append('\n');
        line(out, row, "STEP", "TYPE", "STATUS", "ATTEMPT", "DURATION", "OUTPUTS / ERROR");
        for (StepResult s : run.steps()) {
            String duration = s.started().isPresent() && s.ended().isPresent()
                    ? human(s.started().get(), s.ended().get()) : "-";
            line(out, row, s.id(), s.kind(), s.status(), s.attempts(), duration, detail(s));
        }
        for (StepResult s : run.steps()) {
            boolean troubled = s.status() == StepStatus.FAILED || s.status() == StepStatus.RETRYING
                    || s.status() == StepStatus.STOPPED;
            if (troubled && s.logTail().isPresent()) {
                out.append("\noutput of `").append(s.id()).append("` (attempt ").append(s.attempts())
                        .append(", last lines):\n");
                for (String l : lastLines(s.logTail().get())) {
                    out.append("  | ").append(l).append('\n');
                }
            }
        }
        return out.toString().stripTrailing();
    }

    private static void line(StringBuilder out, String format, Object... args) {
        out.append(String.format(Locale.ROOT, format, args).stripTrailing()).append('\n');
    }

    private static String detail(StepResult s) {
        if (s.error().isPresent()) {
            return (s.failureIgnored() ? "(ignored) " : "") + s.error().get();
        }
        List<String> outputs = new ArrayList<>();
        s.outputs().forEach((k, v) -> outputs.add(k + "=" + Values.plain(v)));
        return String.join(" ", outputs);
    }

    /** {@code 12 (10 succeeded, 1 failed, 1 skipped)}, statuses in their order. */
    private static String counts(List<StepResult> steps) {
        Map<StepStatus, Integer> counts = new EnumMap<>(StepStatus.class);
        steps.forEach(s -> counts.merge(s.status(), 1, Integer::sum));
        List<String> parts = new ArrayList<>();
        counts.forEach((status, n) -> parts.add(n + " " + status.name().toLowerCase(Locale.ROOT)));
        return steps.size() + " (" + String.join(", ", parts) + ")";
    }

    static String human(Instant from, Instant to) {
        long ms = Math.max(0, Duration.between(from, to).toMillis());
        if (ms < 1_000) {
            return ms + "ms";
        }
        if (ms < 60_000) {
            return String.format(Locale.ROOT, "%.1fs", ms / 1000.0);
        }
        if (ms < 3_600_000) {
            return String.format(Locale.ROOT, "%dm%02ds", ms / 60_000, ms / 1000 % 60);
        }
        return String.format(Locale.ROOT, "%dh%02dm", ms / 3_600_000, ms / 60_000 % 60);
    }

    private static List<String> lastLines(String text) {
        List<String> lines = text.stripTrailing().lines().toList();
        return lines.subList(Math.max(0, lines.size() - LOG_LINES), lines.size());
    }
}
