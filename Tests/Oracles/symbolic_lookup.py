"""Test oracle: look addresses up with the PyPI package `symbolic` (Sentry's symbolicator core).

Usage: symbolic_lookup.py FILE.sym  < addresses (one decimal per line)
Prints one JSON object per address: {"address": N, "frames": [...]} with frames innermost first,
or {"address": N, "frames": []} when symbolic finds nothing. Also prints the parse+symcache+lookup
time on stderr as "seconds=<float>".
"""
import json
import sys
import time

import symbolic


def main():
    path = sys.argv[1]
    addresses = [int(line) for line in sys.stdin if line.strip()]
    start = time.perf_counter()
    archive = symbolic.Archive.open(path)
    obj = next(iter(archive.iter_objects()))
    cache = obj.make_symcache()
    results = [(a, cache.lookup(a)) for a in addresses]
    elapsed = time.perf_counter() - start
    out = sys.stdout
    for address, frames in results:
        out.write(json.dumps({
            "address": address,
            "frames": [
                {"symbol": f.symbol, "sym_addr": f.sym_addr, "file": f.full_path, "line": f.line}
                for f in frames
            ],
        }) + "\n")
    sys.stderr.write("seconds=%f\n" % elapsed)


if __name__ == "__main__":
    main()
