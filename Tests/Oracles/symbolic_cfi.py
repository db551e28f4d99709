"""Test oracle: the STACK CFI records PyPI `symbolic` (CfiCache) derives from an object file.

Usage: symbolic_cfi.py FILE   → the records on stdout, one per line
"""
import io
import sys

import symbolic

obj = next(iter(symbolic.Archive.open(sys.argv[1]).iter_objects()))
buffer = io.BytesIO()
symbolic.CfiCache.from_object(obj).write_to(buffer)
data = buffer.getvalue()
# The cache file is the Breakpad text after a small binary header.
start = data.find(b"STACK ")
sys.stdout.write(data[start:].decode("utf-8", "replace") if start >= 0 else "")
