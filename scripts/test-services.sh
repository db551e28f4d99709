#!/usr/bin/env bash
# Starts the real servers the storage tests run against, on 127.0.0.1 only: PostgreSQL (Debian's
# `postgresql`, a throw-away cluster) and an S3-compatible server (`moto_server` from PyPI's
# `moto[server]`). Idempotent: servers already answering are reused. Prints the environment
# the tests read, as shell `export` lines:
#   eval "$(scripts/test-services.sh)"
# scripts/test (the test command) runs it before `swift test`; the tests run it themselves when
# those variables are missing (a bare `swift test`).
set -euo pipefail

STATE="${POSTMORTEM_TEST_SERVICES_DIR:-/tmp/postmortem-test-services}"
PG_PORT="${POSTMORTEM_TEST_PG_PORT:-55432}"
S3_PORT="${POSTMORTEM_TEST_S3_PORT:-55900}"
mkdir -p "$STATE"
chmod 0777 "$STATE"

# PostgreSQL
PGBIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
if [ -z "$PGBIN" ]; then
    echo "test-services: PostgreSQL server binaries not found (apt-get install postgresql)" >&2
    exit 1
fi
as_postgres() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
if ! "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; then
    if [ ! -f "$STATE/pg/PG_VERSION" ]; then
        rm -rf "$STATE/pg"
        mkdir -p "$STATE/pg"
        [ "$(id -u)" = 0 ] && chown postgres "$STATE/pg"
        as_postgres "$PGBIN/initdb" -D "$STATE/pg" -A trust -U postgres -E UTF8 --no-locale >"$STATE/initdb.log" 2>&1 \
            || { cat "$STATE/initdb.log" >&2; exit 1; }
    fi
    # fsync off: a test cluster is thrown away, and tests should not wait on the disk.
    as_postgres "$PGBIN/pg_ctl" -D "$STATE/pg" -l "$STATE/postgres.log" -w -t 60 \
        -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -k $STATE -c fsync=off -c max_connections=200" start </dev/null >/dev/null \
        || { tail -20 "$STATE/postgres.log" >&2; exit 1; }
fi

# S3 (moto)
if ! curl -fs -o /dev/null "http://127.0.0.1:$S3_PORT/moto-api/"; then
    if ! command -v moto_server >/dev/null 2>&1; then
        echo "test-services: moto_server not found (pip install 'moto[server]')" >&2
        exit 1
    fi
    nohup moto_server -H 127.0.0.1 -p "$S3_PORT" </dev/null >"$STATE/moto.log" 2>&1 &
    for _ in $(seq 1 100); do
        curl -fs -o /dev/null "http://127.0.0.1:$S3_PORT/moto-api/" && break
        sleep 0.1
    done
    curl -fs -o /dev/null "http://127.0.0.1:$S3_PORT/moto-api/" || { tail -20 "$STATE/moto.log" >&2; exit 1; }
fi

echo "export POSTMORTEM_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:$PG_PORT/postgres"
echo "export POSTMORTEM_TEST_S3_ENDPOINT=http://127.0.0.1:$S3_PORT"
