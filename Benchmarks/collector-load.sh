#!/usr/bin/env bash
# Collector load benchmark: `postmortem submit --load` against `postmortem serve` on loopback,
# release build, embedded storage (SQLite + files with fsync) in a fresh directory.
#
#   Benchmarks/collector-load.sh [RATE] [SECONDS] [CONCURRENCY] [PROCESSOR_WORKERS]
#
# PROCESSOR_WORKERS (default: serve's default, one per core) sets `processor.workers` of the
# server: 0 measures the collector alone, as deployments that run collectors and processors as
# separate processes have it.
#
# 300 KB mean dumps (log-normal), 10 % gzip, half JSON / half form annotations. After the run,
# every crash id the client received is checked for its raw crash, dump names and dump.
#
# Runs in a row: wait 30 s between them. The data directory is removed at the end, and ext4
# without a journal skips inodes freed in the last 30 s when it allocates new ones — creating
# files right after deleting ~30,000 costs the next run up to a fifth of the server's CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
RATE="${1:-500}"; SECONDS_="${2:-60}"; CONCURRENCY="${3:-32}"
if [ -n "${4:-}" ]; then export POSTMORTEM_PROCESSOR_WORKERS="$4"; fi
# POSTMORTEM_BIN runs a given binary instead of building (to compare two builds).
. Benchmarks/scripts/serve.sh
postmortem_binary
DATA="$(mktemp -d /tmp/pm-load.XXXXXX)"
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$DATA"' EXIT
start_serve "$DATA" "$DATA.out" /dev/null
"$BIN" submit "$URL" --load --count 0 --duration "$SECONDS_" --rate "$RATE" --concurrency "$CONCURRENCY" \
    --size-mean 300000 --gzip-share 0.1 --ids-file "$DATA/ids.txt" 2>/dev/null
kill -TERM $SERVER; wait $SERVER || true
ACKED=$(wc -l <"$DATA/ids.txt")
MISSING=0
while read -r id; do
    [ -f "$DATA/blobs/v1/raw_crash/20${id: -6}/$id" ] && [ -f "$DATA/blobs/v1/dump_names/$id" ] && [ -f "$DATA/blobs/v1/dump/$id" ] \
        || MISSING=$((MISSING + 1))
done <"$DATA/ids.txt"
echo "acknowledged $ACKED, missing $MISSING"
"$BIN" collector stats --data "$DATA"
