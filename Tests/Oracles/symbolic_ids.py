"""Test oracle: the debug id, code id and architecture PyPI `symbolic` reads from an object file.

Usage: symbolic_ids.py FILE   → {"debug_id": ..., "code_id": ..., "arch": ...} on stdout
"""
import json
import sys

import symbolic

obj = next(iter(symbolic.Archive.open(sys.argv[1]).iter_objects()))
print(json.dumps({"debug_id": obj.debug_id, "code_id": obj.code_id, "arch": obj.arch}))
