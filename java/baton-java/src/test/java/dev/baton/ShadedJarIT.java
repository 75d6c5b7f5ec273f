package dev.baton;

import static dev.baton.Json.assertJsonEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.jar.Attributes;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/** The jar users get: Jackson inside it, relocated, and nothing else needed beside it. */
class ShadedJarIT {

    private static final Path JAR = Path.of(System.getProperty("baton.shadedJar"));

    @Test
    void jacksonIsRelocated() throws Exception {
        try (JarFile jar = new JarFile(JAR.toFile())) {
            List<String> names = jar.stream().map(JarEntry::getName).collect(Collectors.toList());
            List<String> leaked = names.stream()
                    .filter(n -> n.contains("com/fasterxml") || n.contains("com.fasterxml"))
                    .collect(Collectors.toList());

            assertEquals(List.of(), leaked);
            assertTrue(names.contains("dev/baton/shaded/jackson/databind/ObjectMapper.class"));
            assertTrue(names.contains("dev/baton/Workflow.class"));
            Attributes manifest = jar.getManifest().getMainAttributes();
            assertEquals("dev.baton", manifest.getValue("Automatic-Module-Name"));
            assertNotNull(manifest.getValue("Implementation-Version"));
        }
    }

    @Test
    void worksAloneOnAClassLoader() throws Exception {
        String json = "{\"id\": \"w\", \"params\": {\"n\": 1}, \"steps\": [{\"id\": \"a\", \"type\": \"noop\"}]}";
        try (URLClassLoader loader = new URLClassLoader(new URL[] {JAR.toUri().toURL()}, ClassLoader.getPlatformClassLoader())) {
            Class<?> workflow = loader.loadClass("dev.baton.Workflow");
            Object w = workflow.getMethod("fromJson", String.class).invoke(null, json);
            assertJsonEquals(json, (String) workflow.getMethod("toJson").invoke(w));
        }
    }

    @Test
    void thePublishedPomDoesNotListJackson() throws Exception {
        String pom = Files.readString(JAR.resolveSibling("dependency-reduced-pom.xml"));
        assertTrue(pom.contains("<artifactId>baton-java</artifactId>"));
        assertFalse(pom.contains("<groupId>com.fasterxml"), pom);
    }
}
