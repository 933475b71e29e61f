"""Shared helpers for prepyc's end-to-end tests.

Runs on the machine's python3 (3.11).  Only the small snippets in the
``*_SCRIPT`` strings run inside a *target* interpreter; they are written for
Python 3.6+ (no f-strings).

Interpreter discovery
    Debian's /usr/bin/python3, every ``$(pyenv root)/versions/*/bin/python3.X``,
    ``pypy3`` on PATH, and CPython 3.14 and 3.15 in Pyodide (WebAssembly, under
    Node), as tests/pyodide/install.sh installs them:
    ``${PREPYC_TEST_CACHE:-~/.cache/prepyc-tests}/pyodide/{314,315}/python3.X``
    (labels pyodide314, pyodide315).  ``PREPYC_TEST_PYTHONS`` (comma-separated
    paths, those wrappers included) replaces that list.  A candidate that is
    missing or is not Python 3 is kept as a candidate with a skip reason, so
    the per-interpreter test class still shows up (skipped).

Pyodide
    A Pyodide interpreter (``Interp.pyodide``) has no processes, threads or
    signals of its own and checks file permissions itself, without root's
    privileges (tests/pyodide/python.mjs says what works); a test that needs
    one of those calls ``support.skip_if_pyodide(self, self.py, REASON)``
    (``self.skip_if_pyodide(REASON)`` in an InterpreterCase).  A Pyodide
    process takes 1-2 s to start, so only the tests in PYODIDE_QUICK run there
    (tests/run.py skips the others) unless ``PREPYC_TEST_PYODIDE=all``;
    ``PREPYC_TEST_PYODIDE=none`` leaves Pyodide out of the default list.
"""

import json
import atexit
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PREPYC = os.path.abspath(os.environ.get('PREPYC') or os.path.join(REPO, 'prepyc'))

DEFAULT_TIMEOUT = 300

# Environment variables that must not leak from the caller of the test-suite
# into the runs we compare (they change what compileall or prepyc do).
_SCRUB_EXACT = {'VIRTUAL_ENV', 'SOURCE_DATE_EPOCH', 'PREPYC_TEST_PYTHONS', 'PREPYC_PYTHON'}


# prepyc remembers target facts under its cache directory: keep the tests'
# cache apart from the user's, and fresh for every run of the suite.
CACHE_DIR = tempfile.mkdtemp(prefix='prepyc-e2e-cache-')
atexit.register(shutil.rmtree, CACHE_DIR, True)


def base_env(**extra):
    """A clean environment: no PYTHON* variables, no VIRTUAL_ENV, no
    SOURCE_DATE_EPOCH, a UTF-8 locale.  ``extra`` values of None delete."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith('PYTHON') and k not in _SCRUB_EXACT}
    env['LC_ALL'] = 'C.UTF-8'
    env['PREPYC_CACHE_DIR'] = CACHE_DIR
    env.pop('LANG', None)
    env.pop('LANGUAGE', None)
    for k, v in extra.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = str(v)
    return env


# ---------------------------------------------------------------------------
# Running processes
# ---------------------------------------------------------------------------

class Result(object):
    def __init__(self, argv, rc, out, err, elapsed, timed_out=False):
        self.argv = argv
        self.rc = rc
        self.out = out
        self.err = err
        self.elapsed = elapsed
        self.timed_out = timed_out

    def describe(self):
        return ('command: %s\nexit status: %r%s\n--- stdout ---\n%s\n--- stderr ---\n%s'
                % (' '.join(_shquote(a) for a in self.argv), self.rc,
                   ' (TIMED OUT)' if self.timed_out else '',
                   self.out[-6000:], self.err[-6000:]))

    __str__ = describe


def _shquote(s):
    s = str(s)
    if re.match(r'^[\w@%+=:,./-]+$', s):
        return s
    return "'" + s.replace("'", "'\"'\"'") + "'"


def run(argv, cwd=None, env=None, timeout=DEFAULT_TIMEOUT, stdin_data=None,
        umask=None, stdout_to_file=False):
    """Run argv in its own session; on timeout kill the whole process group
    (prepyc's workers included) and return a Result with timed_out=True."""
    argv = [str(a) for a in argv]
    if env is None:
        env = base_env()

    def preexec():
        if umask is not None:
            os.umask(umask)

    out_file = None
    if stdout_to_file:
        out_file = tempfile.TemporaryFile()
    start = time.monotonic()
    proc = subprocess.Popen(
        argv, cwd=cwd, env=env,
        stdin=subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL,
        stdout=out_file if out_file is not None else subprocess.PIPE,
        stderr=subprocess.PIPE, start_new_session=True,
        preexec_fn=preexec if umask is not None else None)
    timed_out = False
    try:
        out, err = proc.communicate(
            input=stdin_data.encode() if isinstance(stdin_data, str) else stdin_data,
            timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        out, err = proc.communicate()
    elapsed = time.monotonic() - start
    if out_file is not None:
        out_file.seek(0)
        out = out_file.read()
        out_file.close()
    return Result(argv, proc.returncode,
                  (out or b'').decode('utf-8', 'backslashreplace'),
                  (err or b'').decode('utf-8', 'backslashreplace'),
                  elapsed, timed_out)


def prepyc_exists():
    return os.path.isfile(PREPYC) and os.access(PREPYC, os.X_OK)


def require_prepyc():
    if not prepyc_exists():
        raise AssertionError('prepyc binary not found at %s (build it with make, '
                             'or set PREPYC)' % PREPYC)


def run_prepyc(args, cwd=None, env=None, timeout=DEFAULT_TIMEOUT, umask=None):
    require_prepyc()
    return run([PREPYC] + list(args), cwd=cwd, env=env, timeout=timeout, umask=umask)


def run_compileall(interp, targets, cwd=None, env=None, args=('-j0', '-q'),
                   timeout=1800):
    """``PYTHONHASHSEED=0 python -m compileall -j0 -q TARGETS`` (hash seed
    from env if the caller's env sets it).  stdout goes through a file so the
    lines of parallel workers cannot be cut into each other by a pipe."""
    if env is None:
        env = base_env()
    env = dict(env)
    env.setdefault('PYTHONHASHSEED', '0')
    if isinstance(targets, str):
        targets = [targets]
    return run([interp.path, '-m', 'compileall'] + list(args) + list(targets),
               cwd=cwd, env=env, timeout=timeout, stdout_to_file=True)


# ---------------------------------------------------------------------------
# Output parsing
# ---------------------------------------------------------------------------

_CA_ERR = re.compile(r"\*\*\* Error compiling ('(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\")\.\.\.")
_PP_ERR = re.compile(r"^prepyc: error: cannot compile '(.*)':", re.M)


def compileall_failures(out):
    import ast
    return set(ast.literal_eval(m.group(1)) for m in _CA_ERR.finditer(out))


def compileall_messages(out):
    """{path: message text} from ``compileall -q`` output (serial runs)."""
    import ast
    msgs = {}
    matches = list(_CA_ERR.finditer(out))
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(out)
        msgs[ast.literal_eval(m.group(1))] = out[m.end():end].strip('\n')
    return msgs


def prepyc_failures(err):
    return set(m.group(1) for m in _PP_ERR.finditer(err))


_SUMMARY = re.compile(r'^prepyc: (\d+) compiled, (\d+) up to date, (\d+) failed\b.*$', re.M)


def parse_summary(out):
    """Return dict(compiled, uptodate, failed, line) from prepyc's stdout, or None."""
    m = _SUMMARY.search(out)
    if not m:
        return None
    return {'compiled': int(m.group(1)), 'uptodate': int(m.group(2)),
            'failed': int(m.group(3)), 'line': m.group(0)}


# ---------------------------------------------------------------------------
# Interpreters
# ---------------------------------------------------------------------------

PROBE_SCRIPT = r'''
import sys, json, platform, sysconfig
try:
    import importlib.util as iu
    magic = iu.MAGIC_NUMBER.hex()
except Exception:
    magic = None
print(json.dumps({
    'version': list(sys.version_info[:3]),
    'impl': sys.implementation.name,
    'impl_pretty': platform.python_implementation(),
    'version_str': platform.python_version(),
    'cache_tag': sys.implementation.cache_tag,
    'magic': magic,
    'stdlib': sysconfig.get_paths()['stdlib'],
    'executable': sys.executable,
    'recursionlimit': sys.getrecursionlimit(),
    'platform': sys.platform,
}))
'''


class Interp(object):
    def __init__(self, label, path, info):
        self.label = label
        self.path = path
        self.realpath = os.path.realpath(path)
        self.version = tuple(info['version'])
        self.impl = info['impl']
        self.impl_pretty = info['impl_pretty']
        self.version_str = info['version_str']
        self.cache_tag = info['cache_tag']
        self.magic = bytes.fromhex(info['magic'])
        self.stdlib = info['stdlib']
        self.recursionlimit = info['recursionlimit']
        self.header_size = 12 if self.version < (3, 7) else 16
        # CPython in WebAssembly (Pyodide under Node): no fork, threads, signals
        self.pyodide = info.get('platform') == 'emscripten'

    def __repr__(self):
        return '<Interp %s %s %s>' % (self.label, self.path, self.version_str)

    def pyc_name(self, base, opt=0):
        return '%s.%s%s.pyc' % (base, self.cache_tag, '.opt-%d' % opt if opt else '')

    def default_maxlevels(self):
        return 10 if self.version < (3, 9) else self.recursionlimit


class Candidate(object):
    def __init__(self, label, path, interp=None, reason=None):
        self.label = label
        self.path = path
        self.interp = interp
        self.reason = reason

    @property
    def ident(self):
        return re.sub(r'\W+', '_', self.label).strip('_')


def pyenv_root():
    if shutil.which('pyenv'):
        try:
            r = subprocess.run(['pyenv', 'root'], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, timeout=30, check=True)
            root = r.stdout.decode().strip()
            if root and os.path.isdir(root):
                return root
        except (OSError, subprocess.SubprocessError):
            pass
    root = os.path.expanduser('~/.pyenv')
    return root if os.path.isdir(root) else None


def python2_path():
    root = pyenv_root()
    if root:
        vdir = os.path.join(root, 'versions')
        for v in sorted(os.listdir(vdir)) if os.path.isdir(vdir) else []:
            p = os.path.join(vdir, v, 'bin', 'python2.7')
            if os.path.isfile(p):
                return p
    for p in ('/usr/bin/python2.7', '/usr/bin/python2'):
        if os.path.isfile(p):
            return p
    return None


# Pyodide releases installed by tests/pyodide/install.sh: (directory, Python version)
PYODIDE_VERSIONS = (('314', '3.14'), ('315', '3.15'))


# The tests that run on a Pyodide interpreter unless PREPYC_TEST_PYODIDE=all:
# a Pyodide process takes 1-2 s to start (a native one 20 ms), so the whole
# suite takes about 40 minutes there.  These check what depends on the target
# version (the pycs, marshal, hashes, compileall's options); the rest tests
# prepyc's core, which the native interpreters cover.  "MODULE.*" or
# "MODULE.TEST_METHOD".
PYODIDE_QUICK = (
    'test_py315.*',
    'test_marshal.*',
    'test_source_hash.*',
    'test_canon.*',
    'test_compile.test_conformance_stdlib_subset',
    'test_compile.test_import_without_compiling',
    'test_compile.test_tricky_sources_match_compileall',
    'test_compileall.test_optimization_levels',
    'test_compileall.test_invalidation_modes',
    'test_check_clean.test_check_stdlib_subset',
    'test_check_clean.test_import_compiled_package',
)


def pyodide_mode():
    """PREPYC_TEST_PYODIDE: 'quick' (the default: PYODIDE_QUICK only), 'all',
    or 'none' (Pyodide interpreters not looked for; PREPYC_TEST_PYTHONS still
    names them)."""
    mode = os.environ.get('PREPYC_TEST_PYODIDE', 'quick').strip().lower()
    return mode if mode in ('quick', 'all', 'none') else 'quick'


def pyodide_excluded(test):
    """Why `test` (a TestCase) does not run, on a Pyodide interpreter outside
    the quick selection; else None."""
    cand = getattr(type(test), 'candidate', None)
    interp = getattr(cand, 'interp', None)
    if interp is None or not interp.pyodide or pyodide_mode() == 'all':
        return None
    module = type(test).__module__.rsplit('.', 1)[-1]
    name = '%s.%s' % (module, test._testMethodName)
    if any(name == p or (p.endswith('.*') and module == p[:-2]) for p in PYODIDE_QUICK):
        return None
    return 'Pyodide: outside the quick selection (PREPYC_TEST_PYODIDE=all runs it)'


def test_cache_dir():
    """Where the tests keep what they download (tests/pyodide/install.sh)."""
    return (os.environ.get('PREPYC_TEST_CACHE')
            or os.path.join(os.path.expanduser('~'), '.cache', 'prepyc-tests'))


def pyodide_candidates():
    """[(label, wrapper path)] of the Pyodide interpreters, installed or not."""
    root = os.path.join(test_cache_dir(), 'pyodide')
    return [('pyodide' + tag, os.path.join(root, tag, 'python' + ver))
            for tag, ver in PYODIDE_VERSIONS]


def _version_key(name):
    return tuple(int(x) if x.isdigit() else 0 for x in re.split(r'[.-]', name))


def _raw_candidates():
    env_list = os.environ.get('PREPYC_TEST_PYTHONS')
    if env_list:
        out = []
        for p in env_list.split(','):
            p = p.strip()
            if not p:
                continue
            resolved = p if os.sep in p else (shutil.which(p) or p)
            label = resolved.strip('/').replace('/', '_')
            m = re.search(r'versions/([^/]+)/bin/', resolved)
            if m:
                label = 'pyenv-' + m.group(1)
            elif resolved == '/usr/bin/python3':
                label = 'debian-python3'
            elif 'pypy' in os.path.basename(resolved):
                label = os.path.basename(resolved)
            m = re.search(r'/pyodide/(\w+)/python3\.\d+$', resolved)
            if m:
                label = 'pyodide' + m.group(1)
            out.append((label, resolved))
        return out
    out = [('debian-python3', '/usr/bin/python3')]
    root = pyenv_root()
    if root and os.path.isdir(os.path.join(root, 'versions')):
        for v in sorted(os.listdir(os.path.join(root, 'versions')), key=_version_key):
            bindir = os.path.join(root, 'versions', v, 'bin')
            if not os.path.isdir(bindir):
                continue
            for name in sorted(os.listdir(bindir)):
                if re.match(r'^python3\.\d+$', name):
                    out.append(('pyenv-' + v, os.path.join(bindir, name)))
    out.append(('pypy3', shutil.which('pypy3') or 'pypy3'))
    if pyodide_mode() != 'none':
        out += pyodide_candidates()
    return out


def probe(path):
    try:
        r = subprocess.run([path, '-S', '-s', '-c', PROBE_SCRIPT],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=base_env(), timeout=120)
    except (OSError, subprocess.SubprocessError) as e:
        return None, 'cannot run %s: %s' % (path, e)
    if r.returncode != 0:
        return None, '%s does not look like Python 3: %s' % (
            path, r.stderr.decode('utf-8', 'replace').strip()[-300:])
    try:
        info = json.loads(r.stdout.decode())
    except ValueError:
        return None, 'bad probe output from %s' % path
    if info['version'][0] != 3:
        return None, '%s is not Python 3' % path
    if not info['cache_tag'] or not info['magic']:
        return None, '%s has no cache tag' % path
    return info, None


_CANDIDATES = None


def candidates():
    """All interpreter candidates (deduplicated by realpath), probed once."""
    global _CANDIDATES
    if _CANDIDATES is not None:
        return _CANDIDATES
    result = []
    seen = set()
    used_labels = set()
    for label, path in _raw_candidates():
        base_label = label
        n = 2
        while label in used_labels:
            label = '%s-%d' % (base_label, n)
            n += 1
        if not (os.sep in path and os.path.isfile(path) and os.access(path, os.X_OK)):
            used_labels.add(label)
            reason = 'interpreter not found: %s' % path
            if label.startswith('pyodide'):
                reason += ' (tests/pyodide/install.sh installs it; needs node and npm)'
            result.append(Candidate(label, path, reason=reason))
            continue
        st = os.stat(path)
        key = (os.path.realpath(path), )
        if key in seen or (st.st_dev, st.st_ino) in seen:
            continue
        seen.add(key)
        seen.add((st.st_dev, st.st_ino))
        used_labels.add(label)
        info, reason = probe(path)
        if info is None:
            result.append(Candidate(label, path, reason=reason))
        else:
            result.append(Candidate(label, path, interp=Interp(label, path, info)))
    _CANDIDATES = result
    return result


def interpreters():
    return [c.interp for c in candidates() if c.interp is not None]


# ---------------------------------------------------------------------------
# Trees and pyc files
# ---------------------------------------------------------------------------

def write_tree(root, files):
    """files: {relpath: str|bytes}.  Creates directories as needed."""
    for rel, content in files.items():
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p) or '.', exist_ok=True)
        if isinstance(content, str):
            content = content.encode('utf-8')
        with open(p, 'wb') as f:
            f.write(content)


def cache_keys(cache_dir):
    """The keys (hex) a local cache holds: its loose entries (DIR/v1/AB/REST) and
    the entries of its packs (DIR/v1/pk/NAME; layout in src/cache/store-pack.h)."""
    keys = []
    v1 = os.path.join(cache_dir, 'v1')
    for sub in sorted(os.listdir(v1)) if os.path.isdir(v1) else []:
        for name in sorted(os.listdir(os.path.join(v1, sub))):
            if name.startswith('.'):
                continue
            if sub != 'pk':
                keys.append(sub + name)
                continue
            with open(os.path.join(v1, sub, name), 'rb') as f:
                data = f.read()
            n = int.from_bytes(data[-32:-24], 'little')
            at = int.from_bytes(data[-24:-16], 'little')
            keys.extend(data[at + 48 * i:at + 48 * i + 32].hex() for i in range(n))
    return keys


def pyc_files(root):
    """Set of relative paths of all regular files (not symlinks) ending in
    .pyc under root (symlinked directories not followed)."""
    found = set()
    if not os.path.isdir(root):
        return found
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            p = os.path.join(dirpath, name)
            if name.endswith('.pyc') and not os.path.islink(p) and os.path.isfile(p):
                found.add(os.path.relpath(p, root))
    return found


def pycache_junk(root):
    """Entries of __pycache__ directories (or of a pycache prefix when root is
    one) that are not .pyc files: leftover temp files and the like."""
    junk = []
    for dirpath, dirnames, filenames in os.walk(root):
        if os.path.basename(dirpath) == '__pycache__':
            for name in filenames + dirnames:
                if not name.endswith('.pyc'):
                    junk.append(os.path.join(dirpath, name))
    return junk


def move_pycs(scan_root, dest_root):
    """Move every .pyc under scan_root to dest_root/<same relpath>, pruning
    directories that become empty (so __pycache__ dirs must be re-created)."""
    moved = sorted(pyc_files(scan_root))
    for rel in moved:
        os.renames(os.path.join(scan_root, rel), os.path.join(dest_root, rel))
    return set(moved)


def snapshot(root, rels):
    """{rel: (inode, mtime_ns, bytes)} for the given pyc paths."""
    snap = {}
    for rel in rels:
        p = os.path.join(root, rel)
        st = os.stat(p)
        with open(p, 'rb') as f:
            snap[rel] = (st.st_ino, st.st_mtime_ns, f.read())
    return snap


def copy_files(src_root, rels, dest_root):
    for rel in rels:
        src = os.path.join(src_root, rel)
        dst = os.path.join(dest_root, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if os.path.islink(src):
            os.symlink(os.readlink(src), dst)
        else:
            shutil.copy2(src, dst)


def stdlib_py_files(stdlib):
    """All .py files of a stdlib directory (relative, sorted), without
    site-packages/dist-packages and __pycache__."""
    rels = []
    for dirpath, dirnames, filenames in os.walk(stdlib):
        dirnames[:] = sorted(d for d in dirnames
                             if d not in ('site-packages', 'dist-packages', '__pycache__'))
        for name in sorted(filenames):
            if name.endswith('.py'):
                rels.append(os.path.relpath(os.path.join(dirpath, name), stdlib))
    return sorted(rels)


BIG_MODULES = [
    'typing.py', 'argparse.py', 'pydoc.py', '_pydecimal.py', 'inspect.py',
    'tarfile.py', 'weakref.py', 'subprocess.py', 'turtle.py', 'enum.py',
    'dataclasses.py', 'ast.py', 'difflib.py', 'functools.py', 'collections/__init__.py',
    'doctest.py', 'mailbox.py', 'ssl.py', 'unittest/mock.py', 'configparser.py',
    'locale.py', 'string.py', 're/_parser.py', 'sre_parse.py', 'tokenize.py',
]
NESTED_PACKAGES = ['json', 'email', 'concurrent', 'importlib', 'xml/etree', 'urllib']


def select_stdlib_subset(stdlib, target=150):
    """A deterministic selection of ~target .py files of a stdlib: nested
    packages, big modules, deliberately broken files from test/, then an
    even stride over the rest."""
    allfiles = stdlib_py_files(stdlib)
    allset = set(allfiles)
    chosen = []

    def add(rel):
        if rel in allset and rel not in chosen:
            chosen.append(rel)

    for rel in BIG_MODULES:
        add(rel)
    broken = re.compile(r'^(test/(tokenizedata/)?(bad\w*|badsyntax\w*|bad_coding\w*)\.py'
                        r'|test/tokenizedata/.*\.py'
                        r'|lib2to3/tests/data/[^/]*\.py'
                        r'|test/test_lib2to3/data/[^/]*\.py'
                        r'|test/encoded_modules/.*\.py)$')
    for rel in allfiles:
        if broken.match(rel):
            add(rel)
    for pkg in NESTED_PACKAGES:
        for rel in allfiles:
            if rel.startswith(pkg + '/') and len(chosen) < target * 0.8:
                add(rel)
    rest = [r for r in allfiles if r not in chosen]
    need = max(0, target - len(chosen))
    if need and rest:
        step = max(1, len(rest) // need)
        for rel in rest[::step][:need]:
            add(rel)
    return sorted(chosen)


# ---------------------------------------------------------------------------
# Code running inside the target interpreter
# ---------------------------------------------------------------------------

COMPARE_SCRIPT = r'''
import sys, json, marshal, warnings
warnings.simplefilter('ignore')
CodeType = type(compile('', '', 'exec'))
HLEN = 12 if sys.version_info < (3, 7) else 16

def attrs(code):
    names = []
    for n in sorted(dir(code)):
        if not n.startswith('co_'):
            continue
        try:
            v = getattr(code, n)
        except Exception:
            continue
        if callable(v):
            continue
        names.append(n)
    return names

def canon(x):
    t = type(x)
    if t is CodeType:
        return ('code', tuple((n, canon(getattr(x, n))) for n in attrs(x)))
    if t is float or t is complex:
        return (t.__name__, repr(x))
    if t is tuple or t is list:
        return (t.__name__, tuple(canon(e) for e in x))
    if t is frozenset or t is set:
        return (t.__name__, tuple(sorted((canon(e) for e in x), key=repr)))
    if t in (str, bytes, int, bool, type(None), type(Ellipsis)):
        return (t.__name__, x)
    return (t.__name__, repr(x))

def short(s):
    s = repr(s)
    return s if len(s) < 200 else s[:200] + '...'

def diff(a, b, path):
    if type(a) is not type(b):
        return '%s: type %s != %s' % (path, type(a).__name__, type(b).__name__)
    if type(a) is CodeType:
        na, nb = attrs(a), attrs(b)
        if na != nb:
            return '%s: attribute lists differ' % path
        for n in na:
            d = diff(getattr(a, n), getattr(b, n), path + '.' + n)
            if d:
                return d
        return None
    if type(a) is tuple or type(a) is list:
        if len(a) != len(b):
            return '%s: length %d != %d' % (path, len(a), len(b))
        for i in range(len(a)):
            d = diff(a[i], b[i], '%s[%d]' % (path, i))
            if d:
                return d
        return None
    if canon(a) != canon(b):
        return '%s: %s != %s' % (path, short(a), short(b))
    return None

pairs = json.loads(sys.stdin.read())
out = []
for a, b in pairs:
    try:
        with open(a, 'rb') as f:
            da = f.read()
        with open(b, 'rb') as f:
            db = f.read()
    except Exception as e:
        out.append(['mismatch', 'cannot read: %r' % (e,)])
        continue
    if da == db:
        out.append(['identical', ''])
        continue
    if da[:HLEN] != db[:HLEN]:
        out.append(['mismatch', 'header %s != %s' % (da[:HLEN].hex(), db[:HLEN].hex())])
        continue
    try:
        ca = marshal.loads(da[HLEN:])
    except Exception as e:
        out.append(['mismatch', 'cannot load reference: %r' % (e,)])
        continue
    try:
        cb = marshal.loads(db[HLEN:])
    except Exception as e:
        out.append(['mismatch', 'cannot load prepyc pyc: %r' % (e,)])
        continue
    d = diff(ca, cb, '<module>')
    if d is None:
        out.append(['equal', ''])
    else:
        out.append(['mismatch', d])
sys.stdout.write(json.dumps(out))
'''


def compare_pycs(interp, pairs, timeout=1800):
    """pairs: [(reference_pyc, prepyc_pyc)].  Returns [(status, detail)] with
    status 'identical', 'equal' (code objects equal after marshal.loads,
    headers equal) or 'mismatch'."""
    pairs = [[str(a), str(b)] for a, b in pairs]
    if not pairs:
        return []
    r = run([interp.path, '-B', '-S', '-s', '-c', COMPARE_SCRIPT], env=base_env(),
            stdin_data=json.dumps(pairs), timeout=timeout)
    if r.rc != 0:
        raise AssertionError('pyc comparison script failed in %s:\n%s' % (interp, r))
    return [tuple(x) for x in json.loads(r.out)]


IMPORT_SCRIPT = r'''
import sys, os, json, importlib
import importlib._bootstrap_external as be
tree = sys.argv[1]
mods = sys.argv[2:]
calls = []
orig = be.SourceLoader.source_to_code
def source_to_code(self, data, path, *args, **kwargs):
    calls.append(path)
    return orig(self, data, path, *args, **kwargs)
be.SourceLoader.source_to_code = source_to_code
sys.dont_write_bytecode = True
sys.path.insert(0, tree)
errors = {}
for m in mods:
    try:
        importlib.import_module(m)
    except BaseException as e:
        errors[m] = '%s: %s' % (type(e).__name__, e)
sys.stdout.write(json.dumps({'compiled': calls, 'errors': errors}))
'''


def import_compiled(interp, tree, modules, env=None, cwd=None):
    """Import modules from tree in the target interpreter (sys.path[0] =
    tree, no bytecode written) and return (compiled, errors): the realpaths of
    sources under tree that importlib had to compile from source, and
    {module: error} for modules that failed to import."""
    tree = os.path.abspath(tree)
    r = run([interp.path, '-B', '-S', '-s', '-c', IMPORT_SCRIPT, tree] + list(modules),
            env=env or base_env(), cwd=cwd)
    if r.rc != 0:
        raise AssertionError('import helper failed in %s:\n%s' % (interp, r))
    data = json.loads(r.out)
    real = os.path.realpath(tree) + os.sep
    compiled = sorted(set(os.path.realpath(os.path.join(cwd or '.', p))
                          for p in data['compiled']
                          if os.path.realpath(os.path.join(cwd or '.', p)).startswith(real)))
    return compiled, data['errors']


CACHE_SCRIPT = r'''
import sys, json, importlib.util
paths = json.loads(sys.stdin.read())
sys.stdout.write(json.dumps([importlib.util.cache_from_source(p) for p in paths]))
'''


def cache_from_source(interp, paths, env=None, cwd=None):
    """Ask the target where each source's pyc goes (its own env and cwd)."""
    r = run([interp.path, '-B', '-s', '-c', CACHE_SCRIPT], env=env or base_env(), cwd=cwd,
            stdin_data=json.dumps(list(paths)))
    if r.rc != 0:
        raise AssertionError('cache_from_source failed in %s:\n%s' % (interp, r))
    return json.loads(r.out)


CODE_INFO_SCRIPT = r'''
import sys, json, marshal
HLEN = 12 if sys.version_info < (3, 7) else 16
out = {}
for p in json.loads(sys.stdin.read()):
    with open(p, 'rb') as f:
        data = f.read()
    code = marshal.loads(data[HLEN:])
    out[p] = {'co_filename': code.co_filename, 'header': data[:HLEN].hex()}
sys.stdout.write(json.dumps(out))
'''


def pyc_info(interp, pyc_paths):
    """{pyc_path: {'co_filename', 'header'}} read by the target."""
    r = run([interp.path, '-B', '-S', '-s', '-c', CODE_INFO_SCRIPT], env=base_env(),
            stdin_data=json.dumps([str(p) for p in pyc_paths]))
    if r.rc != 0:
        raise AssertionError('pyc info script failed in %s:\n%s' % (interp, r))
    return json.loads(r.out)


def user_site(interp, home):
    r = run([interp.path, '-B', '-c', 'import site; print(site.getusersitepackages())'],
            env=base_env(HOME=home))
    out = r.out.strip()
    # an interpreter without a user site (PyPy's can be None) prints no absolute path
    if r.rc != 0 or not os.path.isabs(out):
        return None
    return out


# ---------------------------------------------------------------------------
# Conformance: compile one tree with compileall then prepyc, compare
# ---------------------------------------------------------------------------

class ConformanceReport(object):
    pass


def conformance(interp, workdir, targets, env=None, scan_root=None,
                prepyc_args=(), compileall_args=('-j0', '-q'), ref_dir=None,
                prepyc_env=None, canon_ref=False):
    """Compile targets (a path or a list, relative to workdir or absolute)
    with compileall, move its pycs aside, compile the same paths with prepyc
    from the same cwd, and compare.

    scan_root: where the pycs land (default: the single target; give it for
    a pycache prefix or several targets).  Both tools see the same paths, cwd
    and environment (prepyc_env, if given, replaces env for prepyc only), so
    co_filename must match.

    canon_ref: rewrite compileall's pycs with ``prepyc canon`` first; then
    every pyc must be identical, byte for byte."""
    if env is None:
        env = base_env()
    if isinstance(targets, str):
        targets = [targets]
    targets = list(targets)
    scan_root = scan_root or os.path.join(workdir, targets[0])
    ref_dir = ref_dir or os.path.join(workdir, '.reference-pycs')
    rep = ConformanceReport()
    rep.ca = run_compileall(interp, targets, cwd=workdir, env=env, args=compileall_args)
    rep.ca_failed = compileall_failures(rep.ca.out)
    rep.ref_pycs = move_pycs(scan_root, ref_dir)
    rep.canon = None
    if canon_ref and rep.ref_pycs:
        rels = sorted(rep.ref_pycs)
        for i in range(0, len(rels), 500):
            r = run_prepyc(['canon'] + [os.path.join(ref_dir, rel) for rel in rels[i:i + 500]],
                           env=env, timeout=1800)
            if r.rc != 0:
                rep.canon = r
                break
    junk_before = set(pycache_junk(scan_root))
    pp_env = dict(prepyc_env if prepyc_env is not None else env)
    if prepyc_env is None:
        pp_env.pop('PYTHONHASHSEED', None)
    rep.pp = run_prepyc(['--python', interp.path] + list(prepyc_args) + targets,
                        cwd=workdir, env=pp_env)
    rep.pp_failed = prepyc_failures(rep.pp.err)
    rep.pp_pycs = pyc_files(scan_root)
    rep.junk = sorted(set(pycache_junk(scan_root)) - junk_before)
    common = sorted(rep.ref_pycs & rep.pp_pycs)
    results = compare_pycs(interp, [(os.path.join(ref_dir, rel), os.path.join(scan_root, rel))
                                    for rel in common])
    rep.results = dict(zip(common, results))
    rep.identical = [r for r, (s, d) in rep.results.items() if s == 'identical']
    rep.equal = [r for r, (s, d) in rep.results.items() if s == 'equal']
    rep.mismatches = sorted((r, d) for r, (s, d) in rep.results.items() if s == 'mismatch')
    rep.only_ref = sorted(rep.ref_pycs - rep.pp_pycs)
    rep.only_pp = sorted(rep.pp_pycs - rep.ref_pycs)
    if canon_ref:
        rep.mismatches += sorted((r, 'not identical to prepyc canon of compileall\'s pyc')
                                 for r in rep.equal)
    rep.ok = (not rep.mismatches and not rep.only_ref and not rep.only_pp and rep.canon is None
              and rep.ca_failed == rep.pp_failed and rep.ca.rc == rep.pp.rc
              and not rep.junk and not rep.pp.timed_out and not rep.ca.timed_out)
    return rep


def format_report(rep, limit=40):
    lines = [
        'pycs: compileall %d, prepyc %d, compared %d (identical bytes %d, equal after loads %d)'
        % (len(rep.ref_pycs), len(rep.pp_pycs), len(rep.results), len(rep.identical),
           len(rep.equal)),
        'failed: compileall %d, prepyc %d' % (len(rep.ca_failed), len(rep.pp_failed)),
        'exit status: compileall %r, prepyc %r' % (rep.ca.rc, rep.pp.rc),
    ]
    if rep.mismatches:
        lines.append('MISMATCHES (%d):' % len(rep.mismatches))
        lines += ['  %s: %s' % m for m in rep.mismatches[:limit]]
    if rep.only_ref:
        lines.append('pycs only from compileall (%d): %s' % (len(rep.only_ref), rep.only_ref[:limit]))
    if rep.only_pp:
        lines.append('pycs only from prepyc (%d): %s' % (len(rep.only_pp), rep.only_pp[:limit]))
    if rep.ca_failed != rep.pp_failed:
        lines.append('failed only in compileall: %s' % sorted(rep.ca_failed - rep.pp_failed)[:limit])
        lines.append('failed only in prepyc: %s' % sorted(rep.pp_failed - rep.ca_failed)[:limit])
    if rep.junk:
        lines.append('junk left in __pycache__: %s' % rep.junk[:limit])
    if rep.pp.timed_out:
        lines.append('prepyc TIMED OUT')
    if not rep.ok:
        lines.append('--- prepyc run ---\n' + rep.pp.describe())
    return '\n'.join(lines)


class InterpreterCase(unittest.TestCase):
    """Base of the per-interpreter test classes (see per_interpreter()):
    skips when there is no interpreter or no prepyc, sets ``cls.py``, and
    gives each test a temporary directory ``self.tmp`` (named after
    ``tmp_prefix``) removed afterwards."""

    candidate = None   # set on the generated subclasses
    tmp_prefix = 'prepyc-e2e-'

    @classmethod
    def setUpClass(cls):
        if cls.candidate is None:
            raise unittest.SkipTest('abstract base (or no interpreter found)')
        if cls.candidate.interp is None:
            raise unittest.SkipTest(cls.candidate.reason)
        require_prepyc()
        cls.py = cls.candidate.interp

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix=self.tmp_prefix)
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def skip_if_pyodide(self, reason):
        skip_if_pyodide(self, self.py, reason)


def skip_if_pyodide(test, interp, reason):
    """Skip `test` (a TestCase) when `interp` is a Pyodide interpreter, which
    cannot do what `reason` says."""
    if interp is not None and interp.pyodide:
        test.skipTest('Pyodide: ' + reason)


def per_interpreter(base, prefix, doc, namespace):
    """One TestCase class per interpreter candidate, named PREFIX + its ident,
    a subclass of `base` with `candidate` set and `doc % (label, path)` as its
    docstring; the classes go into `namespace` (the test module's globals())
    and are returned, for load_generated()."""
    import unittest  # noqa: F401  (the classes are unittest.TestCases)
    made = []
    for cand in candidates():
        name = prefix + cand.ident
        cls = type(name, (base,), {'candidate': cand, '__module__': namespace['__name__'],
                                   '__doc__': doc % (cand.label, cand.path)})
        namespace[name] = cls
        made.append(cls)
    return made


def load_generated(loader, classes):
    """A module's load_tests(): the generated classes' tests, in order."""
    import unittest
    suite = unittest.TestSuite()
    for cls in classes:
        suite.addTests(loader.loadTestsFromTestCase(cls))
    return suite


def session_processes(sid):
    """The live (not zombie) processes of session `sid`, from /proc."""
    pids = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % entry) as f:
                data = f.read()
        except OSError:
            continue
        fields = data[data.rindex(')') + 2:].split()
        # fields after the command: state ppid pgrp session ...
        if int(fields[3]) == sid and fields[0] != 'Z':
            pids.append(int(entry))
    return pids
