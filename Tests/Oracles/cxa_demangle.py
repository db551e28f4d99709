"""Test oracle: C++ names demangled by the C++ runtime's abi::__cxa_demangle (libstdc++, the
demangler Breakpad's dump_syms calls), through ctypes.

Usage: cxa_demangle.py < names   → one line per name: the demangled name, or <nil> when the
runtime cannot demangle it.
"""
import ctypes, sys
lib = ctypes.CDLL("libstdc++.so.6")
f = lib.__cxa_demangle
f.restype = ctypes.c_void_p
f.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]
libc = ctypes.CDLL("libc.so.6")
libc.free.argtypes = [ctypes.c_void_p]
for line in sys.stdin:
    name = line.rstrip("\n")
    status = ctypes.c_int(0)
    p = f(name.encode(), None, None, ctypes.byref(status))
    if status.value == 0 and p:
        print(ctypes.string_at(p).decode("utf-8", "replace"))
        libc.free(p)
    else:
        print("<nil>")
