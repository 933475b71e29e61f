"""End-to-end tests of prepyc as a pip package (pyproject.toml and the build
backend python/prepyc_build.py; python/prepyc/ for ``python -m prepyc``).

One generated TestCase class per interpreter candidate (``TestPip_<label>``):
a fresh ``python -m venv`` of it, whose pip must support in-tree backends
(``backend-path``: pip 20.0+, so 3.6's pip 18.1 is skipped), then

- ``pip install --no-index COPY`` (COPY: the repository's files, no build
  outputs) builds the C code and installs; ``VENV/bin/prepyc --version``
  prints the Makefile's VERSION and the build lines; ``VENV/bin/python -m
  prepyc DIR`` compiles for that interpreter (cache tag and magic), although
  $VIRTUAL_ENV and ``python3`` on PATH name another one; ``--python OTHER``
  still wins; the exit status passes through; ``pip uninstall -y prepyc``
  leaves the venv's file list as it was before the install.

For one interpreter (the first usable candidate: Debian's python3 by
default), in the same venv:

- ``pip wheel --no-index --no-deps -w OUT COPY``: the RECORD lists every file
  with its right hash and size, the binary has mode 0755, METADATA and WHEEL
  say what they must; with no C compiler, pip shows one ``prepyc: error:``
  naming what to install, and no traceback;
- the sdist round trip: build_sdist (the backend called by the venv's
  python) on a copy holding build outputs, a venv and pycs, which are left
  out; then ``pip install`` of the .tar.gz, ``prepyc --version``, uninstall.

Cost: one build of the C code per interpreter, two more for the one.  pip
runs hermetically: no index (``--no-index``, PIP_NO_INDEX=1), no config
file, no PIP_* variable of the caller, no cache.  Skipped, not failed: an
interpreter without venv/ensurepip or with an old pip; no cc or make.
"""

import csv
import hashlib
import base64
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import unittest
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402

REPO = support.REPO
PIP_TIMEOUT = 900
MIN_PIP = (20, 0)  # the first pip that passes backend-path to the backend


def makefile_version():
    with open(os.path.join(REPO, 'Makefile')) as f:
        return re.search(r'^VERSION\s*[:?]?=\s*(\S+)\s*$', f.read(), re.M).group(1)


VERSION = makefile_version()


def pip_env(**extra):
    env = support.base_env(**extra)
    for k in list(env):
        if k.startswith('PIP_') or k == 'PREPYC_PYTHON':
            del env[k]
    env.update(PIP_NO_INDEX='1', PIP_DISABLE_PIP_VERSION_CHECK='1', PIP_CONFIG_FILE=os.devnull)
    return env


def pip(venv, args, **kw):
    return support.run([os.path.join(venv, 'bin', 'python'), '-m', 'pip'] + list(args),
                       env=kw.pop('env', None) or pip_env(), timeout=PIP_TIMEOUT, **kw)


def tool_missing():
    cc = (os.environ.get('CC') or 'cc').split()[0]
    for name in (cc, 'make'):
        if not shutil.which(name):
            return '%s not found on PATH' % name
    return None


def repo_files():
    """The repository's source files (relative paths), as an sdist has them."""
    try:
        out = subprocess.check_output(['git', '-C', REPO, 'ls-files', '-z', '--cached',
                                       '--others', '--exclude-standard'],
                                      stderr=subprocess.DEVNULL)
        names = set(n for n in out.decode().split('\0') if n)
        return sorted(n for n in names if os.path.isfile(os.path.join(REPO, n)))
    except (OSError, subprocess.CalledProcessError):
        pass
    found = []
    for dirpath, dirnames, filenames in os.walk(REPO):
        rel = os.path.relpath(dirpath, REPO)
        dirnames[:] = [d for d in dirnames if d not in ('.git', '__pycache__') and
                       not (rel == '.' and re.match(r'build|dist$', d))]
        found += [os.path.normpath(os.path.join(rel, f)) for f in filenames
                  if not f.endswith('.pyc') and not (rel == '.' and f == 'prepyc')]
    return sorted(found)


def copy_repo(dest):
    for rel in repo_files():
        os.makedirs(os.path.dirname(os.path.join(dest, rel)), exist_ok=True)
        shutil.copy2(os.path.join(REPO, rel), os.path.join(dest, rel))
    return dest


def file_list(root):
    out = set()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            out.add(os.path.relpath(os.path.join(dirpath, name), root))
    return out


def pip_version(venv):
    res = support.run([os.path.join(venv, 'bin', 'python'), '-m', 'pip', '--version'],
                      env=pip_env(), timeout=120)
    m = re.match(r'pip (\d+)\.(\d+)', res.out)
    return (int(m.group(1)), int(m.group(2))) if res.rc == 0 and m else None


def designated():
    """The candidate that also runs the wheel and sdist tests."""
    for cand in support.candidates():
        if cand.interp is not None and cand.interp.version >= (3, 7):
            return cand
    return None


def tree_features():
    """The features line of the tree's own prepyc (make's detection here)."""
    out = subprocess.run([support.PREPYC, '--version'], stdout=subprocess.PIPE,
                         universal_newlines=True, check=True).stdout
    return [l for l in out.splitlines() if l.startswith('features:')][0]


class PipTests(unittest.TestCase):
    candidate = None
    copy = None          # one copy of the repository for all classes
    timings = []         # (label, what, seconds), printed at the end

    @classmethod
    def setUpClass(cls):
        if cls.candidate is None:
            raise unittest.SkipTest('abstract base (or no interpreter found)')
        if cls.candidate.interp is None:
            raise unittest.SkipTest(cls.candidate.reason)
        missing = tool_missing()
        if missing:
            raise unittest.SkipTest('cannot build prepyc: ' + missing)
        cls.py = cls.candidate.interp
        cls.tmp = tempfile.mkdtemp(prefix='prepyc-pip-')
        if PipTests.copy is None:
            PipTests.copy = copy_repo(tempfile.mkdtemp(prefix='prepyc-pip-src-'))
        cls.venv = os.path.join(cls.tmp, 'venv')
        start = time.monotonic()
        res = support.run([cls.py.path, '-m', 'venv', cls.venv], env=pip_env(), timeout=600)
        cls.timing('venv', start)
        if res.rc != 0:
            shutil.rmtree(cls.tmp, True)
            raise unittest.SkipTest('no venv with pip for %s: %s' % (cls.py.path, res.err[-300:]))
        version = pip_version(cls.venv)
        if version is None or version < MIN_PIP:
            shutil.rmtree(cls.tmp, True)
            raise unittest.SkipTest('the venv\'s pip (%s) predates backend-path (pip 20.0)'
                                    % ('.'.join(map(str, version)) if version else 'none'))
        cls.vpython = os.path.join(cls.venv, 'bin', 'python')
        cls.pristine = file_list(cls.venv)
        cls.other = cls.other_interpreter()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, True)

    @classmethod
    def timing(cls, what, start):
        PipTests.timings.append((cls.candidate.label, what, time.monotonic() - start))

    @classmethod
    def other_interpreter(cls):
        for interp in support.interpreters():
            if interp.cache_tag != cls.py.cache_tag:
                return interp
        return None

    def setUp(self):
        self.work = tempfile.mkdtemp(prefix='prepyc-pip-work-')
        self.addCleanup(shutil.rmtree, self.work, True)

    def pip(self, args, what=None, **kw):
        start = time.monotonic()
        res = pip(self.venv, args, **kw)
        if what:
            self.timing(what, start)
        return res

    def install(self, what, target):
        res = self.pip(['install', '--no-index', '--no-deps', '--no-cache-dir', target], what)
        self.assertEqual(res.rc, 0, res)
        self.addCleanup(self.pip, ['uninstall', '-y', 'prepyc'])

    def uninstall(self):
        res = self.pip(['uninstall', '-y', 'prepyc'])
        self.assertEqual(res.rc, 0, res)
        self.assertFalse(os.path.exists(os.path.join(self.venv, 'bin', 'prepyc')))
        after = file_list(self.venv)
        self.assertEqual(sorted(after - self.pristine), [], 'left in the venv by the uninstall')
        self.assertEqual(sorted(self.pristine - after), [], 'removed from the venv')

    def check_version(self, argv):
        res = support.run(argv, env=pip_env(), timeout=60)
        self.assertEqual(res.rc, 0, res)
        lines = res.out.splitlines()
        self.assertEqual(lines[0], 'prepyc ' + VERSION, res)
        self.assertEqual([l.split(':')[0] for l in lines[1:]],
                         ['compiler', 'platform', 'features'], res)
        # built by the same `make` in the same environment as the tree's own
        # binary: the optional libraries it finds are the ones make finds
        self.assertEqual(lines[3], tree_features(), res)

    def assert_compiled_for(self, tree, interp):
        pycs = sorted(os.listdir(os.path.join(tree, '__pycache__')))
        self.assertEqual(pycs, [interp.pyc_name('m')])
        with open(os.path.join(tree, '__pycache__', pycs[0]), 'rb') as f:
            self.assertEqual(f.read(4), interp.magic)

    def misleading_env(self):
        """$VIRTUAL_ENV and python3 on PATH name another interpreter, so only
        PREPYC_PYTHON can make the default target the venv's python."""
        if self.other is None:
            return pip_env()
        fake = os.path.join(self.work, 'fake-venv', 'bin')
        os.makedirs(fake)
        for name in ('python', 'python3'):
            os.symlink(self.other.path, os.path.join(fake, name))
        return pip_env(VIRTUAL_ENV=os.path.dirname(fake),
                       PATH=fake + os.pathsep + os.environ.get('PATH', ''))

    def test_install_run_uninstall(self):
        self.install('pip install (build)', self.copy)
        prepyc = os.path.join(self.venv, 'bin', 'prepyc')
        self.assertEqual(os.stat(prepyc).st_mode & 0o777, 0o755)
        self.check_version([prepyc, '--version'])
        self.check_version([self.vpython, '-m', 'prepyc', '--version'])

        # python -m prepyc: the venv's interpreter is the default target
        tree = os.path.join(self.work, 'default')
        support.write_tree(tree, {'m.py': 'x = 1\n'})
        res = support.run([self.vpython, '-m', 'prepyc', tree], env=self.misleading_env())
        self.assertEqual(res.rc, 0, res)
        self.assert_compiled_for(tree, self.py)

        # --python still wins
        if self.other is not None:
            tree = os.path.join(self.work, 'explicit')
            support.write_tree(tree, {'m.py': 'x = 1\n'})
            res = support.run([self.vpython, '-m', 'prepyc', '--python', self.other.path, tree],
                              env=pip_env())
            self.assertEqual(res.rc, 0, res)
            self.assert_compiled_for(tree, self.other)

        # the exit status passes through
        tree = os.path.join(self.work, 'broken')
        support.write_tree(tree, {'bad.py': 'def f(:\n'})
        res = support.run([self.vpython, '-m', 'prepyc', '-q', tree], env=pip_env())
        self.assertEqual(res.rc, 1, res)
        self.assertIn("cannot compile", res.err)

        self.uninstall()

    def require_designated(self):
        cand = designated()
        if cand is None or cand.label != self.candidate.label:
            self.skipTest('run for one interpreter only (%s)' % (cand.label if cand else 'none'))

    def test_wheel(self):
        self.require_designated()
        out = os.path.join(self.work, 'out')
        res = self.pip(['wheel', '--no-index', '--no-deps', '--no-cache-dir', '-w', out,
                        self.copy], 'pip wheel (build)')
        self.assertEqual(res.rc, 0, res)
        wheels = os.listdir(out)
        platform = support.run([self.vpython, '-c', 'import sysconfig; '
                                'print(sysconfig.get_platform())'], env=pip_env()).out.strip()
        self.assertEqual(wheels, ['prepyc-%s-py3-none-%s.whl'
                                  % (VERSION, re.sub(r'[-.]', '_', platform))])
        self.verify_wheel(os.path.join(out, wheels[0]))

        # no C compiler: one clear error, no traceback
        res = self.pip(['wheel', '--no-index', '--no-deps', '--no-cache-dir', '-w', out,
                        self.copy], env=pip_env(CC='/nonexistent/cc'))
        self.assertNotEqual(res.rc, 0, res)
        text = res.out + res.err
        self.assertIn("prepyc: error: cannot build prepyc: no C compiler", text)
        self.assertIn('apt-get install gcc make', text)
        self.assertIn('xcode-select --install', text)
        self.assertNotIn('Traceback', text)

    def verify_wheel(self, path):
        dist_info = 'prepyc-%s.dist-info' % VERSION
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            self.assertEqual(len(names), len(set(names)))
            self.assertEqual(sorted(names), sorted([
                'prepyc/__init__.py', 'prepyc/__main__.py',
                'prepyc-%s.data/scripts/prepyc' % VERSION,
                dist_info + '/METADATA', dist_info + '/WHEEL', dist_info + '/RECORD']))
            rows = list(csv.reader(io.StringIO(zf.read(dist_info + '/RECORD').decode())))
            self.assertEqual(sorted(r[0] for r in rows), sorted(names))
            for name, digest, size in rows:
                if name == dist_info + '/RECORD':
                    self.assertEqual((digest, size), ('', ''))
                    continue
                data = zf.read(name)
                want = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=')
                self.assertEqual(digest, 'sha256=' + want.decode(), name)
                self.assertEqual(size, str(len(data)), name)
            binary = zf.getinfo('prepyc-%s.data/scripts/prepyc' % VERSION)
            self.assertEqual(binary.external_attr >> 16, 0o100755)
            if sys.platform.startswith('linux'):
                self.assertEqual(zf.read(binary.filename)[:4], b'\x7fELF')
            wheel = zf.read(dist_info + '/WHEEL').decode()
            meta = zf.read(dist_info + '/METADATA').decode()
        self.assertIn('Wheel-Version: 1.0\n', wheel)
        self.assertIn('Root-Is-Purelib: false\n', wheel)
        self.assertRegex(wheel, r'(?m)^Tag: py3-none-\w+$')
        for line in ('Metadata-Version: 2.1', 'Name: prepyc', 'Version: ' + VERSION,
                     'Requires-Python: >=3.6'):
            self.assertRegex(meta, '(?m)^%s$' % re.escape(line))
        self.assertRegex(meta, '(?m)^Summary: .+$')
        self.assertRegex(meta, '(?m)^License: .+$')

    def test_sdist_round_trip(self):
        self.require_designated()
        src = copy_repo(os.path.join(self.work, 'src'))
        # what the walk (no git checkout here) must leave out
        support.write_tree(src, {'build/main.o': 'o', 'build-asan/x.o': 'o', 'prepyc': 'binary',
                                 'dist/old.tar.gz': 'x', 'src/__pycache__/x.cpython-311.pyc': 'x',
                                 'tests/x.pyc': 'x', 'myvenv/pyvenv.cfg': 'home = /usr\n',
                                 'myvenv/bin/python': 'x'})
        out = os.path.join(self.work, 'sdist')
        os.makedirs(out)
        script = ('import sys; sys.path.insert(0, sys.argv[1]); import prepyc_build; '
                  'print(prepyc_build.build_sdist(sys.argv[2]))')
        res = support.run([self.vpython, '-c', script, os.path.join(src, 'python'), out],
                          env=pip_env())
        self.assertEqual(res.rc, 0, res)
        name = 'prepyc-%s.tar.gz' % VERSION
        self.assertEqual(res.out.strip(), name)
        self.assertEqual(os.listdir(out), [name])
        with tarfile.open(os.path.join(out, name)) as tar:
            members = tar.getnames()
        base = 'prepyc-%s/' % VERSION
        self.assertTrue(all(m.startswith(base) for m in members), members)
        self.assertEqual(sorted(m[len(base):] for m in members),
                         sorted(['PKG-INFO'] + repo_files()))

        self.install('pip install sdist (build)', os.path.join(out, name))
        self.check_version([os.path.join(self.venv, 'bin', 'prepyc'), '--version'])
        self.uninstall()


_GENERATED = support.per_interpreter(PipTests, 'TestPip_', 'prepyc as a pip package, %s (%s)',
                                     globals())


class TestPipTimings(unittest.TestCase):
    """Prints the time of each venv and build (runs after the classes above)."""

    def test_pip_timings(self):
        if not PipTests.timings:
            self.skipTest('nothing was timed')
        total = sum(t for _, _, t in PipTests.timings)
        sys.stdout.write('\n' + ''.join('  %-22s %-28s %6.1fs\n' % t for t in PipTests.timings)
                         + '  %-51s %6.1fs\n' % ('total', total))


def load_tests(loader, standard_tests, pattern):
    suite = support.load_generated(loader, _GENERATED)
    suite.addTests(loader.loadTestsFromTestCase(TestPipTimings))
    return suite


def tearDownModule():
    if PipTests.copy:
        shutil.rmtree(PipTests.copy, True)
