"""A zip of generated Breakpad .sym files for the symbol-server benchmark.

Usage: make_symbols_zip.py OUT.zip ZIP_MB FILES  (text compresses about 3x: ZIP_MB of zip is ~3x that of .sym)
"""
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
