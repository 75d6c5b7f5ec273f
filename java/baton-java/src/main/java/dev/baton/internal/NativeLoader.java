package dev.baton.internal;

import dev.baton.NativeLibraryException;
import java.io.IOException;
import java.io.InputStream;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Properties;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * Loads Baton's native library ({@code libbaton_jni}) once per class loader.
 *
 * <p>Where it comes from, in order:
 * <ol>
 *   <li>the system property {@value #PATH_PROPERTY}, a file path (a library built locally);
 *   <li>the jar's resource {@code /dev/baton/native/<os>/<arch>/libbaton_jni.so} ({@code .dylib}
 *       on macOS, {@code baton_jni.dll} on Windows), copied to a fresh temporary file whose name
 *       carries the library's version, deleted once loaded (at JVM exit on Windows). The directory is
 *       {@value #TMPDIR_PROPERTY}, else {@code java.io.tmpdir}.
 * </ol>
 *
 * <p>A fresh copy per class loader matters: JNI refuses to load one file in two class loaders,
 * and a Gradle daemon or a Spark executor loads Baton in several.
 *
 * <pre>{@code
 * NativeLoader.load(); // before the first native call; cheap after the first time
 * }</pre>
 */
public final class NativeLoader {

    /** System property: the path of the library to load instead of the jar's. */
    public static final String PATH_PROPERTY = "baton.native.path";
    /** System property: the directory the jar's library is extracted to. */
    public static final String TMPDIR_PROPERTY = "baton.native.tmpdir";

    static final List<String> OSES = List.of("linux", "macos", "windows");
    static final List<String> ARCHES = List.of("x86_64", "aarch64");

    private static final NativeLoader INSTANCE = new NativeLoader(System::load);

    private final Consumer<String> systemLoad;
    private volatile Path loaded;

    /** A loader that loads a file with {@code systemLoad} ({@link System#load} but in tests). */
    NativeLoader(Consumer<String> systemLoad) {
        this.systemLoad = systemLoad;
    }

    /**
     * Loads the library, unless this class loader already did; thread safe.
     *
     * @return the file loaded
     * @throws NativeLibraryException naming the platform or the path when it cannot be loaded
     */
    public static Path load() {
        return INSTANCE.loadOnce(System.getProperties(), NativeLoader.class::getResource);
    }

    /** Loads the library as {@code properties} say, once; later calls return the same file. */
    Path loadOnce(Properties properties, Function<String, URL> resources) {
        Path path = loaded;
        if (path != null) {
            return path;
        }
        synchronized (this) {
            if (loaded == null) {
                Path tmp = Path.of(properties.getProperty(TMPDIR_PROPERTY, properties.getProperty("java.io.tmpdir", ".")));
                String override = properties.getProperty(PATH_PROPERTY);
                String os = normalizeOs(properties.getProperty("os.name", ""));
                Path file = locate(override, os, normalizeArch(properties.getProperty("os.arch", "")), resources, tmp);
                try {
                    systemLoad.accept(file.toAbsolutePath().toString());
                } catch (UnsatisfiedLinkError e) {
                    throw new NativeLibraryException("cannot load Baton's native library " + file + ": " + e.getMessage(), e);
                } finally {
                    // Loaded (or not), the copy is no longer needed where unlinking an open file
                    // is allowed: a JVM that is killed leaves nothing behind in the temporary directory.
                    if (override == null && !os.equals("windows")) {
                        try {
                            Files.deleteIfExists(file);
                        } catch (IOException e) {
                            // deleteOnExit stays in place
                        }
                    }
                }
                loaded = file;
            }
            return loaded;
        }
    }

    /**
     * The library file to load: {@code override} if set, else the jar's library for
     * {@code os}/{@code arch}, found with {@code resources} and extracted to {@code tmpDir}.
     */
    static Path locate(String override, String os, String arch, Function<String, URL> resources, Path tmpDir) {
        if (override != null) {
            Path path = Path.of(override);
            if (!Files.exists(path)) {
                throw new NativeLibraryException(PATH_PROPERTY + " is " + override + ", which does not exist");
            }
            if (!Files.isRegularFile(path)) {
                throw new NativeLibraryException(PATH_PROPERTY + " is " + override + ", which is not a file");
            }
            return path;
        }
        URL resource = resources.apply(resourcePath(os, arch));
        if (resource == null) {
            List<String> carried = new ArrayList<>();
            for (String o : OSES) {
                for (String a : ARCHES) {
                    if (resources.apply(resourcePath(o, a)) != null) {
                        carried.add(o + "/" + a);
                    }
                }
            }
            throw new NativeLibraryException("this Baton jar has no native library for " + os + "/" + arch
                    + " (it carries: " + (carried.isEmpty() ? "none" : String.join(", ", carried))
                    + "); build one and set -D" + PATH_PROPERTY + "=/path/to/" + libraryName(os));
        }
        return extract(resource, libraryName(os), tmpDir);
    }

    /** Copies {@code resource} to a new file in {@code dir}, named after {@code name} and the version. */
    static Path extract(URL resource, String name, Path dir) {
        int dot = name.lastIndexOf('.');
        String prefix = name.substring(0, dot) + "-" + version().replaceAll("[^A-Za-z0-9._-]", "_") + "-";
        Path file = null;
        try {
            Files.createDirectories(dir);
            file = Files.createTempFile(dir, prefix, name.substring(dot));
            file.toFile().deleteOnExit();
            try (InputStream in = resource.openStream()) {
                Files.copy(in, file, StandardCopyOption.REPLACE_EXISTING);
            }
            return file;
        } catch (IOException e) {
            if (file != null) {
                file.toFile().delete();
            }
            throw new NativeLibraryException("cannot extract Baton's native library " + resource + " to " + dir
                    + " (set -D" + TMPDIR_PROPERTY + " to a writable directory): " + e, e);
        }
    }

    /** The resource path of the library for {@code os}/{@code arch}. */
    static String resourcePath(String os, String arch) {
        return "/dev/baton/native/" + os + "/" + arch + "/" + libraryName(os);
    }

    /** The library's file name on {@code os}. */
    static String libraryName(String os) {
        switch (os) {
            case "windows":
                return "baton_jni.dll";
            case "macos":
                return "libbaton_jni.dylib";
            default:
                return "libbaton_jni.so";
        }
    }

    /** {@code linux}, {@code macos} or {@code windows} for an {@code os.name}; others lower-cased. */
    static String normalizeOs(String osName) {
        String s = osName.toLowerCase(Locale.ROOT).replaceAll("[^a-z0-9]", "");
        if (s.startsWith("linux")) {
            return "linux";
        }
        if (s.startsWith("mac") || s.startsWith("osx") || s.startsWith("darwin")) {
            return "macos";
        }
        if (s.startsWith("windows")) {
            return "windows";
        }
        return s;
    }

    /** {@code x86_64} or {@code aarch64} for an {@code os.arch}; others lower-cased. */
    static String normalizeArch(String osArch) {
        String s = osArch.toLowerCase(Locale.ROOT).replaceAll("[^a-z0-9_]", "");
        switch (s) {
            case "amd64":
            case "x86_64":
            case "x8664":
            case "x64":
                return "x86_64";
            case "aarch64":
            case "arm64":
                return "aarch64";
            default:
                return s;
        }
    }

    /** The library's version: {@code baton.properties}, else the jar's manifest, else {@code dev}. */
    static String version() {
        try (InputStream in = NativeLoader.class.getResourceAsStream("/dev/baton/baton.properties")) {
            if (in != null) {
                Properties properties = new Properties();
                properties.load(in);
                String version = properties.getProperty("version");
                if (version != null && !version.isBlank() && !version.startsWith("${")) {
                    return version;
                }
            }
        } catch (IOException ignored) {
            // fall through to the manifest
        }
        String version = NativeLoader.class.getPackage().getImplementationVersion();
        return version == null ? "dev" : version;
    }
}
