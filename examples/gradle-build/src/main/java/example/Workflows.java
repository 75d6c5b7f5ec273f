package example;

import dev.baton.Workflow;
import java.util.List;

/** The build's Java workflows: `provider = 'example.Workflows#report'` in build.gradle. */
public final class Workflows {

    private Workflows() {}

    /** Counts the words of a few lines in Java, then prints the total from a shell step. */
    public static Workflow report() {
        return Workflow.named("report")
            .param("title", "Weekly report")
            .step("count", s -> s.java(ctx -> {
                List<String> lines = List.of("extract the rows", "load them", ctx.param("title"));
                long words = lines.stream().mapToLong(line -> line.split("\\s+").length).sum();
                ctx.output("words", words);
            }))
            .step("summarize", s -> s.dependsOn("count").java(ctx ->
                ctx.output("summary", ctx.param("title") + ": " + ctx.input("count", "words") + " words")))
            .step("print", s -> s.dependsOn("summarize").shell("echo '${summarize.summary}'"))
            .build();
    }
}
