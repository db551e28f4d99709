#!/usr/bin/env bash
# Soak: `postmortem serve` (release, embedded storage) under a steady `postmortem submit --load`
# for a long time, to see that nothing grows or slows: RSS sampled every 10 s, latency p99 per
# 5-minute window, and at the end every acknowledged crash checked for its stored files and its
# processed crash.
#
#   Benchmarks/soak.sh [RATE=50] [MINUTES=30]
#
# Each report carries a real minidump (../shared/testdata/minidumps/linux-mini.dmp), so the
# processor walks every one. Prints one line per window and a summary; results in docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
RATE="${1:-50}"; MINUTES="${2:-30}"
WINDOW=300
DUMP="$PWD/../shared/testdata/minidumps/linux-mini.dmp"
[ -f "$DUMP" ] || { echo "soak: $DUMP is missing" >&2; exit 1; }
. Benchmarks/scripts/serve.sh
postmortem_binary --static-swift-stdlib
DATA="$(mktemp -d /tmp/pm-soak.XXXXXX)"
trap 'kill $SERVER $SAMPLER 2>/dev/null || true; rm -rf "$DATA" "$DATA.out"' EXIT
start_serve "$DATA" "$DATA.out" /dev/null

# RSS of the server every 10 s (MiB).
( while kill -0 $SERVER 2>/dev/null; do
      awk '/VmRSS/ {printf "%d\n", $2 / 1024}' /proc/$SERVER/status 2>/dev/null >>"$DATA/rss.txt" || true
      sleep 10
  done ) &
SAMPLER=$!

WINDOWS=$(( MINUTES * 60 / WINDOW ))
echo "window  sent   p50        p99        max        rss_MiB(min-max in window)"
for w in $(seq 1 "$WINDOWS"); do
    before=$(wc -l <"$DATA/rss.txt" 2>/dev/null || echo 0)
    out="$("$BIN" submit "$URL" --load --count 0 --duration "$WINDOW" --rate "$RATE" --concurrency 16 \
        --load-dump "$DUMP" --ids-file "$DATA/ids.txt" 2>/dev/null)"
    sent=$(echo "$out" | sed -n 's/^sent \([0-9]*\).*/\1/p' | head -1)
    lat=$(echo "$out" | sed -n 's/^latency: //p')
    rss=$(tail -n +"$((before + 1))" "$DATA/rss.txt" | sort -n | sed -n '1p;$p' | paste -sd- -)
    printf '%-7s %-6s %s  rss %s\n' "$w" "${sent:-?}" "$lat" "$rss"
done

# Let the processor catch up, then check every acknowledged crash.
ACKED=$(wc -l <"$DATA/ids.txt")
for _ in $(seq 1 600); do
    processed=$(find "$DATA/blobs/v1/processed_crash" -type f | wc -l)
    [ "$processed" -ge "$ACKED" ] && break
    sleep 1
done
MISSING=0; UNPROCESSED=0
while read -r id; do
    [ -f "$DATA/blobs/v1/raw_crash/20${id: -6}/$id" ] && [ -f "$DATA/blobs/v1/dump/$id" ] || MISSING=$((MISSING + 1))
    [ -f "$DATA/blobs/v1/processed_crash/$id" ] || UNPROCESSED=$((UNPROCESSED + 1))
done <"$DATA/ids.txt"
RSS_FIRST=$(sed -n '7p' "$DATA/rss.txt")   # after the first minute (caches warm)
RSS_LAST=$(tail -1 "$DATA/rss.txt")
RSS_MAX=$(sort -n "$DATA/rss.txt" | tail -1)
echo "acknowledged $ACKED, missing $MISSING, not processed $UNPROCESSED"
echo "rss after 1 min ${RSS_FIRST} MiB, at the end ${RSS_LAST} MiB, highest ${RSS_MAX} MiB"
