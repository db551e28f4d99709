#!/usr/bin/env bash
# Symbol server throughput on the embedded store (docs/benchmarks.md, "Symbol server"):
#   1. upload throughput: a generated zip of many .sym files (about 200 MB compressed) POSTed to
#      /upload/ of a release `postmortem serve` — MB/s of the zip, first upload (everything stored)
#      and the same zip again (everything skipped);
#   2. downloads per second of one warm .sym over loopback (ApacheBench, keep-alive, gzip).
# Usage: Benchmarks/symbols.sh [ZIP_MB] [FILES]     (defaults 200 and 1600)
# Needs python3 and ab (apache2-utils; installed with apt-get when missing and possible).
set -euo pipefail
cd "$(dirname "$0")/.."
. Benchmarks/scripts/serve.sh

ZIP_MB="${1:-200}"
FILES="${2:-1600}"
WORK="$(mktemp -d /tmp/pm-symbols-bench.XXXXXX)"
trap 'kill "${SERVER:-}" 2>/dev/null || true; rm -rf "$WORK"' EXIT

if ! command -v ab >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then apt-get install -y apache2-utils >/dev/null; else sudo apt-get install -y apache2-utils >/dev/null; fi
fi

postmortem_binary --static-swift-stdlib
echo "generating ~${ZIP_MB} MB of zipped .sym files in ${FILES} files" >&2
python3 - "$WORK/symbols.zip" "$ZIP_MB" "$FILES" <<'PY'
import random, sys, zipfile
out, zip_mb, files = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(7)
words = ["nsCOMPtr", "mozilla", "dom", "Element", "GetAttr", "layers", "Compositor", "js", "gc", "Marking", "Frame",
         "Reflow", "nsIFrame", "IPC", "Channel", "Send", "Recv", "Runnable", "Run", "TaskQueue", "Dispatch", "Style"]
target = zip_mb << 20
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as z:
    for n in range(files):
        debug_id = "%032X%d" % (rng.getrandbits(128), 0)
        name = "lib%04d.so" % n
        lines = [f"MODULE Linux x86_64 {debug_id} {name}", f"INFO CODE_ID {debug_id[:32]} {name}", "INFO GENERATOR bench"]
        lines += [f"FILE {i} /builds/worker/checkouts/gecko/{rng.choice(words)}/{rng.choice(words)}{i}.cpp" for i in range(200)]
        addr = 0x1000
        per_file = target * 3 // files  # .sym text compresses about 3x
        size = 0
        while size < per_file:
            fsize = rng.randint(0x20, 0x400)
            fname = "::".join(rng.choice(words) for _ in range(3)) + "(int, %s*)" % rng.choice(words)
            block = [f"FUNC {addr:x} {fsize:x} 0 {fname}"]
            a = addr
            while a < addr + fsize:
                step = rng.randint(2, 24)
                block.append(f"{a:x} {step:x} {rng.randint(1, 5000)} {rng.randint(0, 199)}")
                a += step
            block.append(f"STACK CFI INIT {addr:x} {fsize:x} .cfa: $rsp 8 + .ra: .cfa -8 + ^")
            text = "\n".join(block)
            lines.append(text)
            size += len(text) + 1
            addr += fsize + rng.randint(0, 64)
        z.writestr(f"{name}/{debug_id}/{name}.sym", "\n".join(lines) + "\n")
PY
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
for c in 8 32; do
    ab -k -q -c "$c" -n 40000 -H "Accept-Encoding: gzip" "$BASE/$KEY" >"$WORK/ab.txt" 2>&1
    echo "downloads, $c connections, $((SYM_BYTES >> 10)) KiB gzip each: $(grep -E '^Requests per second' "$WORK/ab.txt" | awk '{print $4}') /s" \
         "(failed: $(grep -E '^Failed requests' "$WORK/ab.txt" | awk '{print $3}'), p99 $(grep -E '^  99%' "$WORK/ab.txt" | awk '{print $2}') ms)"
done
HEAD_OK=$(ab -k -q -i -c 32 -n 40000 "$BASE/$KEY" 2>/dev/null | grep -E '^Requests per second' | awk '{print $4}')
echo "HEAD, 32 connections: $HEAD_OK /s"
echo "peak RSS of serve: $(grep VmHWM /proc/"$SERVER"/status | awk '{print $2, $3}')"
