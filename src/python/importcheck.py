# prepyc import check: does importing these modules compile anything, and
# where do the modules come from?
#
# Embedded into the prepyc binary and run as
#     python -c <this file> MODULE...
# with the caller's environment and working directory, like the application
# itself.  It IMPORTS the modules, so their import-time code runs.  An audit
# hook (Python 3.8+) records every source compiled (the "compile" event for
# a .py file on disk) and every bytecode file opened for writing.
#
# Records go to fd 3, one a line, "KIND\tTEXT\n", so that nothing the
# application prints can be mistaken for a finding (the grammar is also in
# src/engine/check-import.h):
#     import\tNAME                 the next argument is being imported; what
#                                  follows, up to the next import, is its
#     compile\tFILE                a source compiled
#     write\tFILE                  a bytecode file opened for writing
#     lazy\tIMPORTER\tNAME         a lazy import (3.15+, PEP 810) made eager
#     module\tNAME\tWHERE\tFILE    a module loaded: WHERE is "stdlib" (a file
#                                  of the target's standard library, not of a
#                                  site-packages), "file" (any other file:
#                                  FILE says which) or "none" (built-in,
#                                  frozen, namespace package: FILE empty)
#     error\tNAME\tTYPE: MESSAGE   the import of argument NAME failed
#     done\tN                      all N arguments were attempted
# Text is UTF-8 with backslash escapes for what is not; a newline in a text
# becomes a space.  The last field of a record may hold tabs.
import os
import sys

report = os.fdopen(3, "w", encoding="utf-8", errors="backslashreplace")


seen = set()
muted = [False]  # while the check imports what it needs itself


def record(kind, *fields):
    if muted[0]:
        return
    text = "\t".join(str(f).replace("\n", " ") for f in fields)
    if kind in ("compile", "write"):
        if (kind, text) in seen:  # the audit event and the loader report one compile
            return
        seen.add((kind, text))
    report.write("%s\t%s\n" % (kind, text))
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


# Lazy imports (3.15+, PEP 810) load nothing until first use, so a module
# imported lazily would escape the check: make every one eager, and say so.
def lazy_filter(importer, name, fromlist=None):
    try:
        record("lazy", importer, name)
    except Exception:
        pass
    return False


if hasattr(sys, "set_lazy_imports_filter"):
    sys.set_lazy_imports_filter(lazy_filter)


def _dirs():
    """The target's standard library directories, and the site-packages ones
    (which may lie inside them: pyenv, a distribution's own build)."""
    import sysconfig
    stdlib, site = set(), set()
    for key in ("stdlib", "platstdlib"):
        try:
            stdlib.add(sysconfig.get_path(key))
        except Exception:
            pass
    zipname = "python%d%d.zip" % sys.version_info[:2]
    stdlib.update(p for p in sys.path if os.path.basename(p) == zipname)
    for key in ("purelib", "platlib"):
        try:
            site.add(sysconfig.get_path(key))
        except Exception:
            pass
    try:
        import site as site_module
        site.update(site_module.getsitepackages())
        site.add(site_module.getusersitepackages())
    except Exception:
        pass
    site.update(p for p in sys.path
                if os.path.basename(p) in ("site-packages", "dist-packages"))
    real = lambda s: [os.path.realpath(p) for p in s if p]  # noqa: E731
    return real(stdlib), real(site)


def _under(path, dirs):
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in dirs)


def where(module):
    spec = getattr(module, "__spec__", None)
    path = None
    if spec is not None and getattr(spec, "has_location", False):
        path = spec.origin
    elif spec is None:
        path = getattr(module, "__file__", None)
    if not isinstance(path, str) or not path:
        return "none", ""
    real = os.path.realpath(path)
    if _under(real, STDLIB) and not _under(real, SITE):
        return "stdlib", path
    return "file", path


muted[0] = True
try:
    STDLIB, SITE = _dirs()
except Exception:
    STDLIB, SITE = [], []
muted[0] = False

loaded = set(sys.modules)


def record_new_modules():
    for name, module in list(sys.modules.items()):
        if name in loaded:
            continue
        loaded.add(name)
        try:
            kind, path = where(module)
        except Exception:
            kind, path = "none", ""
        record("module", name, kind, path)


for name in sys.argv[1:]:
    record("import", name)
    try:
        importlib.import_module(name)
    except BaseException as exc:  # SystemExit, KeyboardInterrupt... from its code
        record("error", name, "%s: %s" % (type(exc).__name__, exc))
    record_new_modules()
record("done", len(sys.argv) - 1)
report.close()
