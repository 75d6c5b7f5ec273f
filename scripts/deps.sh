#!/usr/bin/env bash
# Installs the tools the build and the tests need, when they are missing.
# Debian packages are installed when running as root; otherwise missing tools are named.
set -euo pipefail

need=()
command -v cargo   >/dev/null || { echo "cargo is missing: install Rust from https://rustup.rs" >&2; exit 1; }
# The lint gate of `make test` needs them; rustup's default profile has both.
for tool in fmt clippy; do
  cargo "$tool" --version >/dev/null 2>&1 || { echo "cargo $tool is missing: rustup component add ${tool/fmt/rustfmt}" >&2; exit 1; }
done
command -v python3 >/dev/null || need+=(python3)
command -v java    >/dev/null || need+=(openjdk-17-jdk-headless)
command -v mvn     >/dev/null || need+=(maven)
command -v gradle  >/dev/null || need+=(gradle)
# The PostgreSQL store's tests start a throwaway server (initdb, postgres): Debian keeps
# them under /usr/lib/postgresql/VERSION/bin, outside PATH.
command -v initdb >/dev/null || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "installing: ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "missing: ${need[*]} (install them, or run as root to have them installed)" >&2
    exit 1
  fi
fi
