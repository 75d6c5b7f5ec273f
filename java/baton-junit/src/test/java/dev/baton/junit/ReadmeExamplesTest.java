package dev.baton.junit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import javax.tools.Diagnostic;
import javax.tools.DiagnosticCollector;
import javax.tools.JavaCompiler;
import javax.tools.JavaFileObject;
import javax.tools.SimpleJavaFileObject;
import javax.tools.StandardJavaFileManager;
import javax.tools.ToolProvider;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Java examples of README.md and java/README.md compile against this build: each
 * {@code ```java} block, as a method body (or, for a block declaring a class, as a class), with
 * stubs for the user's own names the examples use ({@code countRows}, {@code podName}, ...). An
 * API change that breaks an example fails here, naming the file and line.
 */
class ReadmeExamplesTest {

    private static final String IMPORTS = String.join("\n",
            "package readme;",
            "import dev.baton.*;",
            "import dev.baton.junit.*;",
            "import java.nio.file.*;",
            "import java.time.*;",
            "import java.util.*;",
            "import org.junit.jupiter.api.Test;",
            "");

    /** The user's own code the examples call. */
    private static final String STUBS = IMPORTS + String.join("\n",
            "abstract class Stubs {",
            "    interface Log { void info(String format, Object... args); }",
            "    interface Dataset { long count(); }",
            "    interface Spark { Dataset sql(String query); }",
            "    Baton baton; Workflow nightlyEtl; String podName; String json; Path file; JavaStep code; Log log; Spark spark;",
            "    long countRows(String date) { return 42; }",
            "    void transform(String key) {}",
            "    long load(String partition) { return 1; }",
            "    boolean exportDone() { return true; }",
            "    long count(String date) { return 42; }",
            "}",
            "class Pipelines { static Workflow nightlyEtl() { return null; } }",
            "");

    @TempDir
    Path out;

    /** One {@code ```java} block: where it starts (the line after the fence) and its text. */
    record Block(String file, int line, String text) {}

    @Test
    void theReadmesJavaExamplesCompile() throws IOException {
        Path repo = Path.of("").toAbsolutePath().getParent().getParent();
        List<Block> blocks = new ArrayList<>();
        blocks.addAll(blocks(repo, "README.md"));
        blocks.addAll(blocks(repo, "java/README.md"));
        assertTrue(blocks.size() >= 8, "the READMEs' Java examples: " + blocks.size());

        List<JavaFileObject> sources = new ArrayList<>();
        sources.add(source("Stubs", STUBS));
        List<Integer> offsets = new ArrayList<>();
        for (int i = 0; i < blocks.size(); i++) {
            Block b = blocks.get(i);
            boolean declaresClass = b.text().lines().anyMatch(l -> l.startsWith("class ") || l.startsWith("@"));
            String head = declaresClass ? IMPORTS : IMPORTS + "class Example" + i + " extends Stubs { void example() throws Exception {\n";
            String tail = declaresClass ? "" : "\n}}\n";
            offsets.add((int) head.lines().count());
            sources.add(source(declaresClass ? b.text().lines().filter(l -> l.startsWith("class "))
                    .findFirst().orElseThrow().split("\\s+")[1] : "Example" + i, head + b.text() + tail));
        }

        JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
        DiagnosticCollector<JavaFileObject> diagnostics = new DiagnosticCollector<>();
        try (StandardJavaFileManager files = javac.getStandardFileManager(diagnostics, Locale.ROOT, null)) {
            List<String> options = List.of("-d", out.toString(), "-classpath", System.getProperty("java.class.path"),
                    "-proc:none", "-Xlint:none");
            boolean ok = javac.getTask(new StringWriter(), files, diagnostics, options, null, sources).call();
            StringBuilder problems = new StringBuilder();
            for (Diagnostic<? extends JavaFileObject> d : diagnostics.getDiagnostics()) {
                if (d.getKind() != Diagnostic.Kind.ERROR) {
                    continue;
                }
                int index = sources.indexOf(d.getSource()) - 1;
                String where = index < 0 ? "the stubs" : blocks.get(index).file() + ":"
                        + (blocks.get(index).line() + d.getLineNumber() - 1 - offsets.get(index));
                problems.append(where).append(": ").append(d.getMessage(Locale.ROOT)).append('\n');
            }
            assertEquals("", problems.toString(), "README examples that do not compile");
            assertTrue(ok, diagnostics.getDiagnostics().toString());
        }
    }

    private static List<Block> blocks(Path repo, String name) throws IOException {
        List<String> lines = Files.readAllLines(repo.resolve(name));
        List<Block> blocks = new ArrayList<>();
        for (int i = 0; i < lines.size(); i++) {
            if (lines.get(i).equals("```java")) {
                int start = i + 1;
                StringBuilder text = new StringBuilder();
                for (i = start; i < lines.size() && !lines.get(i).startsWith("```"); i++) {
                    text.append(lines.get(i)).append('\n');
                }
                blocks.add(new Block(name, start + 1, text.toString()));
            }
        }
        return blocks;
    }

    private static JavaFileObject source(String className, String text) {
        return new SimpleJavaFileObject(java.net.URI.create("string:///readme/" + className + ".java"),
                JavaFileObject.Kind.SOURCE) {
            @Override
            public CharSequence getCharContent(boolean ignoreEncodingErrors) {
                return text;
            }
        };
    }
}
