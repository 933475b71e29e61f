# Run by tests/pyodide/install.sh inside a Pyodide runtime:
#     python3.X -S -s -B mkstdlib.py SOURCE_ZIP OUTPUT_ZIP PREFIX
# Copies Pyodide's python_stdlib.zip (sources only) to OUTPUT_ZIP, adding
# beside each module an unchecked hash-based pyc compiled by this runtime, so
# that zipimport loads the standard library without compiling it at every
# start.  co_filename is what zipimport would give the source: the path of the
# standard library zip on sys.path, then the name in the zip.
#
# Also extracts the zip into PREFIX/lib/python3.X (with empty site-packages
# and lib-dynload, as Pyodide has them) and compiles it there: the launcher's
# --prefix makes that tree the stdlib sysconfig names and sys.path holds, at a
# path the host sees too.
import importlib._bootstrap_external as bootstrap
import importlib.util
import os
import sys
import time
import zipfile


def extract(src, prefix):
    lib = os.path.join(prefix, "lib", "python%d.%d" % sys.version_info[:2])
    tmp = lib + ".tmp%d" % os.getpid()
    with zipfile.ZipFile(src) as z:
        z.extractall(tmp)
        # whole seconds, the zip's: no time for Node to round differently
        for info in z.infolist():
            if not info.is_dir():
                t = time.mktime(info.date_time + (0, 0, -1))
                os.utime(os.path.join(tmp, info.filename), (t, t))
    for sub in ("site-packages", "lib-dynload"):
        os.makedirs(os.path.join(tmp, sub), exist_ok=True)
    if os.path.isdir(lib):
        import shutil
        shutil.rmtree(lib)
    os.rename(tmp, lib)
    # __pycache__ beside the sources, as an installed Python has them
    import compileall
    compileall.compile_dir(lib, quiet=2)
    print("%s: the standard library's sources, compiled" % lib)


def main(src, dst):
    prefix = [p for p in sys.path if p.endswith(".zip")][0]
    tmp = dst + ".tmp%d" % os.getpid()
    count = 0
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            zout.writestr(info, data, zipfile.ZIP_STORED)
            if not info.filename.endswith(".py"):
                continue
            try:
                code = compile(data, prefix + "/" + info.filename, "exec", dont_inherit=True)
            except SyntaxError:
                continue
            pyc = bootstrap._code_to_hash_pyc(code, importlib.util.source_hash(data), False)
            zout.writestr(zipfile.ZipInfo(info.filename + "c", info.date_time), bytes(pyc))
            count += 1
    os.replace(tmp, dst)
    print("%s: %d modules precompiled" % (dst, count))


main(sys.argv[1], sys.argv[2])
extract(sys.argv[1], sys.argv[3])
