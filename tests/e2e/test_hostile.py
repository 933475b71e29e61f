"""Hostile input end to end: sources and trees that break naive tools, a full
disk, a read-only file system, several runs at once.

Per interpreter (``TestHostile_<label>``): sources with undecodable bytes,
bogus or conflicting coding cookies, NUL bytes, CR/CRLF line endings, form
feeds, binary junk, and names with spaces, newlines and invalid UTF-8 — both
``prepyc compileall -q`` and ``python -m compileall -q`` are run on the same
tree and must print the same lines and exit alike; the concise mode must
exit 1 naming each failing file; every pyc left is valid or absent.  The
costly cases run once, with the first interpreter found (``TestHostileOnce``):
FIFOs, sockets and devices named ``*.py`` (never opened: compileall itself
would hang on the FIFO), symlink loops, a ``__pycache__`` that is a file, a
pyc path that is a directory, a 50 MB source, expressions nested 100,000
deep, a full disk (a 1 MB tmpfs as the pycache prefix; root only), a
read-only file system (a read-only tmpfs; root only) and three concurrent
runs on one tree.
"""

import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402
from test_robust import VALID_SCRIPT, temps  # noqa: E402

GOOD = {'good1.py': 'A = 1\n', 'pkg/__init__.py': '', 'pkg/good2.py': 'def f():\n    return 2\n'}

SOURCES = {
    'undecodable.py': b'x = "\xff\xfe"\n',
    'bogus_cookie.py': b'# -*- coding: no-such-codec -*-\nx = 1\n',
    'latin1_cookie.py': b'# -*- coding: latin-1 -*-\nx = "\xe9"\n',
    'bom_conflict.py': b'\xef\xbb\xbf# -*- coding: latin-1 -*-\nx = 1\n',
    'bom_ok.py': b'\xef\xbb\xbfx = 1\n',
    'nul.py': b'x = 1\n\x00y = 2\n',
    'crlf.py': b'def f():\r\n    return 1\r\n',
    'cr.py': b'def f():\r    return 1\r',
    'formfeed.py': b'\x0cdef f():\n\x0c    return 1\n',
    'binary.py': bytes(range(256)) * 4,
    'with space.py': b'x = 1\n',
    'new\nline.py': b'x = 1\n',
    b'bad\xffname.py': b'x = 1\n',
}


def write_bytes(root, files):
    for rel, data in files.items():
        path = os.path.join(os.fsencode(root), rel if isinstance(rel, bytes) else os.fsencode(rel))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'wb') as f:
            f.write(data if isinstance(data, bytes) else data.encode())


class Base(unittest.TestCase):
    candidate = None

    @classmethod
    def setUpClass(cls):
        if cls.candidate is None:
            raise unittest.SkipTest('abstract base')
        if cls.candidate.interp is None:
            raise unittest.SkipTest(cls.candidate.reason)
        support.require_prepyc()
        cls.py = cls.candidate.interp

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='prepyc-e2e-hostile-')
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.tree = os.path.join(self.tmp, 't')
        write_bytes(self.tree, GOOD)

    def pp(self, args, **kw):
        return support.run_prepyc(['--python', self.py.path, '--no-cache'] + list(args),
                                  cwd=self.tmp, env=kw.pop('env', support.base_env()), **kw)

    def assertValid(self, tree=None, prefix=None):
        tree = tree or self.tree
        env = support.base_env()
        args = [self.py.path, '-S', '-s', '-B']
        if prefix:
            args += ['-X', 'pycache_prefix=' + prefix]
        r = support.run(args + ['-c', VALID_SCRIPT, tree], env=env)
        self.assertEqual(r.rc, 0, str(r))
        self.assertEqual([l for l in r.out.splitlines() if l.startswith('BAD')], [])
        self.assertEqual(temps(prefix or tree), [])
        return int(r.out.splitlines()[-1].split()[1])

    def assertGoodCompiled(self):
        for rel in GOOD:
            head, base = os.path.split(rel)
            pyc = os.path.join(self.tree, head, '__pycache__', self.py.pyc_name(base[:-3]))
            self.assertTrue(os.path.isfile(pyc), rel)


class HostileSources(Base):
    def test_sources_like_compileall(self):
        write_bytes(self.tree, SOURCES)
        ca = support.run_compileall(self.py, 't', cwd=self.tmp, env=support.base_env(),
                                    args=('-q',))
        ref = sorted(support.pyc_files(self.tree))
        for rel in ref:
            os.unlink(os.path.join(self.tree, rel))
        pc = support.run_prepyc(['compileall', '--python', self.py.path, '--no-cache', '-q', 't'],
                                cwd=self.tmp, env=support.base_env())
        self.assertEqual((pc.rc, pc.out), (ca.rc, ca.out))
        self.assertEqual(sorted(support.pyc_files(self.tree)), ref)
        self.assertValid()
        # concise: exit 1, each file that failed named with a reason
        r = self.pp(['-f', 't'])
        self.assertEqual(r.rc, 1 if ca.rc else 0, str(r))
        failed = support.compileall_failures(ca.out)
        self.assertTrue(failed, ca.out)
        for path in failed:
            self.assertIn("cannot compile '%s'" % path, r.err)
        self.assertGoodCompiled()
        self.assertValid()


def first_interpreter():
    for c in support.candidates():
        if c.interp is not None:
            return c
    return None


class HostileOnce(Base):
    candidate = first_interpreter()

    def test_special_files_are_never_opened(self):
        t = self.tree
        os.mkfifo(os.path.join(t, 'fifo.py'))
        s = socket.socket(socket.AF_UNIX)
        try:
            s.bind(os.path.join(t, 'sock.py'))
        except OSError:
            pass
        os.symlink('/dev/null', os.path.join(t, 'dev.py'))
        os.symlink('missing.py', os.path.join(t, 'broken.py'))
        os.symlink('loop.py', os.path.join(t, 'loop.py'))
        try:
            r = self.pp(['t'], timeout=60)
        finally:
            s.close()
        self.assertFalse(r.timed_out, 'prepyc hung on a special file')
        self.assertGoodCompiled()
        self.assertValid()
        r = support.run_prepyc(['compileall', '--python', self.py.path, '--no-cache', '-q', 't'],
                               cwd=self.tmp, env=support.base_env(), timeout=60)
        self.assertFalse(r.timed_out, 'prepyc compileall hung on a special file')

    def test_pycache_that_is_a_file_and_pyc_that_is_a_directory(self):
        write_bytes(self.tree, {'sub/m.py': 'x = 1\n', 'd/n.py': 'y = 2\n'})
        with open(os.path.join(self.tree, 'sub', '__pycache__'), 'w') as f:
            f.write('not a directory')
        os.makedirs(os.path.join(self.tree, 'd', '__pycache__', self.py.pyc_name('n')))
        r = self.pp(['t'])
        self.assertEqual(r.rc, 1, str(r))
        self.assertIn('sub/__pycache__', r.err)
        self.assertIn(self.py.pyc_name('n'), r.err)
        self.assertGoodCompiled()
        self.assertValid()
        ca = support.run_compileall(self.py, 't', cwd=self.tmp, env=support.base_env(),
                                    args=('-q', '-f'))
        pc = support.run_prepyc(['compileall', '--python', self.py.path, '--no-cache', '-q', '-f',
                                 't'], cwd=self.tmp, env=support.base_env())
        self.assertEqual(pc.rc, ca.rc, '%s\n%s' % (ca, pc))

    def test_a_50_mb_source(self):
        write_bytes(self.tree, {'big.py': 'X = """' + 'abcdefghij' * 5 * 1024 * 1024 + '"""\n'})
        r = self.pp(['t'], timeout=600)
        self.assertEqual(r.rc, 0, str(r))
        self.assertGoodCompiled()
        self.assertEqual(self.assertValid(), 4)

    def test_nesting_100000_deep(self):
        write_bytes(self.tree, {'deep.py': '(' * 100000 + ')' * 100000 + '\n',
                                'deep2.py': 'x = ' + '-' * 100000 + '1\n'})
        r = self.pp(['--timeout', '60', 't'], timeout=300)
        self.assertFalse(r.timed_out)
        self.assertEqual(r.rc, 1, str(r))
        self.assertIn("'t/deep.py'", r.err)
        self.assertFalse(os.path.exists(os.path.join(self.tree, '__pycache__',
                                                     self.py.pyc_name('deep'))))
        self.assertGoodCompiled()
        self.assertValid()

    def mount_tmpfs(self, path, opts):
        if os.geteuid() != 0:
            self.skipTest('needs root to mount a tmpfs')
        os.makedirs(path, exist_ok=True)
        if subprocess.call(['mount', '-t', 'tmpfs', '-o', opts, 'tmpfs', path],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) != 0:
            self.skipTest('cannot mount a tmpfs here')
        self.addCleanup(subprocess.call, ['umount', '-l', path])

    def test_disk_full(self):
        prefix = os.path.join(self.tmp, 'full')
        self.mount_tmpfs(prefix, 'size=1m')
        big = {'m%02d.py' % i: 'X = %r\n' % (os.urandom(40000).hex(),) for i in range(20)}
        write_bytes(self.tree, big)
        r = self.pp(['--pycache-prefix', prefix, 't'])
        self.assertEqual(r.rc, 1, str(r))
        self.assertIn('No space left on device', r.err)
        self.assertIn(prefix, r.err)
        self.assertValid(prefix=prefix)

    def test_read_only_file_system(self):
        ro = os.path.join(self.tmp, 'ro')
        self.mount_tmpfs(ro, 'size=4m')
        write_bytes(os.path.join(ro, 't'), GOOD)
        if subprocess.call(['mount', '-o', 'remount,ro', ro], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL) != 0:
            self.skipTest('cannot remount read-only')
        r = support.run_prepyc(['--python', self.py.path, '--no-cache', 't'], cwd=ro,
                               env=support.base_env())
        self.assertEqual(r.rc, 1, str(r))
        self.assertIn('Read-only file system', r.err)
        self.assertIn('good1', r.err)

    def test_three_runs_at_once(self):
        write_bytes(self.tree, {'p/m%03d.py' % i: 'def f(x):\n    return x * %d\n' % i
                                for i in range(300)})
        procs = [subprocess.Popen([support.PREPYC, '--python', self.py.path, '--no-cache', '-f',
                                   't'], cwd=self.tmp, env=support.base_env(),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for _ in range(3)]
        for p in procs:
            out, err = p.communicate(timeout=300)
            self.assertEqual(p.returncode, 0, err)
        self.assertEqual(self.assertValid(), 303)
        r = support.run_prepyc(['check', '--python', self.py.path, 't'], cwd=self.tmp,
                               env=support.base_env())
        self.assertEqual(r.rc, 0, str(r))


_GENERATED = support.per_interpreter(HostileSources, 'TestHostile_', 'hostile sources with %s (%s)',
                                     globals())


def load_tests(loader, standard_tests, pattern):
    suite = support.load_generated(loader, _GENERATED)
    suite.addTests(loader.loadTestsFromTestCase(HostileOnce))
    return suite


if __name__ == '__main__':
    unittest.main()
