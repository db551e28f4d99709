#!/usr/bin/env bash
# Faults under load on the scale-out set-up (PostgreSQL + S3): `postmortem serve` on a fresh
# PostgreSQL database and a fresh bucket behind Benchmarks/scripts/s3_fault_proxy.py, under
# `postmortem submit --load`. During the load PostgreSQL is restarted, and later S3 answers 503
# SlowDown to everything for 30 s. Afterwards every crash the collector acknowledged must be stored
# and — without any manual step — processed.
#
#   Benchmarks/faults.sh [RATE=20] [SECONDS=180]
#
# Needs the servers of scripts/test-services.sh (run scripts/test once, or that script).
set -euo pipefail
cd "$(dirname "$0")/.."
RATE="${1:-20}"; SECONDS_="${2:-180}"
eval "$(scripts/test-services.sh)"
PGBIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
STATE="${POSTMORTEM_TEST_SERVICES_DIR:-/tmp/postmortem-test-services}"
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
DUMP="$PWD/../shared/testdata/minidumps/linux-mini.dmp"
. Benchmarks/scripts/serve.sh
postmortem_binary --static-swift-stdlib
NAME="pm_faults_$$"
DATA="$(mktemp -d /tmp/pm-faults.XXXXXX)"
PROXY_PORT=$((56000 + $$ % 1000))
FLAG="$DATA/s3-down"
psql "$POSTMORTEM_TEST_POSTGRES_URL" -qc "CREATE DATABASE $NAME" >/dev/null
curl -fs -X PUT "$POSTMORTEM_TEST_S3_ENDPOINT/$NAME" >/dev/null
python3 Benchmarks/scripts/s3_fault_proxy.py "$PROXY_PORT" "$POSTMORTEM_TEST_S3_ENDPOINT" "$FLAG" &
PROXY=$!
cleanup() {
    kill $SERVER $PROXY 2>/dev/null || true
    wait $SERVER 2>/dev/null || true
    psql "$POSTMORTEM_TEST_POSTGRES_URL" -qc "DROP DATABASE IF EXISTS $NAME WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$DATA"
}
trap cleanup EXIT
export POSTMORTEM_DATABASE_URL="${POSTMORTEM_TEST_POSTGRES_URL%/*}/$NAME"
export POSTMORTEM_S3_BUCKET="$NAME" POSTMORTEM_S3_ENDPOINT="http://127.0.0.1:$PROXY_PORT"
export POSTMORTEM_S3_ACCESS_KEY=testing POSTMORTEM_S3_SECRET_KEY=testing POSTMORTEM_LOG_LEVEL=warning
sleep 0.5
start_serve "$DATA" "$DATA/out" "$DATA/log"

( sleep 40; echo "$(date +%T) restarting PostgreSQL" >&2
  as_postgres "$PGBIN/pg_ctl" -D "$STATE/pg" -m fast -w restart -o "-p ${POSTMORTEM_TEST_PG_PORT:-55432} -c listen_addresses=127.0.0.1 -k $STATE -c fsync=off -c max_connections=200" -l "$STATE/postgres.log" >/dev/null
  echo "$(date +%T) PostgreSQL is back" >&2
  sleep 60; echo "$(date +%T) S3 answers 503 for 30 s" >&2; touch "$FLAG"
  sleep 30; rm -f "$FLAG"; echo "$(date +%T) S3 is back" >&2 ) &
FAULTS=$!
"$BIN" submit "$URL" --load --count 0 --duration "$SECONDS_" --rate "$RATE" --concurrency 16 --timeout 120 \
    --load-dump "$DUMP" --ids-file "$DATA/ids.txt" 2>/dev/null
wait $FAULTS
ACKED=$(wc -l <"$DATA/ids.txt")

# Everything acknowledged must be stored; processing must catch up by itself.
MISSING=0
while read -r id; do
    "$BIN" blobs get "v1/raw_crash/20${id: -6}/$id" >/dev/null 2>&1 || MISSING=$((MISSING + 1))
done <"$DATA/ids.txt"
UNPROCESSED=$ACKED
for _ in $(seq 1 60); do
    UNPROCESSED=0
    while read -r id; do
        "$BIN" blobs get "v1/processed_crash/$id" >/dev/null 2>&1 || UNPROCESSED=$((UNPROCESSED + 1))
    done <"$DATA/ids.txt"
    [ "$UNPROCESSED" = 0 ] && break
    sleep 5
done
DEAD=$("$BIN" queue dead-letters | wc -l)
echo "acknowledged $ACKED, missing $MISSING, not processed $UNPROCESSED, dead letters $DEAD"
