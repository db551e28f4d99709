"""Breakpad's stackwalker as a test oracle.

PyPI `symbolic` 8.7.3 embeds Google Breakpad's minidump processor (later versions dropped it).
It is installed apart from the newer `symbolic` the other oracles use:
    pip install --no-deps --target DIR symbolic==8.7.3
and found through BREAKPAD_SYMBOLIC_PATH=DIR.

Usage: breakpad_stackwalk.py DUMP [SYMBOLS_DIR]
   or: breakpad_stackwalk.py --batch < LIST   (lines "DUMP<tab>SYMBOLS_DIR"; one JSON line each)
Prints one JSON object: {"threads": [{"id": N, "frames": [{"pc", "instruction", "trust",
"registers"}...]}...]}. Symbol files (a `<debug file>/<debug id>/<name>.sym` tree) give Breakpad
their STACK CFI and STACK WIN records; Breakpad's symbolizer here has no function names, so a
scanned address counts as plausible anywhere inside a module.
"""
import json
import os
import sys

sys.path.insert(0, os.environ.get("BREAKPAD_SYMBOLIC_PATH", ""))
from symbolic import debuginfo, minidump  # noqa: E402


def frame_infos(symbols_dir):
    infos = minidump.FrameInfoMap.new()
    if not symbols_dir:
        return infos
    for root, _, files in os.walk(symbols_dir):
        for name in files:
            if not name.endswith(".sym"):
                continue
            archive = debuginfo.Archive.open(os.path.join(root, name))
            # This version takes the Breakpad form of the id: the tree's folder name.
            debug_id = os.path.basename(root)
            for obj in archive.iter_objects():
                infos.add(debug_id, minidump.CfiCache.from_object(obj))
    return infos


def walk(dump, symbols_dir):
    state = minidump.ProcessState.from_minidump(dump, frame_infos(symbols_dir))
    threads = []
    for thread in state.threads():
        frames = []
        for f in thread.frames():
            frames.append({
                "pc": f.return_address,
                "instruction": f.instruction,
                "trust": f.trust,
                "registers": {k: int(v, 16) if isinstance(v, str) else v for k, v in f.registers.items()},
            })
        threads.append({"id": thread.thread_id, "frames": frames})
    return {"requesting_thread": state.requesting_thread, "threads": threads}


def main():
    if sys.argv[1:] == ["--batch"]:
        for line in sys.stdin:
            dump, _, symbols_dir = line.rstrip("\n").partition("\t")
            print(json.dumps(walk(dump, symbols_dir or None)), flush=True)
        return
    print(json.dumps(walk(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)))


if __name__ == "__main__":
    main()
