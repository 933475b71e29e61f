"""End-to-end tests of ``prepyc compile`` against the target interpreters'
own compileall.

One generated TestCase class per interpreter candidate
(``TestCompile_<label>``), so each interpreter's results are visible; a
missing interpreter makes its class skip.  ``EnvironmentErrorTests`` holds the
interpreter-independent CLI checks.
"""

import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402

# A small package tree with unique module names (so the import helper never
# finds them already imported).
PKG_FILES = {
    'e2e_top.py': 'import e2e_pkg\nX = 1\n',
    'e2e_pkg/__init__.py': '"""package doc"""\nfrom . import mod\n',
    'e2e_pkg/mod.py': ('def f(x):\n    """doc"""\n    assert x, "x must be true"\n'
                       '    return x in {"alpha", "beta", "gamma"}\n'),
    'e2e_pkg/sub/__init__.py': '',
    'e2e_pkg/sub/deep.py': ('class C:\n    """class doc"""\n    y = 1.5\n'
                            '    z = 1e999 - 1e999\n    w = (-0.0, 0.0, 2j)\n'),
}
PKG_MODULES = ['e2e_top', 'e2e_pkg', 'e2e_pkg.mod', 'e2e_pkg.sub', 'e2e_pkg.sub.deep']

# file names (without .py) that a line- or shell-minded implementation could trip on
ODD_NAMES = ['new\nline', 'tab\there', "q'uote", 'back\\slash', 'dq"uote', ' lead', 'trail ',
             '-dash', '%s', 'star*', '--force', 'x;y', '$HOME', 'e\u0301t\u00e9', '\U0001f600']

CARET_LINE = re.compile(r'^\s*\^+\s*$', re.M)

NOCACHE_WRAPPER = r'''
import sys, runpy, builtins
sys.implementation.cache_tag = None
args = sys.argv[1:]
mode = None
while args:
    a = args[0]
    if a == '-' or not a.startswith('-'):
        break
    args.pop(0)
    if a.startswith('--'):
        continue
    flags = a[1:]
    for i, ch in enumerate(flags):
        if ch in 'cmXW':
            rest = flags[i + 1:] or args.pop(0)
            if ch in 'cm':
                mode = (ch, rest)
            break
    if mode:
        break
g = {'__name__': '__main__', '__builtins__': builtins}
if mode and mode[0] == 'c':
    sys.argv = ['-c'] + args
    exec(compile(mode[1], '<string>', 'exec'), g)
elif mode and mode[0] == 'm':
    sys.argv = [mode[1]] + args
    runpy.run_module(mode[1], run_name='__main__', alter_sys=True)
elif not args or args[0] == '-':
    sys.argv = ['-'] + args[1:]
    exec(compile(sys.stdin.read(), '<stdin>', 'exec'), g)
else:
    sys.argv = args
    runpy.run_path(args[0], run_name='__main__')
'''

SABOTAGE = ('import builtins\n'
            'def compile(*args, **kwargs):\n'
            '    raise RuntimeError("SABOTAGE: compile() of a process that ran the caller\'s "\n'
            '                       "sitecustomize/usercustomize")\n'
            'builtins.compile = compile\n')


# Why Pyodide cannot list a directory that holds a file name that is not UTF-8
NON_UTF8_NAMES = ('a directory holding a file name that is not UTF-8 lists as empty '
                  '(Emscripten\'s file names are JavaScript strings)')


class CompileTestBase(unittest.TestCase):
    """Helpers shared by all test classes."""

    def setUp(self):
        support.require_prepyc()
        self.tmp = tempfile.mkdtemp(prefix='prepyc-e2e-')
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def assertRc(self, res, rc, msg=''):
        self.assertFalse(res.timed_out, 'timed out\n%s' % res)
        self.assertEqual(res.rc, rc, '%s\n%s' % (msg, res))

    def assertSummary(self, res, compiled=None, uptodate=None, failed=None):
        s = support.parse_summary(res.out)
        self.assertIsNotNone(s, 'no summary line on stdout\n%s' % res)
        for key, want in (('compiled', compiled), ('uptodate', uptodate), ('failed', failed)):
            if want is not None:
                self.assertEqual(s[key], want, '%s in summary %r\n%s' % (key, s['line'], res))
        return s

    def assertNoJunk(self, root):
        junk = support.pycache_junk(root)
        self.assertEqual(junk, [], 'non-pyc files left in __pycache__')


class InterpreterTests(CompileTestBase):
    candidate = None   # set on the generated subclasses

    @classmethod
    def setUpClass(cls):
        if cls.candidate is None:
            raise unittest.SkipTest('abstract base')
        if cls.candidate.interp is None:
            raise unittest.SkipTest(cls.candidate.reason)
        cls.py = cls.candidate.interp

    # -- helpers -----------------------------------------------------------

    def pp(self, args, cwd=None, env=None, **kw):
        return support.run_prepyc(['--python', self.py.path] + list(args),
                                  cwd=cwd or self.tmp, env=env, **kw)

    def make_pkg(self, name='t', extra=None):
        files = dict(PKG_FILES)
        files.update(extra or {})
        support.write_tree(self.path(name), files)
        return self.path(name)

    def pkg_pycs(self, tree='t'):
        return support.pyc_files(self.path(tree))

    def expected_pkg_pycs(self):
        out = set()
        for rel in PKG_FILES:
            d, name = os.path.split(rel)
            out.add(os.path.join(d, '__pycache__', self.py.pyc_name(name[:-3])))
        return out

    def header_fields(self, pyc):
        with open(pyc, 'rb') as f:
            data = f.read(self.py.header_size)
        magic = data[:4]
        if self.py.header_size == 12:
            return magic, 0, int.from_bytes(data[4:8], 'little'), int.from_bytes(data[8:12], 'little')
        return (magic, int.from_bytes(data[4:8], 'little'),
                int.from_bytes(data[8:12], 'little'), int.from_bytes(data[12:16], 'little'))

    def assertConformant(self, rep):
        self.assertTrue(rep.ok, '\n' + support.format_report(rep))

    # -- conformance on a stdlib subset ------------------------------------

    def test_conformance_stdlib_subset(self):
        rels = support.select_stdlib_subset(self.py.stdlib, 150)
        self.assertGreater(len(rels), 100, 'stdlib too small? %s' % self.py.stdlib)
        support.copy_files(self.py.stdlib, rels, self.path('lib'))
        rep = support.conformance(self.py, self.tmp, 'lib')
        self.assertConformant(rep)
        self.assertGreater(len(rep.results), 90)
        # the broken files of test/ really were exercised where present
        broken = [r for r in rels if re.match(r'test/(tokenizedata/)?badsyntax_', r)]
        if broken:
            self.assertTrue(rep.pp_failed, 'no failures although %s were selected' % broken)

    # -- imports ------------------------------------------------------------

    def test_import_without_compiling(self):
        tree = self.make_pkg()
        compiled, errors = support.import_compiled(self.py, tree, PKG_MODULES)
        self.assertEqual(errors, {})
        self.assertEqual(len(compiled), len(PKG_FILES),
                         'sanity: without pycs every module is compiled by import')
        res = self.pp(['t'])
        self.assertRc(res, 0)
        compiled, errors = support.import_compiled(self.py, tree, PKG_MODULES)
        self.assertEqual(errors, {})
        self.assertEqual(compiled, [], 'import compiled these despite prepyc\'s pycs')
        # the helper can fail: a touched source must be compiled by import
        mod = os.path.join(tree, 'e2e_pkg', 'mod.py')
        st = os.stat(mod)
        os.utime(mod, ns=(st.st_atime_ns, st.st_mtime_ns + 7 * 10**9))
        compiled, errors = support.import_compiled(self.py, tree, PKG_MODULES)
        self.assertEqual(errors, {})
        self.assertEqual(compiled, [os.path.realpath(mod)])

    # -- freshness ------------------------------------------------------------

    def test_second_run_compiles_nothing(self):
        self.make_pkg()
        res = self.pp(['t'])
        self.assertRc(res, 0)
        self.assertSummary(res, compiled=len(PKG_FILES), uptodate=0, failed=0)
        pycs = self.pkg_pycs()
        self.assertEqual(pycs, self.expected_pkg_pycs())
        before = support.snapshot(self.path('t'), pycs)
        res = self.pp(['t'])
        self.assertRc(res, 0)
        self.assertIn('0 compiled', res.out)
        self.assertSummary(res, compiled=0, uptodate=len(PKG_FILES), failed=0)
        self.assertEqual(support.snapshot(self.path('t'), pycs), before,
                         'an up-to-date pyc was rewritten')

    def test_touch_recompiles_exactly_that_file(self):
        self.make_pkg()
        self.assertRc(self.pp(['t']), 0)
        pycs = self.pkg_pycs()
        before = support.snapshot(self.path('t'), pycs)
        src = self.path('t', 'e2e_pkg', 'mod.py')
        st = os.stat(src)
        os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 5 * 10**9))
        res = self.pp(['t'])
        self.assertRc(res, 0)
        self.assertSummary(res, compiled=1, uptodate=len(PKG_FILES) - 1, failed=0)
        after = support.snapshot(self.path('t'), pycs)
        changed = sorted(r for r in pycs if after[r] != before[r])
        self.assertEqual(changed, [os.path.join('e2e_pkg', '__pycache__', self.py.pyc_name('mod'))])
        magic, flags, mtime, size = self.header_fields(self.path('t', changed[0]))
        self.assertEqual(mtime, int(os.stat(src).st_mtime) & 0xFFFFFFFF)

    def test_size_change_with_same_mtime_recompiles(self):
        self.make_pkg()
        self.assertRc(self.pp(['t']), 0)
        src = self.path('t', 'e2e_pkg', 'mod.py')
        st = os.stat(src)
        with open(src, 'a') as f:
            f.write('# grown\n')
        os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))
        self.assertEqual(os.stat(src).st_mtime_ns, st.st_mtime_ns)
        res = self.pp(['t'])
        self.assertRc(res, 0)
        self.assertSummary(res, compiled=1, uptodate=len(PKG_FILES) - 1)
        pyc = self.path('t', 'e2e_pkg', '__pycache__', self.py.pyc_name('mod'))
        self.assertEqual(self.header_fields(pyc)[3], os.stat(src).st_size)
        compiled, errors = support.import_compiled(self.py, self.path('t'), PKG_MODULES)
        self.assertEqual((compiled, errors), ([], {}))

    def test_force_recompiles_all(self):
        self.make_pkg()
        self.assertRc(self.pp(['t']), 0)
        pycs = self.pkg_pycs()
        before = support.snapshot(self.path('t'), pycs)
        for flag in ('-f', '--force'):
            res = self.pp([flag, 't'])
            self.assertRc(res, 0)
            self.assertSummary(res, compiled=len(PKG_FILES), uptodate=0, failed=0)
            after = support.snapshot(self.path('t'), pycs)
            for rel in pycs:
                self.assertNotEqual(after[rel][:2], before[rel][:2],
                                    '%s %s was not rewritten' % (flag, rel))
                self.assertEqual(after[rel][2], before[rel][2])
            before = after
        self.assertNoJunk(self.path('t'))

    def test_bad_header_recompiled(self):
        self.make_pkg()
        self.assertRc(self.pp(['t']), 0)
        pyc = self.path('t', 'e2e_pkg', '__pycache__', self.py.pyc_name('mod'))
        with open(pyc, 'rb') as f:
            good = f.read()
        bad_headers = {'other magic': bytes([good[0] ^ 0x55]) + good[1:],
                       'truncated': good[:8],
                       'empty': b''}
        if self.py.header_size == 16:
            bad_headers['flags 1 (hash pyc)'] = good[:4] + b'\x01\0\0\0' + good[8:]
            bad_headers['flags 3 (checked hash)'] = good[:4] + b'\x03\0\0\0' + good[8:]
        bad_headers['other mtime in pyc'] = (
            good[:self.py.header_size - 8]
            + (int.from_bytes(good[self.py.header_size - 8:self.py.header_size - 4], 'little')
               ^ 1).to_bytes(4, 'little')
            + good[self.py.header_size - 4:])
        for what, data in sorted(bad_headers.items()):
            with open(pyc, 'wb') as f:
                f.write(data)
            res = self.pp(['t'])
            self.assertRc(res, 0, what)
            self.assertSummary(res, compiled=1, uptodate=len(PKG_FILES) - 1)
            with open(pyc, 'rb') as f:
                self.assertEqual(f.read(), good, 'pyc not restored after %s' % what)

    def test_header_fields_and_odd_mtimes(self):
        cases = {'a.py': 1700000000 * 10**9 + 999999999,   # double rounding -> ...001
                 'b.py': (2**32 + 5) * 10**9,               # wraps
                 'c.py': -1500000000,                       # -1.5 s -> 0xFFFFFFFF
                 'd.py': 0,
                 'e.py': 1234567890 * 10**9 + 5}
        files = {name: 'X = %r\n' % name for name in cases}
        files['big.py'] = 'S = %r\n' % ('x' * 70000)
        support.write_tree(self.path('t'), files)
        usable = []
        for name, ns in cases.items():
            p = self.path('t', name)
            try:
                os.utime(p, ns=(ns, ns))
            except OSError:
                continue
            if os.stat(p).st_mtime_ns == ns:
                usable.append(name)
        usable.append('big.py')
        res = self.pp(['t'])
        self.assertRc(res, 0)
        for name in usable:
            src = self.path('t', name)
            st = os.stat(src)
            magic, flags, mtime, size = self.header_fields(
                self.path('t', '__pycache__', self.py.pyc_name(name[:-3])))
            self.assertEqual(magic, self.py.magic, name)
            self.assertEqual(flags, 0, name)
            self.assertEqual(mtime, int(st.st_mtime) & 0xFFFFFFFF, name)
            self.assertEqual(size, st.st_size & 0xFFFFFFFF, name)
        res = self.pp(['t'])
        self.assertRc(res, 0)
        self.assertSummary(res, compiled=0, uptodate=len(files))
        # (Pyodide: Emscripten's NODEFS misreads a time before 1970, -1.5 s as +1.79 s)
        importable = [n for n in usable
                      if (self.py.version >= (3, 7) and not self.py.pyodide)
                      or 0 <= int(os.stat(self.path('t', n)).st_mtime) < 2**32]
        compiled, errors = support.import_compiled(self.py, self.path('t'),
                                                   [n[:-3] for n in importable])
        self.assertEqual((compiled, errors), ([], {}))

    # -- walk -------------------------------------------------------------------

    def build_walk_tree(self):
        t = self.path('t')
        support.write_tree(t, {
            'a.py': 'A = 1\n',
            '.hidden.py': 'H = 1\n',
            'caf\u00e9.py': 'C = "\u00e9"\n',
            'with space.py': 'S = 1\n',
            '.py': 'DOTPY = 1\n',
            'foo.pyw': 'x = 1\n',
            'foo.py.bak': 'x = 1\n',
            'foo.PY': 'x = 1\n',
            'foopy': 'x = 1\n',
            'x.py/inner.py': 'I = 1\n',
            '__pycache__/stray.py': 'STRAY = 1\n',
            'sub/b.py': 'B = 1\n',
            'sub/__pycache__/stray2.py': 'x = 1\n',
        })
        for name in ODD_NAMES:
            support.write_tree(t, {os.path.join('odd', name + '.py'): 'ODD = %r\n' % name})
        support.write_tree(self.path('outside'), {'o.py': 'O = 1\n', 'target.py': 'T = 1\n'})
        os.symlink('../outside', os.path.join(t, 'linkdir'))
        os.symlink('../outside', os.path.join(t, 'linkdir.py'))
        os.symlink('../outside/target.py', os.path.join(t, 'linkfile.py'))
        os.symlink('nowhere.py', os.path.join(t, 'dangling.py'))
        os.symlink('.', os.path.join(t, 'sub', 'loop'))
        os.mkfifo(os.path.join(t, 'fifo.py'))
        with open(os.path.join(os.fsencode(t), b'l\xe9gacy.py'), 'wb') as f:   # not UTF-8
            f.write(b'L = 1\n')
        return t

    def test_walk_rules_match_compileall(self):
        support.skip_if_pyodide(self, self.py, NON_UTF8_NAMES)
        t = self.build_walk_tree()
        rep = support.conformance(self.py, self.tmp, 't')
        self.assertConformant(rep)
        tag = self.py.cache_tag
        expected = {
            '__pycache__/a.%s.pyc' % tag,
            '__pycache__/.hidden.%s.pyc' % tag,
            '__pycache__/caf\u00e9.%s.pyc' % tag,
            '__pycache__/with space.%s.pyc' % tag,
            '__pycache__/linkfile.%s.pyc' % tag,
            'x.py/__pycache__/inner.%s.pyc' % tag,
            'sub/__pycache__/b.%s.pyc' % tag,
            '__pycache__/%s.%s.pyc' % (os.fsdecode(b'l\xe9gacy'), tag),
        }
        expected |= {'odd/__pycache__/%s.%s.pyc' % (n, tag) for n in ODD_NAMES}
        # '.py' itself: wherever the target's cache_from_source puts it
        dotpy = support.cache_from_source(self.py, ['t/.py'], cwd=self.tmp)[0]
        expected.add(os.path.relpath(dotpy, 't'))
        self.assertEqual(rep.pp_pycs, expected)
        self.assertEqual(rep.pp.rc, 0, rep.pp)
        self.assertEqual(support.pyc_files(self.path('outside')), set())
        info = support.pyc_info(self.py, [os.path.join(t, '__pycache__', 'linkfile.%s.pyc' % tag)])
        self.assertEqual(list(info.values())[0]['co_filename'], 't/linkfile.py')
        res = self.pp(['t'], timeout=60)
        self.assertRc(res, 0)
        self.assertSummary(res, compiled=0, uptodate=len(expected), failed=0)

    def test_dot_argument_from_inside_the_tree(self):
        t = self.make_pkg()
        rep = support.conformance(self.py, t, '.', scan_root=t, ref_dir=self.path('ref'))
        self.assertConformant(rep)
        info = support.pyc_info(self.py, [os.path.join(t, 'e2e_pkg', '__pycache__',
                                                       self.py.pyc_name('mod'))])
        self.assertEqual(list(info.values())[0]['co_filename'], './e2e_pkg/mod.py')

    def test_same_file_given_twice(self):
        files = dict(PKG_FILES)
        files.update({'gen/g%d.py' % i: 'X = %d\n' % i for i in range(20)})
        t = self.make_pkg(extra=files)
        res = self.pp(['-f', '-j', '2', 't', 't/e2e_pkg/mod.py', 't', './t/gen'])
        self.assertRc(res, 0)
        self.assertNoJunk(t)
        pycs = support.pyc_files(t)
        self.assertEqual(len(pycs), len(files))
        # every pyc is complete and loadable: compare each with itself via the target
        cmp = support.compare_pycs(self.py, [(os.path.join(t, r), os.path.join(t, r)) for r in pycs])
        self.assertEqual({c[0] for c in cmp}, {'identical'})
        compiled, errors = support.import_compiled(self.py, t, PKG_MODULES)
        self.assertEqual((compiled, errors), ([], {}))

    def test_unwritable_pyc_targets(self):
        # like py_compile: a pyc path that is a symlink or not a regular file is
        # an error for that file, never written through; a __pycache__ that is
        # a file makes its directory's files fail; everything else is compiled
        t = self.path('t')
        support.write_tree(t, {'a.py': 'A = 1\n', 'b.py': 'B = 1\n', 'ok.py': 'OK = 1\n',
                               'u/c.py': 'C = 1\n', 'u/__pycache__': 'not a dir\n'})
        with open(self.path('precious.txt'), 'w') as f:
            f.write('precious\n')
        apyc = os.path.join(t, '__pycache__', self.py.pyc_name('a'))
        bpyc = os.path.join(t, '__pycache__', self.py.pyc_name('b'))
        os.mkdir(os.path.dirname(apyc))
        os.symlink(self.path('precious.txt'), apyc)
        os.mkdir(bpyc)
        ca = support.run_compileall(self.py, 't', cwd=self.tmp)
        self.assertEqual(ca.rc, 1, ca)
        support.move_pycs(t, self.path('ref'))
        res = self.pp(['t'])
        self.assertRc(res, 1)
        with open(self.path('precious.txt')) as f:
            self.assertEqual(f.read(), 'precious\n', 'wrote through a symlinked pyc')
        self.assertTrue(os.path.islink(apyc))
        self.assertTrue(os.path.isdir(bpyc))
        for needle in (apyc, bpyc, os.path.join(t, 'u')):
            self.assertIn(os.path.relpath(needle, self.tmp), res.err)
        self.assertEqual(support.pyc_files(t) - {os.path.relpath(apyc, t)},
                         {'__pycache__/' + self.py.pyc_name('ok')})
        self.assertSummary(res, compiled=1, failed=3)
        self.assertNoJunk(t)

    def test_fifo_is_not_opened(self):
        t = self.path('t')
        support.write_tree(t, {'a.py': 'A = 1\n', 'z.py': 'Z = 1\n'})
        os.mkfifo(os.path.join(t, 'fifo.py'))
        os.mkfifo(os.path.join(t, 'm.py'))
        res = self.pp(['t'], timeout=60)
        self.assertFalse(res.timed_out, 'prepyc hung on a FIFO named *.py\n%s' % res)
        self.assertRc(res, 0)
        self.assertEqual(support.pyc_files(t), {
            '__pycache__/a.%s.pyc' % self.py.cache_tag, '__pycache__/z.%s.pyc' % self.py.cache_tag})
        # as a file argument too
        res = self.pp(['t/fifo.py'], timeout=60)
        self.assertFalse(res.timed_out, 'prepyc hung on a FIFO file argument\n%s' % res)

    def make_deep_tree(self, depth=12):
        t = self.path('t')
        files = {'m0.py': 'L = 0\n'}
        d = ''
        for i in range(1, depth + 1):
            d = os.path.join(d, 'd%d' % i)
            files[os.path.join(d, 'm%d.py' % i)] = 'L = %d\n' % i
        support.write_tree(t, files)
        return t

    def deepest(self, pycs):
        return max(int(re.search(r'm(\d+)\.', p).group(1)) for p in pycs)

    def test_maxlevels_default(self):
        self.make_deep_tree(12)
        rep = support.conformance(self.py, self.tmp, 't')
        self.assertConformant(rep)
        self.assertEqual(self.deepest(rep.pp_pycs), 10 if self.py.version < (3, 9) else 12)

    def test_l_does_not_recurse(self):
        self.make_deep_tree(3)
        rep = support.conformance(self.py, self.tmp, 't', prepyc_args=['-l'],
                                  compileall_args=['-j0', '-q', '-l'])
        self.assertConformant(rep)
        self.assertEqual(rep.pp_pycs, {'__pycache__/m0.%s.pyc' % self.py.cache_tag})

    def test_file_and_directory_arguments(self):
        t = self.path('t')
        support.write_tree(t, {'a.py': 'A = 1\n', 'c.pyw': 'C = 1\n',
                               'sub/b.py': 'B = 1\n', 'sub/d.py': 'D = 1\n',
                               'other/e.py': 'E = 1\n', 'more/m.py': 'M = 1\n'})
        abs_d = os.path.join(t, 'sub', 'd.py')
        args = ['t/a.py', './t/sub/b.py', 't/c.pyw', abs_d, 't/other/', 't//more']
        rep = support.conformance(self.py, self.tmp, args, scan_root=t)
        self.assertConformant(rep)
        tag = self.py.cache_tag
        want = {'__pycache__/a.%s.pyc' % tag: 't/a.py',
                'sub/__pycache__/b.%s.pyc' % tag: './t/sub/b.py',
                'sub/__pycache__/d.%s.pyc' % tag: abs_d,
                'other/__pycache__/e.%s.pyc' % tag: 't/other/e.py',
                'more/__pycache__/m.%s.pyc' % tag: 't//more/m.py'}
        self.assertEqual(rep.pp_pycs, set(want))
        info = support.pyc_info(self.py, [os.path.join(t, r) for r in want])
        got = {os.path.relpath(p, t): v['co_filename'] for p, v in info.items()}
        self.assertEqual(got, want)

    def test_nonexistent_path(self):
        support.write_tree(self.path('t'), {'a.py': 'A = 1\n'})
        res = self.pp(['no_such_dir', 't', 'missing_file.py'])
        self.assertRc(res, 1)
        self.assertIn('no_such_dir', res.err)
        self.assertIn('missing_file.py', res.err)
        self.assertEqual(self.pkg_pycs(), {'__pycache__/a.%s.pyc' % self.py.cache_tag})

    # -- errors and output ------------------------------------------------------

    BAD_TREE = {'good1.py': 'G = 1\n', 'bad.py': 'x = 1\ndef f(:\n    pass\n',
                'sub/good2.py': 'G = 2\n'}

    def test_syntax_error_reported(self):
        files = dict(self.BAD_TREE)
        files.update({'indent.py': 'if 1:\nx = 1\n',          # IndentationError: "Sorry: ..." form
                      'nul.py': 'x = 1\0\n',                  # ValueError before 3.12
                      'cookie.py': '# coding: no-such-codec\nx = 1\n',
                      'caf\u00e9_bad.py': 's = "\u00e9"\n)\n'})
        support.write_tree(self.path('t'), files)
        ca = support.run_compileall(self.py, 't', cwd=self.tmp, args=['-q'])
        ref_msgs = support.compileall_messages(ca.out)
        bad = {'t/bad.py', 't/indent.py', 't/nul.py', 't/cookie.py', 't/caf\u00e9_bad.py'}
        self.assertEqual(set(ref_msgs), bad, 'compileall output:\n%s' % ca)
        support.move_pycs(self.path('t'), self.path('ref'))
        res = self.pp(['t'])
        self.assertRc(res, 1)
        self.assertEqual(support.prepyc_failures(res.err), bad, res)
        self.assertIn("prepyc: error: cannot compile 't/bad.py':", res.err)
        self.assertIn('SyntaxError', res.err)
        self.assertIn('line 2', res.err)
        self.assertRegex(res.err, CARET_LINE)
        self.assertNotIn('SyntaxError', res.out, 'errors belong on stderr')
        blocks = self.error_blocks(res.err)
        for path, ref_msg in sorted(ref_msgs.items()):
            block = [l.rstrip() for l in blocks.get(path, '').splitlines()]
            for line in ref_msg.splitlines():
                if line.strip():
                    self.assertIn(line.rstrip(), block,
                                  '%s: line of the target\'s own message missing:\n%r\nprepyc said:\n%s'
                                  % (path, line, blocks.get(path)))
        tag = self.py.cache_tag
        self.assertEqual(self.pkg_pycs(), {'__pycache__/good1.%s.pyc' % tag,
                                           'sub/__pycache__/good2.%s.pyc' % tag})
        self.assertSummary(res, compiled=2, failed=len(bad))
        self.assertNoJunk(self.path('t'))

    @staticmethod
    def error_blocks(err):
        """{path: message lines after "prepyc: error: cannot compile 'PATH':"}"""
        blocks = {}
        current = None
        for line in err.splitlines():
            m = re.match(r"^prepyc: error: cannot compile '(.*)':(.*)$", line)
            if m:
                current = m.group(1)
                blocks[current] = m.group(2).strip() + '\n'
            elif line.startswith('prepyc:'):
                current = None
            elif current is not None:
                blocks[current] += line + '\n'
        return blocks

    def test_quiet_levels(self):
        support.write_tree(self.path('t'), self.BAD_TREE)
        res = self.pp(['-q', 't'])
        self.assertRc(res, 1)
        self.assertEqual(res.out.strip(), '', '-q must hide the summary')
        self.assertIn("cannot compile 't/bad.py'", res.err)
        res = self.pp(['-qq', 't'])
        self.assertRc(res, 1)
        self.assertEqual((res.out, res.err), ('', ''), '-qq must print nothing')
        # nor the walk's errors, which still fail the run
        for args in (['missing.py'], ['ok/notes.txt'], ['ok', 'missing']):
            support.write_tree(self.path('ok'), {'a.py': 'A = 1\n', 'notes.txt': 'hi\n'})
            res = self.pp(['-qq'] + args)
            self.assertRc(res, 1 if 'missing' in ' '.join(args) else 0)
            self.assertEqual((res.out, res.err), ('', ''), args)
        support.write_tree(self.path('ok'), {'a.py': 'A = 1\n'})
        res = self.pp(['-q', 'ok'])
        self.assertRc(res, 0)
        self.assertEqual((res.out, res.err), ('', ''))
        # compiler warnings are shown by default and hidden by -q ("errors only")
        support.write_tree(self.path('w'), {'w.py': 'x = 1\nif x is 1:\n    pass\n'})
        res = self.pp(['-q', 'w'])
        self.assertRc(res, 0)
        self.assertEqual((res.out, res.err), ('', ''), '-q must hide compiler warnings')
        if self.py.version >= (3, 8):
            res = self.pp(['-f', 'w'])
            self.assertRc(res, 0)
            self.assertIn("warning: while compiling 'w/w.py'", res.err)
            self.assertIn('SyntaxWarning', res.err)

    def test_summary_line(self):
        support.write_tree(self.path('t'), self.BAD_TREE)
        support.write_tree(self.path('t'), {'good3.py': 'G = 3\n'})
        res = self.pp(['-j', '2', 't'])
        self.assertRc(res, 1)
        lines = [l for l in res.out.splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, 'one summary line expected on stdout\n%s' % res)
        s = self.assertSummary(res, compiled=3, uptodate=0, failed=1)
        self.assertIn(self.py.version_str, s['line'])
        self.assertIn(self.py.cache_tag, s['line'])
        self.assertRegex(s['line'], r' in \d+(\.\d+)?s$')
        res = self.pp(['t'])
        self.assertRc(res, 1)
        self.assertSummary(res, compiled=0, uptodate=3, failed=1)
        # default -j: all cores, but never more workers than files to compile
        support.write_tree(self.path('many'), {'m%d.py' % i: 'M = %d\n' % i for i in range(6)})
        res = self.pp(['many'])
        self.assertRc(res, 0)
        m = re.search(r'(\d+) workers?\b', res.out)
        if m:
            ncpu = len(os.sched_getaffinity(0))
            self.assertIn(int(m.group(1)), {min(ncpu, 6), min(os.cpu_count(), 6)}, res.out)

    # -- modes -----------------------------------------------------------------

    def test_modes_and_umask(self):
        t = self.path('t')
        modes = {'m644.py': 0o644, 'm600.py': 0o600, 'm444.py': 0o444, 'm755.py': 0o755,
                 'm604.py': 0o604, 'm620.py': 0o620, 'm4755.py': 0o4755, 'm000.py': 0o000}
        support.write_tree(t, {n: 'X = 1\n' for n in modes})
        for n, m in modes.items():
            os.chmod(os.path.join(t, n), m)

        def check(umask):
            for n, m in modes.items():
                pyc = os.path.join(t, '__pycache__', self.py.pyc_name(n[:-3]))
                got = stat.S_IMODE(os.stat(pyc).st_mode)
                want = (m | 0o200) & 0o666 & ~umask
                self.assertEqual(oct(got), oct(want), '%s (umask %o)' % (n, umask))

        res = self.pp(['t'], umask=0o022)
        self.assertRc(res, 0)
        check(0o022)
        self.assertEqual(oct(stat.S_IMODE(os.stat(os.path.join(t, '__pycache__')).st_mode)),
                         oct(0o755))
        support.write_tree(t, {'new/n.py': 'N = 1\n'})
        res = self.pp(['-f', 't'], umask=0o077)
        self.assertRc(res, 0)
        check(0o077)
        self.assertEqual(oct(stat.S_IMODE(os.stat(os.path.join(t, 'new', '__pycache__')).st_mode)),
                         oct(0o700))
        self.assertNoJunk(t)

    # -- pycache prefix and optimization -----------------------------------------

    def expected_locations(self, tree_arg, env, cwd):
        srcs = []
        for dirpath, dirnames, filenames in os.walk(os.path.join(cwd, tree_arg)):
            dirnames[:] = [d for d in dirnames if d != '__pycache__']
            for n in filenames:
                if n.endswith('.py'):
                    srcs.append(os.path.relpath(os.path.join(dirpath, n), cwd))
        return {os.path.normpath(os.path.join(cwd, p))
                for p in support.cache_from_source(self.py, srcs, env=env, cwd=cwd)}

    def test_pycache_prefix(self):
        self.make_pkg()
        prefix = self.path('prefix')
        env = support.base_env(PYTHONPYCACHEPREFIX=prefix)
        honoured = self.py.version >= (3, 8)
        # compileall itself caches the stdlib modules it imports under the
        # prefix too: look only at the tree's part of the prefix
        scan = os.path.join(prefix, self.path('t').lstrip(os.sep)) if honoured else self.path('t')
        rep = support.conformance(self.py, self.tmp, 't', env=env, scan_root=scan)
        self.assertConformant(rep)
        want = self.expected_locations('t', env, self.tmp)
        got = {os.path.join(scan, r) for r in rep.pp_pycs}
        self.assertEqual(got, want)
        if honoured:
            self.assertEqual(self.pkg_pycs(), set(), 'pycs written into the tree despite the prefix')
        compiled, errors = support.import_compiled(self.py, self.path('t'), PKG_MODULES, env=env)
        self.assertEqual((compiled, errors), ([], {}))
        res = self.pp(['t'], env=env)
        self.assertRc(res, 0)
        self.assertSummary(res, compiled=0, uptodate=len(PKG_FILES))

    def test_pycache_prefix_relative(self):
        if self.py.version < (3, 8):
            self.skipTest('sys.pycache_prefix is 3.8+')
        self.make_pkg()
        env = support.base_env(PYTHONPYCACHEPREFIX='relpfx')
        res = self.pp(['t'], env=env)
        self.assertRc(res, 0)
        want = self.expected_locations('t', env, self.tmp)
        got = {os.path.join(self.path('relpfx'), r) for r in support.pyc_files(self.path('relpfx'))}
        self.assertEqual(got & want, want)
        self.assertEqual(got - want, set(),
                         'prepyc wrote pycs other than the tree\'s into the pycache prefix '
                         '(e.g. the target\'s stdlib, imported by a process run without -B)')

    def test_pythonoptimize(self):
        files = {'o.py': '"""module doc"""\ndef f(x):\n    """f doc"""\n    assert x\n'
                         '    if __debug__:\n        return 1\n    return 2\n'}
        files.update(PKG_FILES)
        support.write_tree(self.path('t'), files)
        for level in (1, 2):
            env = support.base_env(PYTHONOPTIMIZE=level)
            rep = support.conformance(self.py, self.tmp, 't', env=env,
                                      ref_dir=self.path('ref%d' % level))
            self.assertConformant(rep)
            self.assertEqual(len(rep.pp_pycs), len(files))
            for rel in rep.pp_pycs:
                self.assertTrue(rel.endswith('.opt-%d.pyc' % level), rel)
            compiled, errors = support.import_compiled(self.py, self.path('t'), PKG_MODULES, env=env)
            self.assertEqual((compiled, errors), ([], {}), 'PYTHONOPTIMIZE=%d' % level)
            res = self.pp(['t'], env=env)
            self.assertSummary(res, compiled=0, uptodate=len(files))
            support.move_pycs(self.path('t'), self.path('done%d' % level))

    def test_facts_cache(self):
        """The target's facts are remembered, keyed by the interpreter and the
        PYTHON* environment; a changed environment or a damaged entry is a miss."""
        support.skip_if_pyodide(self, self.py, 'its interpreter is a wrapper script, '
                                'whose facts prepyc never caches')
        cache = os.path.join(self.tmp, 'cache')
        support.write_tree(self.path('t'), {'a.py': 'A = 1\n'})
        env = support.base_env(PREPYC_CACHE_DIR=cache, PREPYC_TRACE=1)
        res = self.pp(['t'], env=env)
        self.assertRc(res, 0)
        self.assertNotIn('from the cache', res.err)
        entries = os.listdir(os.path.join(cache, 'targets'))
        self.assertEqual(len(entries), 1, entries)
        res = self.pp(['-f', 't'], env=env)
        self.assertRc(res, 0)
        self.assertIn('from the cache', res.err)
        self.assertSummary(res, compiled=1)
        # another PYTHONOPTIMIZE is another target: opt-1 pycs, not the cached level 0
        env1 = dict(env, PYTHONOPTIMIZE='1')
        res = self.pp(['t'], env=env1)
        self.assertRc(res, 0)
        self.assertNotIn('from the cache', res.err)
        self.assertEqual(sorted(support.pyc_files(self.path('t'))),
                         ['__pycache__/a.%s.opt-1.pyc' % self.py.cache_tag,
                          '__pycache__/a.%s.pyc' % self.py.cache_tag])
        # a damaged entry is ignored and replaced
        for name in os.listdir(os.path.join(cache, 'targets')):
            with open(os.path.join(cache, 'targets', name), 'r+b') as f:
                f.truncate(20)
        res = self.pp(['-f', 't'], env=env)
        self.assertRc(res, 0)
        self.assertNotIn('from the cache', res.err)
        self.assertSummary(res, compiled=1)
        res = self.pp(['-f', 't'], env=env)
        self.assertIn('from the cache', res.err)
        # an unwritable cache directory only costs time
        bad = dict(env, PREPYC_CACHE_DIR='/proc/prepyc-cache')
        res = self.pp(['-f', 't'], env=bad)
        self.assertRc(res, 0)
        self.assertSummary(res, compiled=1)

    # -- tricky sources ---------------------------------------------------------

    def test_tricky_sources_match_compileall(self):
        bom = b'\xef\xbb\xbf'
        files = {
            'bom.py': bom + 'x = "caf\u00e9"\n'.encode(),
            'bom_cookie.py': bom + b'# -*- coding: utf-8 -*-\nx = 1\n',
            'latin1.py': b'# -*- coding: latin-1 -*-\nx = "caf\xe9"\n',
            'crlf.py': b'x = 1\r\ny = """a\r\nb"""\r\n',
            'cr.py': b'x = 1\ry = 2\r',
            'nonl.py': b'x = 1',
            'empty.py': b'',
            'comment.py': b'# only a comment\n',
            'formfeed.py': b'\x0cx = 1\n\x0c\ndef f():\n    return 1\n',
            'tabs.py': b'if 1:\n\tx = 1\n',
            'ident.py': 'caf\u00e9 = 1\n\u00e9t\u00e9 = caf\u00e9\n'.encode(),
            'floats.py': (b'a = 1e999 - 1e999\nb = -0.0\nc = (0.0, -0.0, 1e999j, -0j)\n'
                          b'd = {1.5, 2.5}\nt = (1, True, 1.0)\n'
                          b'def f(x):\n    return x in {1e999 - 1e999, 0.5}\n'),
            'strings.py': ('s = %r\nb = %r\nu = "\\u20ac\\U0001f600\\ud800"\n'
                           % ('x' * 5000, bytes(range(256)))).encode(),
            'manyconsts.py': ('T = (' + ', '.join(str(i * 7) + '.5' for i in range(600)) + ')\n'
                              + ''.join('v%d = %d\n' % (i, i) for i in range(600))).encode(),
            'bigfunc.py': ('def f(x):\n' + ''.join('    if x == %d: return "%d"\n' % (i, i)
                                                   for i in range(3000))).encode(),
            'fstring.py': b'x = 1\ny = f"{x!r:>10} {x + 1}"\n',
            'async.py': b'async def f(g):\n    async for x in g:\n        await x\n',
            'future.py': b'from __future__ import annotations\ndef f(x: int) -> str: ...\n',
            'walrus.py': b'if (n := 10) > 5:\n    pass\n',
            'match.py': b'match 1:\n    case 1:\n        pass\n',
            'warn.py': b'x = "\\d"\nif x is 1:\n    pass\n',
            'nested.py': b'x = ' + b'[' * 150 + b']' * 150 + b'\n',
            'deepexpr.py': b'x = ' + b'-' * 5000 + b'1\n',
            # failures
            'nullbyte.py': b'x = 1\x00\n',
            'badutf8.py': b'x = "\xff"\n',
            'badcookie.py': b'# coding: no-such-codec\nx = 1\n',
            'bom_mismatch.py': bom + b'# coding: latin-1\nx = 1\n',
            'indent.py': b'if 1:\nx = 1\n',
            'eof.py': b'x = (1,\n',
            'badname.py': b'x = 1\ndel f()\n',
        }
        support.write_tree(self.path('t'), files)
        rep = support.conformance(self.py, self.tmp, 't')
        self.assertConformant(rep)
        self.assertTrue({'t/nullbyte.py', 't/badcookie.py', 't/eof.py'} <= rep.pp_failed,
                        rep.pp_failed)

    def test_large_sources_and_warning_flood(self):
        files = {'big%d.py' % i: 'S = %r\nB = %r\n' % ('x' * 2000000 + str(i), bytes(range(256)) * 4000)
                 for i in range(4)}
        files['flood.py'] = 'x = 1\n' + 'if x is 1:\n    pass\n' * 5000
        files['small.py'] = 'X = 1\n'
        support.write_tree(self.path('t'), files)
        rep = support.conformance(self.py, self.tmp, 't')
        self.assertConformant(rep)
        res = self.pp(['-f', '-j', '1', 't'], timeout=180)
        self.assertRc(res, 0)
        self.assertSummary(res, compiled=len(files), failed=0)
        res = self.pp(['-qq', '-f', 't'], timeout=180)
        self.assertRc(res, 0)
        self.assertEqual((res.out, res.err), ('', ''), '-qq must print nothing, warnings included')

    # -- parallelism and worker environment ----------------------------------------

    def test_jobs_give_identical_results(self):
        files = dict(PKG_FILES)
        for i in range(12):
            files['gen/g%02d.py' % i] = ''.join('def f%d(x):\n    return x * %d + %r\n' % (j, j, 's%d' % j)
                                                for j in range(20 + i))
        files['gen/bad.py'] = 'def (:\n'
        support.write_tree(self.path('t'), files)
        results = {}
        for jobs in (['-j', '1'], ['-j', '2'], ['--jobs', '7']):
            res = self.pp(jobs + ['t'])
            self.assertRc(res, 1, ' '.join(jobs))
            self.assertEqual(support.prepyc_failures(res.err), {'t/gen/bad.py'})
            key = ' '.join(jobs)
            results[key] = support.move_pycs(self.path('t'), self.path('out', key))
            self.assertEqual(len(results[key]), len(files) - 1)
        keys = sorted(results)
        for k in keys[1:]:
            self.assertEqual(results[k], results[keys[0]], k)
            cmp = support.compare_pycs(self.py, [(self.path('out', keys[0], r), self.path('out', k, r))
                                                 for r in sorted(results[k])])
            bad = [(r, c) for r, c in zip(sorted(results[k]), cmp) if c[0] == 'mismatch']
            self.assertEqual(bad, [], '%s vs %s' % (keys[0], k))

    def make_wrapper(self, log):
        wrapper = self.path('wrapped-python')
        with open(wrapper, 'w') as f:
            f.write('#!/bin/sh\necho "$$ $*" >> %s\nexec %s "$@"\n'
                    % (support._shquote(log), support._shquote(self.py.path)))
        os.chmod(wrapper, 0o755)
        return wrapper

    def test_no_more_workers_than_files(self):
        # one file to compile: -j 7 must not start more interpreters than -j 1
        support.write_tree(self.path('t'), {'a.py': 'A = 1\n'})
        counts = {}
        for jobs in ('1', '7'):
            log = self.path('log-%s' % jobs)
            open(log, 'w').close()
            res = support.run_prepyc(['--python', self.make_wrapper(log), '-f', '-j', jobs, 't'],
                                     cwd=self.tmp)
            self.assertRc(res, 0)
            self.assertSummary(res, compiled=1)
            with open(log) as f:
                counts[jobs] = len(f.read().splitlines())
            m = re.search(r'(\d+) workers?\b', res.out)
            if m:
                self.assertLessEqual(int(m.group(1)), 1, res.out)
        if counts['1'] == 0:
            self.skipTest('interpreter starts not observable through a wrapper script')
        self.assertLessEqual(counts['7'], counts['1'],
                             'with -j 7 and 1 file more interpreters were started than with -j 1: %r'
                             % counts)

    def test_worker_environment_is_scrubbed(self):
        files = {'w.py': 'x = "\\d"\nif x is 1:\n    pass\ns = {"a", "b", "c", "d"}\n'}
        files.update(PKG_FILES)
        support.write_tree(self.path('t'), files)
        evil = self.path('evil')
        support.write_tree(evil, {'sitecustomize.py': SABOTAGE})
        home = self.path('home')
        usite = support.user_site(self.py, home)
        if usite:
            support.write_tree(usite, {'usercustomize.py': SABOTAGE})
        dirty = support.base_env(PYTHONPATH=evil, HOME=home, PYTHONWARNINGS='error',
                                 PYTHONDONTWRITEBYTECODE='1', PYTHONNOUSERSITE=None)
        # compileall under a clean environment is the reference; prepyc gets the dirty one
        rep = support.conformance(self.py, self.tmp, 't', env=support.base_env(),
                                  prepyc_env=dirty)
        # (the interpreter probe may legitimately run under the caller's
        # environment; a worker that did would fail every file)
        self.assertConformant(rep)

    def test_hash_seed(self):
        src = 'def f(x):\n    return x in {%s}\n' % ', '.join(
            repr('s%d' % i) for i in range(12))
        support.write_tree(self.path('t'), {'h.py': src})
        pyc = self.path('t', '__pycache__', self.py.pyc_name('h'))
        ref = {}
        for seed in ('0', '1'):
            ca = support.run_compileall(self.py, 't', cwd=self.tmp,
                                        env=support.base_env(PYTHONHASHSEED=seed))
            self.assertRc(ca, 0)
            with open(pyc, 'rb') as f:
                ref[seed] = f.read()
            os.unlink(pyc)
        if ref['0'] == ref['1']:
            self.skipTest('pyc bytes do not depend on the hash seed on %s' % self.py.version_str)
        # the interpreter's own bytes: the canonical form keeps a frozenset's order
        res = self.pp(['--no-canonical', 't'])
        self.assertRc(res, 0)
        with open(pyc, 'rb') as f:
            self.assertEqual(f.read(), ref['0'], 'default must be PYTHONHASHSEED=0')
        res = self.pp(['--no-canonical', '-f', 't'], env=support.base_env(PYTHONHASHSEED='1'))
        self.assertRc(res, 0)
        with open(pyc, 'rb') as f:
            self.assertEqual(f.read(), ref['1'], 'the caller\'s PYTHONHASHSEED must be kept')


def _generate():
    made = []
    for cand in support.candidates():
        name = 'TestCompile_' + cand.ident
        cls = type(name, (InterpreterTests,), {
            'candidate': cand, '__module__': __name__,
            '__doc__': 'prepyc with %s (%s)' % (cand.label, cand.path)})
        globals()[name] = cls
        made.append(cls)
    return made


_GENERATED = _generate()


def load_tests(loader, standard_tests, pattern):
    suite = unittest.TestSuite()
    for cls in _GENERATED + [EnvironmentErrorTests]:
        suite.addTests(loader.loadTestsFromTestCase(cls))
    return suite


# ---------------------------------------------------------------------------
# Interpreter-independent CLI checks
# ---------------------------------------------------------------------------

class EnvironmentErrorTests(CompileTestBase):

    @classmethod
    def setUpClass(cls):
        cls.interps = support.interpreters()

    def any_python(self):
        if not self.interps:
            self.skipTest('no Python 3 interpreter found')
        return self.interps[0]

    def tree(self):
        support.write_tree(self.path('t'), {'a.py': 'A = 1\n'})
        return 't'

    def assertEnvError(self, res, *needles):
        self.assertRc(res, 2)
        self.assertTrue(res.err.strip(), 'no message on stderr\n%s' % res)
        for n in needles:
            self.assertRegex(res.err, n)
        self.assertEqual(support.pyc_files(self.path('t')), set(), 'files were written')

    def test_missing_paths_are_failures_in_the_summary(self):
        """A PATH that does not exist and an -i entry that does not are
        failures in the summary, not only messages."""
        py = self.any_python()
        t = self.tree()
        with open(self.path('list'), 'w') as f:
            f.write('no/such.py\n')
        res = support.run_prepyc(['--python', py.path, '--no-cache', t, 'missing', '-i', 'list'],
                                 cwd=self.tmp)
        self.assertRc(res, 1)
        self.assertSummary(res, compiled=1, failed=2)
        self.assertIn("cannot compile 'missing'", res.err)
        self.assertIn("cannot compile 'no/such.py'", res.err)

    def test_exclude_long_option(self):
        """compile takes --exclude REGEX, as check does (-x is its short form)."""
        py = self.any_python()
        support.write_tree(self.path('t'), {'a.py': 'A = 1\n', 'skip_me.py': 'S = 1\n'})
        for opt in (['--exclude', 'skip_'], ['--exclude=skip_'], ['-x', 'skip_']):
            shutil.rmtree(self.path('t', '__pycache__'), True)
            res = support.run_prepyc(['--python', py.path, '--no-cache'] + opt + ['t'],
                                     cwd=self.tmp)
            self.assertRc(res, 0)
            self.assertEqual(support.pyc_files(self.path('t')),
                             {os.path.join('__pycache__', py.pyc_name('a'))}, opt)

    def test_compileall_help_ends_with_prepyc_options(self):
        """prepyc compileall -h: the target's own help, then prepyc's options."""
        py = self.any_python()
        res = support.run_prepyc(['compileall', '--python', py.path, '-h'], cwd=self.tmp)
        self.assertRc(res, 0)
        real = support.run([py.path, '-m', 'compileall', '-h'], cwd=self.tmp)
        self.assertTrue(res.out.startswith(real.out), res.out)
        tail = res.out[len(real.out):]
        for opt in ('--python PATH', '--no-canonical', '--cache-dir DIR', '--no-cache',
                    '--timeout SECONDS'):
            self.assertIn(opt, tail)

    def test_summary_time_includes_the_interpreter_start(self):
        """The summary's time is the whole run's, the target's start included."""
        py = self.any_python()
        t = self.tree()
        slow = self.path('slow-python')
        with open(slow, 'w') as f:
            f.write('#!/bin/sh\nsleep 1\nexec %s "$@"\n' % py.path)
        os.chmod(slow, 0o755)
        res = support.run_prepyc(['--python', slow, '--no-cache', t], cwd=self.tmp,
                                 env=support.base_env(PREPYC_CACHE_DIR=self.path('cache')))
        self.assertRc(res, 0)
        seconds = float(re.search(r' in ([0-9.]+)s$', res.out.strip()).group(1))
        self.assertGreaterEqual(seconds, 1.0, res.out)

    def test_several_targets_in_one_run(self):
        """--python twice: every file compiled for both, side by side, and
        both interpreters import the tree without compiling anything."""
        by_tag = {}
        for interp in self.interps:
            by_tag.setdefault(interp.cache_tag, interp)
        pair = list(by_tag.values())[:3]
        if len(pair) < 2:
            self.skipTest('needs two interpreters with different cache tags')
        files = {'pkg/__init__.py': 'X = 1\n', 'pkg/mod.py': 'def f():\n    return 2\n',
                 'top.py': 'import pkg.mod\n'}
        support.write_tree(self.path('t'), files)
        args = []
        for interp in pair:
            args += ['--python', interp.path]
        res = support.run_prepyc(args + ['t'], cwd=self.tmp)
        self.assertRc(res, 0)
        self.assertEqual(len([l for l in res.out.splitlines() if 'compiled' in l]), len(pair),
                         res.out)
        pycs = support.pyc_files(self.path('t'))
        for interp in pair:
            mine = {p for p in pycs if '.%s.' % interp.cache_tag in p}
            self.assertEqual(len(mine), len(files), (interp, sorted(pycs)))
            compiled, errors = support.import_compiled(interp, self.path('t'),
                                                       ['pkg', 'pkg.mod', 'top'])
            self.assertEqual((compiled, errors), ([], {}), interp)
        # and a second run finds everything fresh for both
        res = support.run_prepyc(args + ['t'], cwd=self.tmp)
        self.assertRc(res, 0)
        self.assertEqual(res.out.count('0 compiled'), len(pair), res.out)

    def test_nonexistent_python(self):
        res = support.run_prepyc(['--python', '/nonexistent/python3', self.tree()], cwd=self.tmp)
        self.assertEnvError(res, re.escape('/nonexistent/python3'))

    def test_python2_target(self):
        p2 = support.python2_path()
        if not p2:
            self.skipTest('no Python 2.7 interpreter')
        res = support.run_prepyc(['--python', p2, self.tree()], cwd=self.tmp)
        self.assertEnvError(res, r'(?i)python\s*2')

    def test_bin_true_is_not_python(self):
        res = support.run_prepyc(['--python', '/bin/true', self.tree()], cwd=self.tmp)
        self.assertEnvError(res)

    def test_script_that_is_not_python(self):
        fake = self.path('fakepython')
        with open(fake, 'w') as f:
            f.write('#!/bin/sh\necho "Python 3.11.0"\necho hello\n')
        os.chmod(fake, 0o755)
        res = support.run_prepyc(['--python', fake, self.tree()], cwd=self.tmp)
        self.assertEnvError(res)

    def test_not_executable_and_directory(self):
        plain = self.path('plainfile')
        with open(plain, 'w') as f:
            f.write('print(1)\n')
        for target in (plain, self.tmp):
            res = support.run_prepyc(['--python', target, self.tree()], cwd=self.tmp)
            self.assertEnvError(res)

    def test_interpreter_without_cache_tag(self):
        py = self.any_python()
        wrap_py = self.path('nocache.py')
        with open(wrap_py, 'w') as f:
            f.write(NOCACHE_WRAPPER)
        wrapper = self.path('nocache-python')
        with open(wrapper, 'w') as f:
            f.write('#!/bin/sh\nexec %s -S -s %s "$@"\n' % (support._shquote(py.path),
                                                            support._shquote(wrap_py)))
        os.chmod(wrapper, 0o755)
        sanity = support.run([wrapper, '-S', '-s', '-c', 'import sys; print(sys.implementation.cache_tag)'])
        self.assertEqual(sanity.out.strip(), 'None', sanity)
        res = support.run_prepyc(['--python', wrapper, self.tree()], cwd=self.tmp)
        self.assertEnvError(res, r'(?i)cache')

    def test_unknown_option(self):
        res = support.run_prepyc(['--bogus-option', self.tree()], cwd=self.tmp)
        self.assertEnvError(res, 'bogus-option')

    def test_no_path_prints_usage(self):
        for args in ([], ['compile'], ['-f']):
            res = support.run_prepyc(args, cwd=self.tmp)
            self.assertRc(res, 2, repr(args))
            self.assertRegex(res.err, r'(?i)usage', repr(args))

    def test_bad_option_values(self):
        py = self.any_python()
        t = self.tree()
        for args in (['-j', 'abc', t], ['--jobs', '', t], ['-j'], ['--python']):
            res = support.run_prepyc(['--python', py.path] + args if args[0] != '--python' else args,
                                     cwd=self.tmp)
            self.assertEnvError(res)

    def test_compile_subcommand_same_as_bare(self):
        py = self.any_python()
        t = self.tree()
        res = support.run_prepyc(['compile', '--python', py.path, t], cwd=self.tmp)
        self.assertRc(res, 0)
        self.assertSummary(res, compiled=1)
        res = support.run_prepyc(['--python', py.path, t], cwd=self.tmp)
        self.assertRc(res, 0)
        self.assertSummary(res, compiled=0, uptodate=1)


    def test_interrupt_leaves_no_temp_files_or_workers(self):
        py = self.any_python()
        body = 'def f(x):\n' + ''.join('    if x == %d: return "%d"\n' % (i, i) for i in range(2500))
        # each source its own: identical ones would share one cache entry (relocated)
        support.write_tree(self.path('t'), {'big/m%03d.py' % i: body + 'M = %d\n' % i
                                            for i in range(120)})
        cache = self.path('t', 'big', '__pycache__')
        # SIGTERM to prepyc alone (kill); SIGINT to the whole group (Ctrl-C)
        for sig, want, group in ((signal.SIGTERM, 143, False), (signal.SIGINT, 130, True)):
            # the first pyc written is the sign prepyc is compiling: none is left from before
            shutil.rmtree(cache, ignore_errors=True)
            proc = subprocess.Popen([support.PREPYC, '--python', py.path, '-f', '-j', '2', 't'],
                                    cwd=self.tmp, env=support.base_env(), stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, start_new_session=True)
            try:
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and proc.poll() is None:
                    if os.path.isdir(cache) and any(n.endswith('.pyc') for n in os.listdir(cache)):
                        break
                    time.sleep(0.01)
                if proc.poll() is not None:
                    self.skipTest('prepyc finished before it could be interrupted')
                time.sleep(0.2)
                if group:
                    os.killpg(proc.pid, sig)
                else:
                    proc.send_signal(sig)
                out, err = proc.communicate(timeout=30)
            finally:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            self.assertEqual(proc.returncode, want, '%s: stderr %r' % (sig, err[-2000:]))
            deadline = time.monotonic() + 5
            while support.session_processes(proc.pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            left = support.session_processes(proc.pid)
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            self.assertEqual(left, [], '%s: processes left behind' % sig)
            self.assertNoJunk(self.path('t'))
            pycs = sorted(os.path.join(cache, n) for n in os.listdir(cache))
            self.assertTrue(pycs)
            # every pyc that exists is complete: the target loads each one
            support.pyc_info(py, pycs)
            self.assertLess(len(pycs), 120 if sig == signal.SIGTERM else 121)

    def path_python3(self):
        p = shutil.which('python3', path=support.base_env().get('PATH'))
        if not p:
            return None
        info, _ = support.probe(p)
        return info['cache_tag'] if info else None

    def test_default_from_virtual_env(self):
        default_tag = self.path_python3()
        others = [i for i in self.interps if i.cache_tag != default_tag]
        if not others:
            self.skipTest('need an interpreter whose cache tag differs from python3 on PATH')
        py = others[0]
        venv = self.path('venv')
        os.makedirs(os.path.join(venv, 'bin'))
        os.symlink(py.path, os.path.join(venv, 'bin', 'python'))
        t = self.tree()
        res = support.run_prepyc([t], cwd=self.tmp, env=support.base_env(VIRTUAL_ENV=venv))
        self.assertRc(res, 0)
        self.assertEqual(support.pyc_files(self.path('t')), {'__pycache__/' + py.pyc_name('a')})

    def test_default_python3_on_path(self):
        default_tag = self.path_python3()
        others = [i for i in self.interps if i.cache_tag != default_tag]
        if not others:
            self.skipTest('need an interpreter whose cache tag differs from python3 on PATH')
        py = others[-1]
        fakebin = self.path('fakebin')
        os.makedirs(fakebin)
        os.symlink(py.path, os.path.join(fakebin, 'python3'))
        env = support.base_env()
        env['PATH'] = fakebin + os.pathsep + env.get('PATH', '')
        t = self.tree()
        res = support.run_prepyc([t], cwd=self.tmp, env=env)
        self.assertRc(res, 0)
        self.assertEqual(support.pyc_files(self.path('t')), {'__pycache__/' + py.pyc_name('a')})


if __name__ == '__main__':
    unittest.main()
