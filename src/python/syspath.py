# prepyc sys.path probe: the directories `python -m compileall` with no
# arguments would compile, and those of `--sys-path`.  Embedded into the
# prepyc binary and run as
#     python -c <this file>            (compileall)
#     python -B -c <this file> --plain (--sys-path: import nothing more)
# with the caller's environment and site (as compileall runs).  Prints the
# entries of sys.path after the first, NUL-terminated; the first entry is
# what -c put there, and prepyc replaces it by what -m would have.
import os
import sys

# `python -m compileall` imports these before it walks anything, and the
# import system caches their bytecode (under PYTHONPYCACHEPREFIX, say) so
# that compileall then finds them fresh: do the same, for the same output.
if "--plain" not in sys.argv[1:]:
    try:
        import argparse  # noqa: F401
        import compileall  # noqa: F401
    except Exception:
        pass

out = sys.stdout.buffer
# -c put '' first, unless safe_path (-P, PYTHONSAFEPATH, 3.11+) kept it out
first = 0 if getattr(sys.flags, "safe_path", False) else 1
for p in sys.path[first:]:
    out.write(os.fsencode(p) + b"\0")
