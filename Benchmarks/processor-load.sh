#!/usr/bin/env bash
# Processor benchmark (release build, embedded storage, warm symbol cache):
#   1. throughput: 2000 copies of test.dmp are submitted with processing off, then
#      `postmortem processor` with 2 workers drains the queue; crashes/s = count / (last completed
#      − first started), per core = that / 2.
#   2. accepted-to-searchable: `serve` with its workers, test.dmp submitted at 50/s for 30 s;
#      per crash, completed_datetime − submitted_timestamp (p50/p99).
#   Benchmarks/processor-load.sh
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product postmortem >/dev/null 2>&1
BIN="$(swift build -c release --show-bin-path)/postmortem"
SYMBOLS=../shared/testdata/symbols
DUMP=../shared/testdata/minidumps/test.dmp
stats() {  # $1 data dir: summary of processed crashes
    python3 - "$1" <<'PY'
import json, os, sys, datetime
root = sys.argv[1] + "/blobs/v1/processed_crash"
def t(s): return datetime.datetime.fromisoformat(s).timestamp()
rows = []
for name in os.listdir(root):
    p = json.load(open(os.path.join(root, name)))
    rows.append((t(p["started_datetime"]), t(p["completed_datetime"]), t(p["submitted_timestamp"]), p.get("signature")))
rows.sort()
span = max(r[1] for r in rows) - min(r[0] for r in rows)
lat = sorted(r[1] - r[2] for r in rows)
sigs = {r[3] for r in rows}
print(f"processed {len(rows)} in {span:.2f} s: {len(rows)/span:.1f} crashes/s; accepted-to-processed p50 {lat[len(lat)//2]*1000:.0f} ms, "
      f"p99 {lat[min(len(lat)-1, int(len(lat)*0.99))]*1000:.0f} ms; signatures {sorted(sigs)}")
PY
}
start_server() {  # $1 data dir, $2 workers
    POSTMORTEM_PROCESSOR_WORKERS=$2 "$BIN" serve --data "$1" --port 0 --symbols-path "$SYMBOLS" >"$1.out" 2>/dev/null &
    SERVER=$!
    for _ in $(seq 1 100); do grep -q "Listening on" "$1.out" 2>/dev/null && break; sleep 0.05; done
    URL="$(sed -n 's/^Listening on //p' "$1.out")/submit"
}

A="$(mktemp -d /tmp/pm-proc.XXXXXX)"; B="$(mktemp -d /tmp/pm-proc.XXXXXX)"
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$A" "$B" "$A.out" "$B.out"' EXIT
echo "== throughput (2 workers, queue pre-filled)"
start_server "$A" 0
"$BIN" submit "$URL" --load --count 2000 --concurrency 16 --load-dump "$DUMP" --gzip-share 0 >/dev/null 2>&1
kill -TERM $SERVER; wait $SERVER || true
POSTMORTEM_PROCESSOR_WORKERS=2 "$BIN" processor --data "$A" --port 0 --symbols-path "$SYMBOLS" >/dev/null 2>&1 &
SERVER=$!
until "$BIN" queue status --data "$A" | awk '$1=="standard" {exit ($2+$3)!=0}'; do sleep 0.5; done
sleep 0.5; kill -TERM $SERVER; wait $SERVER || true
stats "$A"
echo "== accepted to searchable (serve, 50 submissions/s for 30 s)"
start_server "$B" 2
"$BIN" submit "$URL" --load --count 0 --duration 30 --rate 50 --concurrency 8 --load-dump "$DUMP" --gzip-share 0.1 2>/dev/null | head -3
until "$BIN" queue status --data "$B" | awk '$1=="standard" {exit ($2+$3)!=0}'; do sleep 0.5; done
sleep 0.5
stats "$B"
