# prepyc facts: what the core needs to know about a target interpreter.
#
# Embedded into the prepyc binary and run once per target as
#     python -c <this file>
# with the caller's environment (so PYTHONOPTIMIZE and PYTHONPYCACHEPREFIX
# count, as they do for compileall).  Prints NUL-terminated KEY=VALUE records
# on stdout.  It must parse under Python 2 too, so that prepyc can refuse a
# Python 2 target with a clear message instead of a traceback.
import sys

if sys.version_info[0] < 3:
    sys.stdout.write("version=%d.%d.%d\0" % tuple(sys.version_info[:3]))
    sys.exit(0)

import importlib.util
import os

out = sys.stdout.buffer


def put(key, value):
    if value is None:
        return
    if not isinstance(value, bytes):
        value = os.fsencode(str(value))
    out.write(key.encode() + b"=" + value + b"\0")


impl = sys.implementation
put("version", "%d.%d.%d" % tuple(sys.version_info[:3]))
put("hexversion", sys.hexversion)
put("implementation", impl.name)
if hasattr(sys, "pypy_version_info"):
    put("impl_version", "%d.%d.%d" % tuple(sys.pypy_version_info[:3]))
put("magic", importlib.util.MAGIC_NUMBER.hex())
put("build", sys.version)  # with the build's date and compiler: the bytecode cache's key
put("cache_tag", impl.cache_tag)
put("pycache_prefix", getattr(sys, "pycache_prefix", None))
put("optimize", sys.flags.optimize)
put("recursion_limit", sys.getrecursionlimit())
put("executable", sys.executable)
if sys.version_info >= (3, 13):
    # free-threaded build (3.13t, 3.14t): same magic and cache tag as the
    # default build, so the bytecode cache must tell them apart itself
    import sysconfig
    put("gil_disabled", int(bool(sysconfig.get_config_var("Py_GIL_DISABLED"))))
if hasattr(importlib.util, "source_hash"):  # 3.7+: hash-based pycs
    put("source_hash_abc", importlib.util.source_hash(b"abc").hex())
put("end", "1")
out.flush()
