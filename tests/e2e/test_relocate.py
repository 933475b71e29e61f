"""End-to-end tests of relocatable cache entries (src/cache/cachekey.h,
src/format/relocate.h, the cache phase of src/engine/cachephase.c), one
generated class per interpreter (``TestRelocate_<label>``).

The key of a cache entry leaves the co_filename (dfile) out, so a tree
compiled at one path serves an identical copy at another: a second
virtualenv, a CI workspace, a Docker WORKDIR.  What is checked:

- a copy at another path (other names, other depth; absolute paths; -d and
  -p, which change the dfile) comes whole from the cache, no worker
  started, and its pycs are byte for byte those of a cold compile there;
- a moved and edited tree hits for the unchanged files only;
- files whose constants hold their own path (relative, absolute, or built by
  concatenation) are still exactly right: such an entry stays path-specific
  or is not relocated (it is compiled);
- a compile's warnings are printed again with the new path, with or without
  the source line exactly as compileall at the new path prints them;
- --no-canonical entries are path-specific.
"""

import os
import shutil
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402

MODULES = {
    'pkg/__init__.py': 'VERSION = "1.0"\nHERE = __file__\n',
    'pkg/core.py': (
        'import os\n'
        'NAME = "core.py"\n'
        'TAIL = "pkg/core.py"\n'
        'def outer(x):\n'
        '    def inner(y):\n'
        '        return [i * y for i in range(x)], {k: v for k, v in zip("ab", "cd")}\n'
        '    f = lambda z: (z, {s for s in "xyz"}, (w for w in [z]))\n'
        '    return inner, f, f"{x!r:>10} {os.sep}"\n'
        'class C:\n'
        '    """doc"""\n'
        '    class D:\n'
        '        def m(self):\n'
        '            return __file__, __name__, frozenset({"x", "y"})\n'
        '    async def am(self):\n'
        '        return [a async for a in self]\n'),
    'pkg/sub/__init__.py': '',
    'pkg/sub/deep.py': 'X = %r\nY = 1.5, -0.0, 2j, b"bytes", None, ...\n' % (list(range(50)),),
    'top.py': 'from pkg import core\nprint(core.outer(1))\n',
}
# a warning at the file (3.8+: "is" with a literal; 3.12+: an invalid escape)
WARN_SOURCE = 'def f(x):\n    y = "\\d"\n    return x is 1\n'


def read_all(tree):
    out = {}
    for rel in support.pyc_files(tree):
        with open(os.path.join(tree, rel), 'rb') as f:
            out[rel] = f.read()
    return out


def copy_sources(src, dest):
    """A copy of the sources only (no __pycache__), as another checkout."""
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))


def last_stats(cache):
    """The counters of the last run recorded in the cache's stats file."""
    with open(os.path.join(cache, 'stats')) as f:
        line = f.read().splitlines()[-1]
    return dict(kv.split('=', 1) for kv in line.split() if '=' in kv)


class RelocateTests(support.InterpreterCase):
    tmp_prefix = 'prepyc-e2e-relocate-'

    def setUp(self):
        super().setUp()
        self.cache = os.path.join(self.tmp, 'cache')
        self.a = os.path.join('a', 'app')
        support.write_tree(os.path.join(self.tmp, self.a), MODULES)

    def pp(self, args, style=(), cache=None, env=None):
        cache = self.cache if cache is None else cache
        return support.run_prepyc(list(style) + ['--python', self.py.path, '--cache-dir', cache] +
                                  list(args), cwd=self.tmp, env=env or support.base_env())

    def compile_ok(self, args, **kw):
        r = self.pp(args, **kw)
        self.assertEqual(r.rc, 0, str(r))
        return r

    def reference(self, tree, args):
        """The pycs a run without the cache writes for `tree` (relative to tmp)."""
        root = os.path.join(self.tmp, tree)
        for rel in support.pyc_files(root):
            os.unlink(os.path.join(root, rel))
        r = support.run_prepyc(['--python', self.py.path, '--no-cache'] + list(args),
                               cwd=self.tmp, env=support.base_env())
        self.assertEqual(r.rc, 0, str(r))
        return read_all(root)

    def from_cache(self, r):
        s = support.parse_summary(r.out)
        self.assertIsNotNone(s, str(r))
        if 'from the cache' not in s['line']:
            return 0
        return int(s['line'].split(' from the cache')[0].rsplit(' ', 1)[1])

    def copy(self, dest):
        copy_sources(os.path.join(self.tmp, self.a), os.path.join(self.tmp, dest))
        return dest

    def assert_all_hit(self, r, n):
        self.assertEqual(self.from_cache(r), n, str(r))
        self.assertIn(' 0 workers', r.out, 'a run where everything hits starts no worker')

    def test_a_copy_elsewhere_comes_from_the_cache(self):
        r = self.compile_ok([self.a])
        self.assertEqual(self.from_cache(r), 0, str(r))
        n = len(MODULES)
        # another name and depth
        b = self.copy(os.path.join('x', 'y', 'z', 'venv2'))
        r = self.compile_ok([b])
        self.assert_all_hit(r, n)
        got = read_all(os.path.join(self.tmp, b))
        self.assertEqual(len(got), n)
        self.assertEqual(got, self.reference(b, [b]))
        # absolute paths (the dfile is absolute)
        c = self.copy('c')
        absc = os.path.join(self.tmp, c)
        r = self.compile_ok([absc])
        self.assert_all_hit(r, n)
        self.assertEqual(read_all(absc), self.reference(c, [absc]))
        # -d and -p change the dfile (-p: 3.9+)
        options = [['-d', '/srv/elsewhere']]
        if self.py.version >= (3, 9):
            options.append(['-p', '/opt/prefix'])
        for opts in options:
            r = self.compile_ok(['-f'] + opts + [b])
            self.assert_all_hit(r, n)
            self.assertEqual(read_all(os.path.join(self.tmp, b)), self.reference(b, opts + [b]))
        # and the tree as it was still hits, unchanged
        r = self.compile_ok(['-f', self.a])
        self.assert_all_hit(r, n)
        self.assertEqual(read_all(os.path.join(self.tmp, self.a)), self.reference(self.a, [self.a]))
        compiled, errors = support.import_compiled(self.py, os.path.join(self.tmp, b),
                                                   ['pkg.core', 'pkg.sub.deep'])
        self.assertEqual((compiled, errors), ([], {}))

    def test_a_moved_and_edited_tree_hits_for_the_unchanged_files(self):
        self.compile_ok([self.a])
        b = self.copy('moved')
        p = os.path.join(self.tmp, b, 'pkg', 'core.py')
        with open(p, 'a') as f:
            f.write('EXTRA = 1\n')
        support.write_tree(os.path.join(self.tmp, b), {'pkg/new.py': 'N = 2\n'})
        r = self.compile_ok([b])
        s = support.parse_summary(r.out)
        self.assertEqual(s['compiled'], len(MODULES) + 1, str(r))
        self.assertEqual(self.from_cache(r), len(MODULES) - 1, str(r))
        self.assertNotIn(' 0 workers', r.out)
        self.assertEqual(read_all(os.path.join(self.tmp, b)), self.reference(b, [b]))

    def test_constants_holding_the_own_path(self):
        absa = os.path.join(self.tmp, self.a)
        rel_own = os.path.join(self.a, 'own')
        abs_own = os.path.join(absa, 'own')
        own = {
            # the dfile itself, as compiled relatively and absolutely
            'own/rel.py': 'F = %r\nG = "x"\n' % os.path.join(rel_own, 'rel.py'),
            'own/abs.py': 'F = %r\n' % os.path.join(abs_own, 'abs.py'),
            # the dfile not spelled out: concatenated, escaped
            'own/cat.py': 'F = %r %r\n' % (rel_own + '/', 'cat.py'),
            'own/esc.py': "F = '%s'\n" % os.path.join(rel_own, 'esc.py').replace('/', '\\x2f'),
            'own/abscat.py': 'F = %r %r\n' % (abs_own + '/', 'abscat.py'),
        }
        support.write_tree(absa, own)
        n = len(MODULES) + len(own)
        # compiled at the copy: those whose constant equals their dfile at `a`
        cases = [(self.a, 'b', ['rel', 'abs', 'cat', 'esc']), (absa, 'b2', ['abs', 'abscat'])]
        for arg, b, compiled in cases:
            cache = os.path.join(self.tmp, 'cache-' + b)
            self.compile_ok(['-f', arg], cache=cache)
            self.copy(b)
            barg = b if arg == self.a else os.path.join(self.tmp, b)
            r = self.compile_ok([barg], cache=cache)
            self.assertEqual(self.from_cache(r), n - len(compiled), str(r))
            self.assertEqual(read_all(os.path.join(self.tmp, b)), self.reference(b, [barg]))
            # at their own path they hit, with the bytes a compile writes there
            r = self.compile_ok(['-f', arg], cache=cache)
            self.assert_all_hit(r, n)
            self.assertEqual(read_all(absa), self.reference(self.a, [arg]))

    def warnings_case(self, args, tree):
        """prepyc compileall from the cache vs python -m compileall, at `tree`."""
        ca = support.run_compileall(self.py, tree, cwd=self.tmp, env=support.base_env(),
                                    args=['-f'] + list(args))
        pc = self.pp(['-f'] + list(args) + [tree], style=['compileall'])
        self.assertEqual(last_stats(self.cache).get('misses'), '0', 'all from the cache')
        self.assertEqual((pc.rc, pc.out, pc.err), (ca.rc, ca.out, ca.err))
        return ca

    def test_warnings_are_printed_for_the_new_path(self):
        support.write_tree(os.path.join(self.tmp, self.a), {'pkg/w.py': WARN_SOURCE})
        r = self.compile_ok([self.a])
        warns = self.py.version >= (3, 8)
        self.assertEqual('SyntaxWarning' in r.err, warns, str(r))
        b = self.copy(os.path.join('venv', 'lib'))
        # concise style: the new path, the line shown (the file is there)
        r = self.compile_ok([b])
        self.assert_all_hit(r, len(MODULES) + 1)
        if warns:
            self.assertIn(os.path.join(b, 'pkg', 'w.py') + ':3: SyntaxWarning', r.err)
            self.assertIn('\n  return x is 1\n', r.err)
            self.assertNotIn(self.a, r.err)
        # compileall style, exactly compileall's output: the line shown...
        ca = self.warnings_case([], b)
        if warns:
            self.assertIn('  return x is 1\n', ca.err)
        # ...and not (a dfile that does not exist)
        ca = self.warnings_case(['-d', '/nonexistent/dir'], b)
        if warns:
            self.assertIn('/nonexistent/dir/pkg/w.py:3: SyntaxWarning', ca.err)
            self.assertNotIn('return x is 1', ca.err)
        # an absolute path
        c = self.copy('c')
        self.warnings_case([], os.path.join(self.tmp, c))

    def test_no_canonical_entries_are_path_specific(self):
        self.compile_ok(['--no-canonical', self.a])
        b = self.copy('b')
        r = self.compile_ok(['--no-canonical', b])
        self.assertEqual(self.from_cache(r), 0, str(r))
        # the same path hits
        r = self.compile_ok(['--no-canonical', '-f', b])
        self.assert_all_hit(r, len(MODULES))
        # and a canonical run shares nothing with them
        c = self.copy('c')
        r = self.compile_ok([c])
        self.assertEqual(self.from_cache(r), 0, str(r))


_GENERATED = support.per_interpreter(RelocateTests, 'TestRelocate_',
                                     'relocatable cache entries with %s (%s)', globals())


def load_tests(loader, standard_tests, pattern):
    return support.load_generated(loader, _GENERATED)


if __name__ == '__main__':
    unittest.main()
