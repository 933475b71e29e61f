"""End-to-end test of ``--sys-path`` (issue 17) on a copy of a real
standard library.

A pyenv CPython 3.8 is copied (its binary and its standard library, less
tests, Tk, IDLE and its site-packages) into a temporary prefix, which it
then takes as its own sys.prefix; its site-packages gets a package and a
.pth file adding one more directory.  ``prepyc compile --sys-path`` must
compile every directory of that sys.path recursively (not only the top
level, as compileall with no argument does), never the working directory;
``prepyc check --sys-path --import ...`` then finds every pyc fresh and
imports compile nothing; a sys.path directory that cannot be written is
one error naming it.  Nothing is ever written into the real installation.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402

VERSION = '3.8'


def find_python38():
    root = support.pyenv_root()
    if not root:
        return None
    vdir = os.path.join(root, 'versions')
    for v in sorted(os.listdir(vdir)) if os.path.isdir(vdir) else []:
        p = os.path.join(vdir, v, 'bin', 'python' + VERSION)
        if v.startswith(VERSION + '.') and os.path.isfile(p):
            return os.path.dirname(os.path.dirname(p))
    return None


SKIP_DIRS = {'__pycache__', 'test', 'tests', 'site-packages', 'idlelib', 'tkinter',
             'turtledemo', 'ensurepip'}


def copy_prefix(src, dest):
    """bin/pythonX.Y and lib/pythonX.Y (less SKIP_DIRS and config-*) of src into dest."""
    os.makedirs(os.path.join(dest, 'bin'))
    shutil.copy2(os.path.join(src, 'bin', 'python' + VERSION), os.path.join(dest, 'bin'))
    lib = os.path.join(src, 'lib', 'python' + VERSION)

    def ignore(d, names):
        return [n for n in names if n in SKIP_DIRS or n.startswith('config-')]
    shutil.copytree(lib, os.path.join(dest, 'lib', 'python' + VERSION), symlinks=True,
                    ignore=ignore)


def chattr_works(probe_dir):
    if not shutil.which('chattr'):
        return False
    d = tempfile.mkdtemp(dir=probe_dir)
    try:
        if subprocess.run(['chattr', '+i', d], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode != 0:
            return False
        subprocess.run(['chattr', '-i', d])
        return True
    finally:
        shutil.rmtree(d, True)


class SysPathTests(unittest.TestCase):

    def setUp(self):
        support.require_prepyc()
        src = find_python38()
        if not src:
            self.skipTest('no pyenv CPython %s to copy' % VERSION)
        self.tmp = tempfile.mkdtemp(prefix='prepyc-e2e-syspath-')
        self.addCleanup(self.cleanup)
        self.prefix = os.path.join(self.tmp, 'prefix')
        copy_prefix(src, self.prefix)
        self.py = os.path.join(self.prefix, 'bin', 'python' + VERSION)
        self.stdlib = os.path.join(self.prefix, 'lib', 'python' + VERSION)
        site = os.path.join(self.stdlib, 'site-packages')
        self.extra = os.path.join(self.tmp, 'extra')
        support.write_tree(self.tmp, {
            'prefix/lib/python%s/site-packages/e2e_sp/__init__.py' % VERSION: 'from . import m\n',
            'prefix/lib/python%s/site-packages/e2e_sp/m.py' % VERSION: 'M = 1\n',
            'prefix/lib/python%s/site-packages/e2e.pth' % VERSION: self.extra + '\n',
            'extra/e2e_extra/__init__.py': 'X = 1\n',
            'extra/e2e_extra/deep/er/most.py': 'D = 1\n',
            'cwd/e2e_app.py': 'A = 1\n',
        })
        out = subprocess.run([self.py, '-c', 'import sys; print(sys.prefix)'],
                             stdout=subprocess.PIPE, env=support.base_env(),
                             universal_newlines=True).stdout.strip()
        if os.path.realpath(out) != os.path.realpath(self.prefix):
            self.skipTest('the copied interpreter does not take its new prefix (%s)' % out)
        self.assertTrue(os.path.isdir(site))
        self.cwd = os.path.join(self.tmp, 'cwd')

    def cleanup(self):
        subprocess.run(['chattr', '-R', '-i', self.tmp], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        shutil.rmtree(self.tmp, True)

    def pycs(self, root):
        return {os.path.join(d, n) for d, _, ns in os.walk(root) for n in ns
                if n.endswith('.pyc')}

    def sources(self, root):
        return {os.path.join(d, n) for d, _, ns in os.walk(root) for n in ns
                if n.endswith('.py') and '__pycache__' not in d}

    def test_sys_path_compile_then_check(self):
        env = support.base_env()
        start = time.monotonic()
        res = support.run_prepyc(['compile', '--sys-path', '--python', self.py], cwd=self.cwd,
                                 env=env, timeout=600)
        elapsed = time.monotonic() - start
        self.assertEqual(res.rc, 0, res)
        n = len(self.sources(self.stdlib)) + len(self.sources(self.extra))
        m = re.match(r'^prepyc: (\d+) compiled, (\d+) up to date, 0 failed', res.out)
        self.assertIsNotNone(m, res)
        # (starting the interpreter above wrote the pycs of what site imports)
        self.assertEqual(int(m.group(1)) + int(m.group(2)), n, res)
        # recursively: the deep module of the .pth directory, the packages of site-packages
        for rel in ('email/mime/__pycache__/text.cpython-38.pyc',
                    'site-packages/e2e_sp/__pycache__/m.cpython-38.pyc',
                    'json/__pycache__/decoder.cpython-38.pyc'):
            self.assertTrue(os.path.isfile(os.path.join(self.stdlib, rel)), rel)
        self.assertTrue(os.path.isfile(os.path.join(
            self.extra, 'e2e_extra/deep/er/__pycache__/most.cpython-38.pyc')))
        # never the working directory
        self.assertEqual(self.pycs(self.cwd), set())
        # check proves it, and importing compiles nothing
        res = support.run_prepyc(['check', '--sys-path', '--python', self.py,
                                  '--import', 'email', '--import', 'json',
                                  '--import', 'http.client', '--import', 'e2e_sp',
                                  '--import', 'e2e_extra'], cwd=self.cwd, env=env, timeout=300)
        self.assertEqual(res.rc, 0, res)
        self.assertRegex(res.out, r'(?m)^prepyc: check: %d sources, %d pycs ok, 0 problems' % (n, n))
        self.assertRegex(res.out, r'(?m)^prepyc: check --import: 5 modules imported, \d+ loaded, '
                                  r'0 sources compiled at import, 0 bytecode writes attempted \(')
        self.assertNotIn('outside', res.err, 'the sys.path directories are checked paths')
        # a second compile has nothing to do
        res = support.run_prepyc(['compile', '--sys-path', '--python', self.py], cwd=self.cwd,
                                 env=env, timeout=300)
        self.assertRegex(res.out, r'^prepyc: 0 compiled, %d up to date' % n)
        self.assertLess(elapsed, 300)

    def test_sys_path_unwritable_directory_is_one_error(self):
        if os.geteuid() == 0:
            if not chattr_works(self.tmp):
                self.skipTest('as root only chattr +i makes a directory unwritable')
            lock = ['chattr', '+i', self.extra]
            unlock = ['chattr', '-i', self.extra]
        else:
            lock = ['chmod', '555', self.extra]
            unlock = ['chmod', '755', self.extra]
        res = support.run_prepyc(['compile', '--sys-path', '--python', self.py, '-x', 'e2e_extra'],
                                 cwd=self.cwd, timeout=600)
        self.assertEqual(res.rc, 0, res)
        subprocess.run(lock, check=True)
        try:
            # stale sources there: one error for the directory, the rest compiled
            res = support.run_prepyc(['compile', '--sys-path', '--python', self.py],
                                     cwd=self.cwd, timeout=300)
            self.assertEqual(res.rc, 1, 'e2e_extra is not compiled yet\n%s' % res)
            errors = [l for l in res.err.splitlines() if l.startswith('prepyc: error:')]
            self.assertEqual(len(errors), 1, res)
            self.assertRegex(errors[0], r"cannot write in '%s' .*2 sources to compile there"
                             % re.escape(self.extra))
            # check writes nothing: it just checks
            res = support.run_prepyc(['check', '--sys-path', '--python', self.py, '-q'],
                                     cwd=self.cwd, timeout=300)
            self.assertEqual(res.rc, 1, res)
            self.assertEqual(sorted(l.split(':')[0] for l in res.out.splitlines()),
                             sorted(os.path.join(self.extra, r) for r in (
                                 'e2e_extra/__init__.py', 'e2e_extra/deep/er/most.py')), res)
        finally:
            subprocess.run(unlock)
        res = support.run_prepyc(['compile', '--sys-path', '--python', self.py], cwd=self.cwd,
                                 timeout=300)
        self.assertEqual(res.rc, 0, res)
        subprocess.run(lock, check=True)
        try:
            res = support.run_prepyc(['compile', '--sys-path', '--python', self.py],
                                     cwd=self.cwd, timeout=300)
            self.assertEqual((res.rc, res.err), (0, ''), 'all fresh: nothing to say\n%s' % res)
        finally:
            subprocess.run(unlock)


if __name__ == '__main__':
    unittest.main()
