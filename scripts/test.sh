#!/usr/bin/env bash
# Runs every test of tongban: formatting, lints, unit and service tests on SQLite and
# PostgreSQL, end-to-end tests against the real binary, and browser tests with an
# accessibility scan. Installs or starts what is missing (PostgreSQL, Chromium, npm packages).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n== %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=
apt_install() {
  if [ -z "$apt_updated" ]; then as_root apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# --- PostgreSQL: $TONGBAN_TEST_DATABASE_URL, else 127.0.0.1:5432, else a private cluster ----
private_pg=
api_server=
cleanup() {
  if [ -n "$api_server" ]; then kill "$api_server" 2>/dev/null || true; fi
  if [ -n "$private_pg" ]; then
    as_root runuser -u postgres -- "$pg_bin/pg_ctl" -D "$private_pg" -m fast stop >/dev/null 2>&1 || true
    as_root rm -rf "$private_pg"
  fi
}
trap cleanup EXIT

if [ -z "${TONGBAN_TEST_DATABASE_URL:-}" ]; then
  if port_open 127.0.0.1 5432; then
    export TONGBAN_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres"
  else
    say "no PostgreSQL on 127.0.0.1:5432: starting a private one on 127.0.0.1:55432"
    if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then apt_install postgresql; fi
    pg_bin=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")
    private_pg=$(mktemp -d /tmp/tongban-pg.XXXXXX)
    as_root chown postgres "$private_pg"
    as_root runuser -u postgres -- "$pg_bin/initdb" -D "$private_pg" -A trust -U postgres >/dev/null
    as_root runuser -u postgres -- "$pg_bin/pg_ctl" -D "$private_pg" -w -l "$private_pg/log" \
      -o "-p 55432 -k $private_pg -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null
    export TONGBAN_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:55432/postgres"
  fi
fi
echo "PostgreSQL for tests: $TONGBAN_TEST_DATABASE_URL"
# Backups of PostgreSQL use pg_dump / pg_restore.
if ! command -v pg_dump >/dev/null 2>&1; then apt_install postgresql-client; fi

say "format"
cargo fmt --all -- --check

say "lints"
cargo clippy --workspace --all-targets --locked -- -D warnings

say "unit, service (SQLite + PostgreSQL) and end-to-end tests"
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi

say "browser tests (Chromium + axe-core)"
if [ ! -x /usr/bin/chromium ] && [ -z "${CHROMIUM:-}" ]; then apt_install chromium; fi
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
cargo build --locked --bin tongban
TONGBAN_BIN="$PWD/target/debug/tongban" timeout 1800 node tests/browser/run.mjs

say "API description: OpenAPI validator and schemathesis against the real server"
if ! command -v python3 >/dev/null 2>&1; then apt_install python3 python3-venv; fi
venv=target/api-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$venv"; }
fi
"$venv/bin/pip" install -q --disable-pip-version-check -r tests/api/requirements.txt
api_data=$(mktemp -d /tmp/tongban-api.XXXXXX)
api_port=$((20000 + RANDOM % 20000))
timeout 1200 target/debug/tongban serve --data-dir "$api_data" --listen "127.0.0.1:$api_port" \
  >"$api_data/server.log" 2>&1 &
api_server=$!
if ! timeout 1200 "$venv/bin/python" tests/api/check.py "http://127.0.0.1:$api_port"; then
  echo "server log (last lines):" >&2
  tail -n 40 "$api_data/server.log" >&2
  exit 1
fi
kill "$api_server"
api_server=
rm -rf "$api_data"
