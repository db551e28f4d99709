#!/usr/bin/env bash
# Symbol server throughput on the embedded store (docs/benchmarks.md, "Symbol server"):
#   1. upload throughput: a generated zip of many .sym files (about 200 MB compressed) POSTed to
#      /upload/ of a release `postmortem serve` — MB/s of the zip, first upload (everything stored)
#      and the same zip again (everything skipped);
#   2. downloads per second of one warm .sym over loopback: curl's parallel transfers (HTTP/1.1
#      keep-alive, 32 at once, gzip as stored), and HEAD requests the same way.
# Usage: Benchmarks/symbols.sh [ZIP_MB] [FILES]     (defaults 200 and 1600)
# Needs python3 and curl.
set -euo pipefail
cd "$(dirname "$0")/.."
. Benchmarks/scripts/serve.sh

ZIP_MB="${1:-200}"
FILES="${2:-1600}"
WORK="$(mktemp -d /tmp/pm-symbols-bench.XXXXXX)"
trap 'kill "${SERVER:-}" 2>/dev/null || true; rm -rf "$WORK"' EXIT

postmortem_binary --static-swift-stdlib
echo "generating ~${ZIP_MB} MB of zipped .sym files in ${FILES} files" >&2
python3 Benchmarks/scripts/make_symbols_zip.py "$WORK/symbols.zip" "$ZIP_MB" "$FILES"
ZIP_BYTES=$(stat -c %s "$WORK/symbols.zip")
echo "zip: $((ZIP_BYTES >> 20)) MB, $FILES files" >&2

start_serve "$WORK/data" "$WORK/serve.out" "$WORK/serve.err"
BASE="${URL%/submit}"
"$BIN" users create bench@example.com --data "$WORK/data" >/dev/null
"$BIN" users grant bench@example.com upload_symbols --data "$WORK/data" >/dev/null
TOKEN="$("$BIN" tokens create bench@example.com --permission upload_symbols --data "$WORK/data" 2>/dev/null)"

upload() {
    local t0 t1
    t0=$(date +%s.%N)
    curl -sS -o "$WORK/answer.json" -w "%{http_code}" -H "Auth-Token: $TOKEN" -F "symbols.zip=@$WORK/symbols.zip" "$BASE/upload/" >"$WORK/status"
    t1=$(date +%s.%N)
    [ "$(cat "$WORK/status")" = 201 ] || { echo "upload failed: $(cat "$WORK/status") $(head -c 300 "$WORK/answer.json")" >&2; exit 1; }
    python3 -c "import sys; t=float(sys.argv[2])-float(sys.argv[1]); b=int(sys.argv[3]); print(f'{t:.2f} s, {b/t/1048576:.1f} MB/s')" "$t0" "$t1" "$ZIP_BYTES"
}
echo "upload (all stored):   $(upload)"
echo "upload (all skipped):  $(upload)"

KEY="$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['upload']['skipped_keys'][0])" "$WORK/answer.json")"
curl -sS -o /dev/null -H "Accept-Encoding: gzip" "$BASE/$KEY"
SYM_BYTES=$(curl -sS -H "Accept-Encoding: gzip" "$BASE/$KEY" | wc -c)
# N requests of one URL, 32 in parallel over keep-alive connections; prints requests per second.
parallel_requests() {
    local n="$1" url="$2" t0 t1; shift 2
    python3 -c "import sys; open(sys.argv[1], 'w').write(''.join('url = \"%s\"\noutput = \"/dev/null\"\n' % sys.argv[2] for _ in range(int(sys.argv[3]))))" \
        "$WORK/urls.cfg" "$url" "$n"
    t0=$(date +%s.%N)
    curl -s -Z --parallel-max 32 "$@" -K "$WORK/urls.cfg" -w "%{http_code}\n" >"$WORK/codes.txt"
    t1=$(date +%s.%N)
    local ok; ok=$(grep -c '^200$' "$WORK/codes.txt" || true)
    [ "$ok" = "$n" ] || { echo "only $ok of $n answered 200" >&2; exit 1; }
    python3 -c "import sys; print('%.0f' % (int(sys.argv[3]) / (float(sys.argv[2]) - float(sys.argv[1]))))" "$t0" "$t1" "$n"
}
for run in 1 2 3; do
    echo "GET of a warm .sym ($((SYM_BYTES >> 10)) KiB gzip), run $run: $(parallel_requests 20000 "$BASE/$KEY" -H "Accept-Encoding: gzip") /s"
done
echo "HEAD of the same key: $(parallel_requests 20000 "$BASE/$KEY" -I) /s"
echo "peak RSS of serve: $(grep VmHWM /proc/"$SERVER"/status | awk '{print $2, $3}')"
