# prepyc import check: does importing these modules compile anything?
#
# Embedded into the prepyc binary and run as
#     python -c <this file> MODULE...
# with the caller's environment and working directory, like the application
# itself.  It IMPORTS the modules, so their import-time code runs.  An audit
# hook (Python 3.8+) records every source compiled (the "compile" event for
# a .py file on disk) and every bytecode file opened for writing; each one is
# a line "KIND\tTEXT" on fd 3 (KIND: compile, write, error), so that
# nothing the application prints can be mistaken for a finding.
import os
import sys

report = os.fdopen(3, "w", encoding="utf-8", errors="backslashreplace")


seen = set()


def record(kind, text):
    if (kind, text) in seen:  # the audit event and the loader report one compile
        return
    seen.add((kind, text))
    report.write("%s\t%s\n" % (kind, str(text).replace("\n", " ")))
    report.flush()


def hook(event, args):
    try:
        if event == "compile":
            filename = args[1]
            if isinstance(filename, bytes):
                filename = os.fsdecode(filename)
            if (isinstance(filename, str) and filename.endswith(".py")
                    and os.path.isfile(filename)):
                record("compile", filename)
        elif event == "open":
            path, mode, flags = args[0], args[1], args[2]
            if isinstance(path, int):
                return
            path = os.fsdecode(os.fspath(path))
            writing = (mode is not None and any(c in mode for c in "wax+")) or (
                mode is None and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
            if writing and ("__pycache__" in path or ".pyc" in path):
                record("write", path)
    except Exception:
        pass


sys.addaudithook(hook)

import importlib  # noqa: E402
import importlib.machinery  # noqa: E402

# The import system compiles through SourceLoader.source_to_code: watch it
# too (PyPy raises no "compile" audit event).
_loader = importlib.machinery.SourceFileLoader
_source_to_code = _loader.source_to_code


def source_to_code(self, data, path, *args, **kwargs):
    if isinstance(path, (str, bytes)) and os.fsdecode(path).endswith(".py"):
        record("compile", os.fsdecode(path))
    return _source_to_code(self, data, path, *args, **kwargs)


_loader.source_to_code = source_to_code

for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except BaseException as exc:  # SystemExit, KeyboardInterrupt... from its code
        record("error", "%s: import failed: %s: %s" % (name, type(exc).__name__, exc))
record("done", len(sys.argv) - 1)
report.close()
