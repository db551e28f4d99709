"""Test oracle: signatures from PyPI `siggen` (Mozilla's Socorro signature generator).

Usage: siggen_signatures.py < crash-data.jsonl
Prints one JSON object per input line: {"signature": ..., "notes": [...]}, generated with
siggen's DEFAULT_RULESET and its bundled signature lists. Prints the elapsed generation time
on stderr as "seconds=<float>".
"""
import json
import sys
import time

from siggen.generator import SignatureGenerator


def main():
    docs = [json.loads(line) for line in sys.stdin if line.strip()]
    generator = SignatureGenerator()
    start = time.perf_counter()
    results = [generator.generate(doc) for doc in docs]
    elapsed = time.perf_counter() - start
    out = sys.stdout
    for r in results:
        out.write(json.dumps({"signature": r.signature, "notes": r.notes}) + "\n")
    sys.stderr.write("seconds=%f\n" % elapsed)


if __name__ == "__main__":
    main()
