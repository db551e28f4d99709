"""Times PyPI `symbolic` on the same file and addresses as symbol-bench, in the same run.

Usage: symbolic_bench.py FILE.sym SYMCACHE_OUT < addresses (decimal, one per line)
Prints JSON: {"cold": s, "warm": s, "found": n}
  cold = Archive.open + get_object + make_symcache + lookups
  warm = SymCache.open(saved symcache file) + lookups (best of 5)
"""
import json
import sys
import time

import symbolic

path, cache_path = sys.argv[1], sys.argv[2]
addresses = [int(line) for line in sys.stdin if line.strip()]

start = time.perf_counter()
obj = next(iter(symbolic.Archive.open(path).iter_objects()))
cache = obj.make_symcache()
found = sum(1 for a in addresses if cache.lookup(a))
cold = time.perf_counter() - start

with open(cache_path, "wb") as f:
    cache.dump_into(f)
warm = float("inf")
for _ in range(5):
    start = time.perf_counter()
    c = symbolic.SymCache.open(cache_path)
    for a in addresses:
        c.lookup(a)
    warm = min(warm, time.perf_counter() - start)
print(json.dumps({"cold": cold, "warm": warm, "found": found}))
