package dev.baton.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.baton.NativeLibraryException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.MalformedURLException;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class NativeLoaderTest {

    @TempDir
    Path tmp;

    @ParameterizedTest
    @CsvSource({
        "Linux, linux",
        "Mac OS X, macos",
        "Darwin, macos",
        "Windows 10, windows",
        "Windows Server 2022, windows",
        "FreeBSD, freebsd",
    })
    void normalizesOsNames(String osName, String os) {
        assertEquals(os, NativeLoader.normalizeOs(osName));
    }

    @ParameterizedTest
    @CsvSource({
        "amd64, x86_64",
        "x86_64, x86_64",
        "x86-64, x86_64",
        "AMD64, x86_64",
        "aarch64, aarch64",
        "arm64, aarch64",
        "riscv64, riscv64",
    })
    void normalizesArchitectures(String osArch, String arch) {
        assertEquals(arch, NativeLoader.normalizeArch(osArch));
    }

    @Test
    void resourcePathsFollowTheJarLayout() {
        assertEquals("/dev/baton/native/linux/x86_64/libbaton_jni.so", NativeLoader.resourcePath("linux", "x86_64"));
        assertEquals("/dev/baton/native/macos/aarch64/libbaton_jni.dylib", NativeLoader.resourcePath("macos", "aarch64"));
        assertEquals("/dev/baton/native/windows/x86_64/baton_jni.dll", NativeLoader.resourcePath("windows", "x86_64"));
    }

    @Test
    void aMissingPlatformNamesItAndWhatTheJarCarries() {
        Function<String, URL> jar = resources(Map.of(
                "/dev/baton/native/linux/aarch64/libbaton_jni.so", "elf",
                "/dev/baton/native/macos/aarch64/libbaton_jni.dylib", "mach-o"));

        NativeLibraryException e = assertThrows(NativeLibraryException.class,
                () -> NativeLoader.locate(null, "linux", "x86_64", jar, tmp));

        assertTrue(e.getMessage().startsWith(
                "this Baton jar has no native library for linux/x86_64 (it carries: linux/aarch64, macos/aarch64)"),
                e.getMessage());
        assertTrue(e.getMessage().contains("-Dbaton.native.path="), e.getMessage());
    }

    @Test
    void aJarWithoutLibrariesSaysSo() {
        NativeLibraryException e = assertThrows(NativeLibraryException.class,
                () -> NativeLoader.locate(null, "freebsd", "riscv64", name -> null, tmp));
        assertTrue(e.getMessage().contains("freebsd/riscv64 (it carries: none)"), e.getMessage());
    }

    @Test
    void aBadPathPropertyNamesThePath() throws IOException {
        Path missing = tmp.resolve("nope/libbaton_jni.so");
        NativeLibraryException e = assertThrows(NativeLibraryException.class,
                () -> NativeLoader.locate(missing.toString(), "linux", "x86_64", name -> null, tmp));
        assertEquals("baton.native.path is " + missing + ", which does not exist", e.getMessage());

        NativeLibraryException dir = assertThrows(NativeLibraryException.class,
                () -> NativeLoader.locate(tmp.toString(), "linux", "x86_64", name -> null, tmp));
        assertEquals("baton.native.path is " + tmp + ", which is not a file", dir.getMessage());

        Path file = Files.writeString(tmp.resolve("libbaton_jni.so"), "elf");
        assertEquals(file, NativeLoader.locate(file.toString(), "linux", "x86_64", name -> null, tmp),
                "the property wins over the jar");
    }

    @Test
    void eachLoadGetsItsOwnVersionedCopy() throws IOException {
        Function<String, URL> jar = resources(Map.of("/dev/baton/native/linux/x86_64/libbaton_jni.so", "elf bytes"));
        Path dir = tmp.resolve("extracted");

        Path first = NativeLoader.locate(null, "linux", "x86_64", jar, dir);
        Path second = NativeLoader.locate(null, "linux", "x86_64", jar, dir);

        assertNotEquals(first, second, "two class loaders must not share one file");
        String name = first.getFileName().toString();
        assertTrue(name.startsWith("libbaton_jni-" + NativeLoader.version() + "-") && name.endsWith(".so"), name);
        assertArrayEquals("elf bytes".getBytes(StandardCharsets.UTF_8), Files.readAllBytes(second));
    }

    @Test
    void theVersionComesFromTheBuild() {
        String version = NativeLoader.version();
        assertTrue(version.matches("\\d+\\.\\d+\\.\\d+.*"), version);
    }

    @Test
    void aFileThatFailsToLinkNamesThePath() throws IOException {
        Path bogus = Files.writeString(tmp.resolve("libbaton_jni.so"), "not a shared object");
        NativeLoader loader = new NativeLoader(path -> {
            throw new UnsatisfiedLinkError(path + ": invalid ELF header");
        });

        NativeLibraryException e = assertThrows(NativeLibraryException.class,
                () -> loader.loadOnce(properties(bogus), name -> null));

        assertEquals("cannot load Baton's native library " + bogus + ": " + bogus.toAbsolutePath() + ": invalid ELF header",
                e.getMessage());
        assertTrue(e.getCause() instanceof UnsatisfiedLinkError);
    }

    @Test
    void loadsOnceWhateverTheThreads() throws Exception {
        Path library = Files.writeString(tmp.resolve("libbaton_jni.so"), "elf");
        AtomicInteger loads = new AtomicInteger();
        NativeLoader loader = new NativeLoader(path -> loads.incrementAndGet());
        ExecutorService pool = Executors.newFixedThreadPool(4);
        try {
            List<Future<Path>> results = new ArrayList<>();
            for (int i = 0; i < 16; i++) {
                results.add(pool.submit(() -> loader.loadOnce(properties(library), name -> null)));
            }
            for (Future<Path> result : results) {
                assertEquals(library, result.get());
            }
        } finally {
            pool.shutdown();
        }
        assertEquals(1, loads.get());
    }

    @Test
    void extractsTheJarsLibraryForThisPlatform() {
        Function<String, URL> jar = resources(Map.of("/dev/baton/native/macos/aarch64/libbaton_jni.dylib", "mach-o"));
        List<String> loaded = new ArrayList<>();
        Properties properties = new Properties();
        properties.setProperty("os.name", "Mac OS X");
        properties.setProperty("os.arch", "arm64");
        properties.setProperty(NativeLoader.TMPDIR_PROPERTY, tmp.resolve("native").toString());

        Path file = new NativeLoader(loaded::add).loadOnce(properties, jar);

        assertEquals(List.of(file.toAbsolutePath().toString()), loaded);
        assertEquals(tmp.resolve("native"), file.getParent());
        assertTrue(file.getFileName().toString().endsWith(".dylib"), file.toString());
        assertFalse(Files.exists(file), "the extracted copy is removed once loaded");
    }

    private static Properties properties(Path library) {
        Properties properties = new Properties();
        properties.setProperty(NativeLoader.PATH_PROPERTY, library.toString());
        properties.setProperty("os.name", "Linux");
        properties.setProperty("os.arch", "amd64");
        return properties;
    }

    /** A class loader's view of a jar holding {@code files} (resource path to content). */
    private Function<String, URL> resources(Map<String, String> files) {
        return name -> {
            String content = files.get(name);
            if (content == null) {
                return null;
            }
            try {
                Path file = Files.createTempFile(tmp, "resource", ".bin");
                Files.writeString(file, content);
                return file.toUri().toURL();
            } catch (MalformedURLException e) {
                throw new IllegalStateException(e);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        };
    }
}
