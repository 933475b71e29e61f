"""prepyc's PEP 517 build backend: standard library only, no build dependency.

pyproject.toml names this module (``backend-path = ["python"]``), so
``pip install .``, ``pip install git+URL``, ``pip wheel .`` and the sdist
round trip work offline in any virtual environment, with or without
setuptools.

build_wheel runs the Makefile with the machine's C compiler, its objects
and the binary in a temporary directory (the source tree is only read),
and writes ``prepyc-VERSION-py3-none-PLATFORM.whl``:

    prepyc/__init__.py, prepyc/__main__.py   ``python -m prepyc``
    prepyc-VERSION.data/scripts/prepyc       the binary (mode 0755), which
                                             the installer puts in bin/
    prepyc-VERSION.dist-info/                METADATA, WHEEL, RECORD

build_sdist writes ``prepyc-VERSION.tar.gz``: PKG-INFO and the files of the
source tree (``git ls-files`` in a git checkout, else a walk that leaves
out build outputs), enough to build the wheel again.

The version is the Makefile's VERSION, the one place it is written.
Errors (no compiler, no make, a failed build) end the hook with one
``prepyc: error: ...`` line and exit status 1, not a traceback.
Runs on Python 3.6+.
"""

import base64
import csv
import gzip
import hashlib
import io
import os
import re
import shlex
import shutil
import subprocess
import sysconfig
import tarfile
import tempfile
import time
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAME = 'prepyc'
SUMMARY = ('Precompile Python bytecode for deployment: a fast, drop-in replacement '
           'for python -m compileall')
LICENSE = 'UNKNOWN'  # the repository has no license file yet
PACKAGE_DIR = os.path.join(ROOT, 'python', 'prepyc')

INSTALL_HINT = ('install a C compiler and make: `apt-get install gcc make` (Debian, Ubuntu), '
                '`dnf install gcc make` (Fedora), `apk add build-base` (Alpine), '
                '`xcode-select --install` (macOS)')


def fail(message):
    """End the hook: pip shows the message, without a traceback."""
    raise SystemExit('prepyc: error: ' + message)


def version():
    with open(os.path.join(ROOT, 'Makefile')) as f:
        m = re.search(r'^VERSION\s*[:?]?=\s*(\S+)\s*$', f.read(), re.M)
    if not m:
        fail("no 'VERSION = ...' line in %s" % os.path.join(ROOT, 'Makefile'))
    return m.group(1)


def platform_tag():
    return re.sub(r'[-.]', '_', sysconfig.get_platform())


def metadata():
    with open(os.path.join(ROOT, 'README.md'), encoding='utf-8') as f:
        readme = f.read()
    return ('Metadata-Version: 2.1\n'
            'Name: %s\n'
            'Version: %s\n'
            'Summary: %s\n'
            'License: %s\n'
            'Requires-Python: >=3.6\n'
            'Description-Content-Type: text/markdown\n'
            '\n%s' % (NAME, version(), SUMMARY, LICENSE, readme))


def wheel_file():
    return ('Wheel-Version: 1.0\n'
            'Generator: prepyc_build %s\n'
            'Root-Is-Purelib: false\n'
            'Tag: py3-none-%s\n' % (version(), platform_tag()))


def dist_info():
    return '%s-%s.dist-info' % (NAME, version())


# ---------------------------------------------------------------------------
# Building the binary
# ---------------------------------------------------------------------------

def find_tool(env_var, names, what):
    """The program named by $env_var (its first word), else the first of
    `names` on PATH; fails naming what to install."""
    given = os.environ.get(env_var)
    candidates = shlex.split(given)[:1] if given else names
    for name in candidates:
        if shutil.which(name):
            return name
    fail('cannot build prepyc: no %s (%s not found on PATH); %s'
         % (what, ' or '.join("'%s'" % n for n in candidates), INSTALL_HINT))


def build_binary(build_dir):
    """Run the Makefile with its objects in build_dir; the binary's path."""
    make = find_tool('MAKE', ['gmake', 'make'], 'make')
    find_tool('CC', ['cc'], 'C compiler')
    argv = [make, '-C', ROOT, 'BUILD=' + build_dir, os.path.join(build_dir, 'prepyc')]
    if not re.search(r'(^|\s)-j|jobserver', os.environ.get('MAKEFLAGS', '')):
        argv.append('-j%d' % (os.cpu_count() or 1))
    print(' '.join(shlex.quote(a) for a in argv), flush=True)
    rc = subprocess.call(argv)
    if rc != 0:
        fail('building prepyc failed (%s exited with status %d; its messages are above)'
             % (make, rc))
    return os.path.join(build_dir, 'prepyc')


# ---------------------------------------------------------------------------
# The wheel
# ---------------------------------------------------------------------------

def timestamp():
    return int(os.environ.get('SOURCE_DATE_EPOCH') or time.time())


def record_line(arcname, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=')
    return [arcname, 'sha256=' + digest.decode('ascii'), str(len(data))]


def write_wheel(path, files):
    """files: [(arcname, bytes, mode)]; RECORD is added last."""
    date_time = time.gmtime(max(timestamp(), 315532800))[:6]  # zip: 1980 or later
    record = io.StringIO()
    writer = csv.writer(record, lineterminator='\n')
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED) as zf:
        for arcname, data, mode in files:
            info = zipfile.ZipInfo(arcname, date_time)
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
            writer.writerow(record_line(arcname, data))
        record_name = dist_info() + '/RECORD'
        writer.writerow([record_name, '', ''])
        info = zipfile.ZipInfo(record_name, date_time)
        info.external_attr = 0o100644 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        zf.writestr(info, record.getvalue().encode('utf-8'))


def read(path):
    with open(path, 'rb') as f:
        return f.read()


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    ver = version()
    name = '%s-%s-py3-none-%s.whl' % (NAME, ver, platform_tag())
    tmp = tempfile.mkdtemp(prefix='prepyc-build-')
    try:
        binary = build_binary(os.path.join(tmp, 'build'))
        files = [('prepyc/' + f, read(os.path.join(PACKAGE_DIR, f)), 0o644)
                 for f in sorted(os.listdir(PACKAGE_DIR)) if f.endswith('.py')]
        files.append(('%s-%s.data/scripts/prepyc' % (NAME, ver), read(binary), 0o755))
        files.append((dist_info() + '/METADATA', metadata().encode('utf-8'), 0o644))
        files.append((dist_info() + '/WHEEL', wheel_file().encode('utf-8'), 0o644))
        partial = os.path.join(tmp, name)
        write_wheel(partial, files)
        shutil.move(partial, os.path.join(wheel_directory, name))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return name


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    target = os.path.join(metadata_directory, dist_info())
    os.makedirs(target, exist_ok=True)
    for fname, text in (('METADATA', metadata()), ('WHEEL', wheel_file())):
        with open(os.path.join(target, fname), 'w', encoding='utf-8') as f:
            f.write(text)
    return dist_info()


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


# ---------------------------------------------------------------------------
# The sdist
# ---------------------------------------------------------------------------

# Left out of the sdist when the tree is not a git checkout (the Makefile's
# outputs at the top, and what Python and venv leave anywhere).
TOP_LEVEL_OUTPUTS = re.compile(r'^(build.*|prepyc|dist)$')


def git_files():
    """The checkout's tracked and untracked-but-not-ignored files, or None
    when ROOT is not in a git checkout (or git is missing)."""
    try:
        out = subprocess.check_output(
            ['git', '-C', ROOT, 'ls-files', '-z', '--cached', '--others', '--exclude-standard'],
            stderr=subprocess.DEVNULL)
    except (OSError, subprocess.CalledProcessError):
        return None
    names = [n for n in out.decode('utf-8', 'surrogateescape').split('\0') if n]
    # tracked files deleted in the working tree are still listed
    return sorted(n for n in set(names) if os.path.isfile(os.path.join(ROOT, n)))


def walked_files():
    found = []
    for dirpath, dirnames, filenames in os.walk(ROOT):
        rel = os.path.relpath(dirpath, ROOT)
        top = rel == '.'
        dirnames[:] = [d for d in dirnames
                       if d not in ('.git', '__pycache__')
                       and not (top and TOP_LEVEL_OUTPUTS.match(d))
                       and not os.path.exists(os.path.join(dirpath, d, 'pyvenv.cfg'))]
        for f in filenames:
            if f.endswith('.pyc') or (top and TOP_LEVEL_OUTPUTS.match(f)):
                continue
            if os.path.isfile(os.path.join(dirpath, f)):
                found.append(f if top else os.path.join(rel, f))
    return sorted(found)


def sdist_files():
    files = git_files()
    return walked_files() if files is None else files


def build_sdist(sdist_directory, config_settings=None):
    base = '%s-%s' % (NAME, version())
    name = base + '.tar.gz'
    mtime = timestamp()

    def add(tar, rel, data, mode):
        info = tarfile.TarInfo(base + '/' + rel)
        info.size = len(data)
        info.mode = mode
        info.mtime = mtime
        tar.addfile(info, io.BytesIO(data))

    partial = os.path.join(sdist_directory, '.%s.%d.tmp' % (name, os.getpid()))
    try:
        with open(partial, 'wb') as raw, \
                gzip.GzipFile(fileobj=raw, mode='wb', mtime=mtime, filename='') as gz, \
                tarfile.open(fileobj=gz, mode='w', format=tarfile.PAX_FORMAT) as tar:
            add(tar, 'PKG-INFO', metadata().encode('utf-8'), 0o644)
            for rel in sdist_files():
                path = os.path.join(ROOT, rel)
                add(tar, rel, read(path), 0o755 if os.stat(path).st_mode & 0o111 else 0o644)
        os.replace(partial, os.path.join(sdist_directory, name))
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return name
