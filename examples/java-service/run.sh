#!/bin/sh
# Runs the Java service example (NightlyEtl.java) on the Baton jar, building the jar first if
# it is missing or older than the Java sources or the native library. Needs Java 17 and Maven;
# the native library comes from `cargo build --release -p baton-jni`.
#
#   examples/java-service/run.sh [store-dir]
#   examples/java-service/run.sh --main DataEvents      (another example of this directory)
set -eu
main=NightlyEtl
if [ "${1:-}" = "--main" ]; then
    main=$2
    shift 2
fi
root=$(cd "$(dirname "$0")/../.." && pwd)
jar="$root/java/baton-java/target/baton-java-0.1.0-SNAPSHOT.jar"
lib="$root/target/release/libbaton_jni.so"

if [ ! -f "$lib" ]; then
    echo "Baton's native library is missing ($lib): run cargo build --release -p baton-jni" >&2
    exit 1
fi
if [ ! -f "$jar" ] || [ "$lib" -nt "$jar" ] || [ -n "$(find "$root/java" -name '*.java' -path '*/src/main/*' -newer "$jar" | head -n 1)" ]; then
    echo "== building the jar (mvn package)" >&2
    mvn -B -q -f "$root/java/pom.xml" package -DskipTests
fi

cd "$root"
# Java 11+ runs a single source file directly: no build for the example itself.
exec java '-Djava.util.logging.SimpleFormatter.format=%4$s %3$s: %5$s%6$s%n' \
    -cp "$jar" "examples/java-service/$main.java" "$@"
