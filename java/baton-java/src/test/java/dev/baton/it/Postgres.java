package dev.baton.it;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.UserPrincipal;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * A throwaway PostgreSQL server for a test, as {@code native/baton-pgtest} starts one for the
 * Rust tests: {@code initdb} into a temporary directory, {@code postgres} on a free port of
 * 127.0.0.1 only (and a Unix socket in that directory), stopped and removed by {@link #close()}.
 * When the test runs as root, the server runs as the {@code postgres} user ({@code runuser}),
 * which PostgreSQL insists on.
 *
 * <pre>{@code
 * Assumptions.assumeTrue(Postgres.binaries().isPresent(), "PostgreSQL is not installed");
 * try (Postgres pg = Postgres.start()) {
 *     Baton.open(pg.url(), options);
 * }
 * }</pre>
 */
final class Postgres implements AutoCloseable {

    /** How long initdb, the server's start and its stop may each take. */
    private static final long WITHIN_SECONDS = 60;

    private final Path bin;
    private final Path root;
    private final Path data;
    private final int port;
    /** The command prefix that runs a program as the server's user (empty: as we are). */
    private final List<String> asUser;
    private final Process server;

    private Postgres(Path bin, Path root, int port, List<String> asUser, Process server) {
        this.bin = bin;
        this.root = root;
        this.data = root.resolve("data");
        this.port = port;
        this.asUser = asUser;
        this.server = server;
    }

    /**
     * The directory holding {@code initdb} and {@code postgres}: Debian's
     * {@code /usr/lib/postgresql/VERSION/bin} (the newest), or {@code /usr/local/bin}.
     */
    static Optional<Path> binaries() {
        List<Path> candidates = new ArrayList<>();
        try (Stream<Path> versions = Files.list(Path.of("/usr/lib/postgresql"))) {
            versions.map(v -> v.resolve("bin"))
                    .sorted(Comparator.comparingInt(Postgres::version).reversed())
                    .forEach(candidates::add);
        } catch (IOException none) {
            // no Debian packages
        }
        candidates.add(Path.of("/usr/local/bin"));
        return candidates.stream()
                .filter(dir -> Files.isExecutable(dir.resolve("initdb")) && Files.isExecutable(dir.resolve("postgres")))
                .findFirst();
    }

    private static int version(Path bin) {
        try {
            return Integer.parseInt(bin.getParent().getFileName().toString());
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    /** Starts a server; fails, with its log, if it is not ready within a minute. */
    static Postgres start() throws IOException, InterruptedException {
        Path bin = binaries().orElseThrow(() -> new IllegalStateException("PostgreSQL is not installed"));
        Path root = Files.createTempDirectory("baton-pg-");
        List<String> asUser = List.of();
        if (runningAsRoot(root)) {
            UserPrincipal postgres = root.getFileSystem().getUserPrincipalLookupService().lookupPrincipalByName("postgres");
            Files.setOwner(root, postgres);
            asUser = List.of("runuser", "-u", "postgres", "--");
        }
        Path data = root.resolve("data");
        Path initLog = root.resolve("initdb.log");
        Process initdb = new ProcessBuilder(command(asUser, bin.resolve("initdb").toString(), "-D", data.toString(),
                "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions"))
                .redirectErrorStream(true).redirectOutput(initLog.toFile()).start();
        if (!initdb.waitFor(WITHIN_SECONDS, TimeUnit.SECONDS) || initdb.exitValue() != 0) {
            initdb.destroyForcibly();
            throw new IllegalStateException("initdb failed:\n" + read(initLog));
        }
        int port = freePort();
        Path log = root.resolve("postgres.log");
        // fsync off: the server and its data go at the end of the test.
        Process server = new ProcessBuilder(command(asUser, bin.resolve("postgres").toString(), "-D", data.toString(),
                "-k", root.toString(), "-h", "127.0.0.1", "-p", Integer.toString(port), "-c", "fsync=off"))
                .redirectErrorStream(true).redirectOutput(log.toFile()).start();
        Postgres pg = new Postgres(bin, root, port, asUser, server);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(WITHIN_SECONDS);
        while (!pg.ready()) {
            if (!server.isAlive() || System.nanoTime() > deadline) {
                String said = read(log);
                pg.close();
                throw new IllegalStateException("PostgreSQL did not start; its log:\n" + said);
            }
            Thread.sleep(100);
        }
        return pg;
    }

    /** The URL of the server's {@code postgres} database, as superuser. */
    String url() {
        return "postgresql://postgres@127.0.0.1:" + port + "/postgres";
    }

    private boolean ready() throws IOException, InterruptedException {
        Process check = new ProcessBuilder(bin.resolve("pg_isready").toString(), "-q", "-h", "127.0.0.1",
                "-p", Integer.toString(port), "-t", "1").redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        if (!check.waitFor(10, TimeUnit.SECONDS)) {
            check.destroyForcibly();
            return false;
        }
        return check.exitValue() == 0;
    }

    /** Stops the server at once (nobody starts it again) and removes its files. */
    @Override
    public void close() throws IOException, InterruptedException {
        if (server.isAlive()) {
            Process stop = new ProcessBuilder(command(asUser, bin.resolve("pg_ctl").toString(), "-D", data.toString(),
                    "stop", "-m", "immediate", "-w")).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
            if (!stop.waitFor(WITHIN_SECONDS, TimeUnit.SECONDS)) {
                stop.destroyForcibly();
            }
            if (!server.waitFor(WITHIN_SECONDS, TimeUnit.SECONDS)) {
                server.destroyForcibly();
            }
        }
        try (Stream<Path> files = Files.walk(root)) {
            for (Path p : files.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }

    private static List<String> command(List<String> asUser, String... command) {
        List<String> all = new ArrayList<>(asUser);
        all.addAll(List.of(command));
        return all;
    }

    /** Whether we are root: the owner of a file we create says who we are. */
    private static boolean runningAsRoot(Path dir) throws IOException {
        Path probe = Files.createTempFile(dir, "owner", "");
        try {
            return Files.getOwner(probe).getName().equals("root");
        } finally {
            Files.delete(probe);
        }
    }

    private static int freePort() throws IOException {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return socket.getLocalPort();
        }
    }

    private static String read(Path log) {
        try {
            return Files.readString(log, StandardCharsets.UTF_8);
        } catch (IOException e) {
            return "(cannot read " + log + ": " + e + ")";
        }
    }
}
