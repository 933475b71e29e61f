"""End-to-end tests of the walk log (src/engine/walklog.h).

A walk takes a directory's names from the walk log, instead of listing it,
when the directory's stat data are what the log recorded.  These tests make
the log trusted (PREPYC_TEST_RACY_NS=0 instead of waiting two seconds), show
it is used (PREPYC_TRACE), then change the tree behind prepyc's back -- a
source added, removed, renamed, a directory added, removed, replaced by a
symlink, a pyc added to a __pycache__ -- and assert that `compile`,
`compileall` and `check` see exactly what they see without a log
(--no-build-log); and that a damaged log is ignored.
"""

import glob
import os
import re
import shutil
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402

_REPLAYED = re.compile(r"walk log '[^']*': (\d+) of (\d+) directories not listed again")


class WalkLogTests(support.InterpreterCase):
    tmp_prefix = 'prepyc-walklog-'

    def setUp(self):
        super().setUp()
        self.skip_if_pyodide('slow to start; the walk log does not depend on the target')
        self.cache = os.path.join(self.tmp, 'cache')
        self.env = support.base_env(PREPYC_CACHE_DIR=self.cache, PREPYC_TEST_RACY_NS=0,
                                    PREPYC_TRACE=1)
        self.tree = os.path.join(self.tmp, 'tree')
        support.write_tree(self.tree, {
            'top.py': 'T = 1\n',
            'data.txt': 'not python\n',
            'pkg/__init__.py': 'X = 1\n',
            'pkg/a.py': 'A = "a"\n',
            'pkg/sub/__init__.py': '',
            'pkg/sub/b.py': 'B = 2\n',
            'pkg/sub/deep/c.py': 'C = 3\n',
        })

    # -- helpers ----------------------------------------------------------

    def run_pp(self, args, log=True):
        args = list(args) + ([] if log else ['--no-build-log'])
        r = support.run_prepyc(args, env=self.env)
        time.sleep(0.05)  # the next change falls in a later timestamp tick
        return r

    def compile(self, log=True, *extra):
        return self.run_pp(['compile', '--no-cache', '--python', self.py.path] + list(extra) +
                           [self.tree], log)

    def compileall(self, log=True):
        return self.run_pp(['compileall', '--python', self.py.path, '--no-cache', '-f',
                            self.tree], log)

    def check(self, log=True):
        return self.run_pp(['check', '--python', self.py.path, self.tree], log)

    def replayed(self, r):
        m = _REPLAYED.search(r.err)
        return (int(m.group(1)), int(m.group(2))) if m else None

    def trusted(self, run):
        """Run three times: the third takes every directory from the log."""
        run()
        run()
        r = run()
        n = self.replayed(r)
        self.assertIsNotNone(n, r.describe())
        self.assertEqual(n[0], n[1], r.describe())
        self.assertGreater(n[0], 0)
        return r

    def same_as_without_log(self, run, clean=lambda out: out):
        with_log = run(True)
        without = run(False)
        self.assertEqual(with_log.rc, without.rc, with_log.describe())
        self.assertEqual(clean(with_log.out), clean(without.out),
                         with_log.describe() + '\n' + without.describe())
        return with_log

    def change_tree(self):
        """Every kind of change a listing can see, each in a directory the log holds."""
        support.write_tree(self.tree, {'pkg/new.py': 'N = 1\n', 'pkg/sub/deep/d2/e.py': 'E = 1\n'})
        os.remove(os.path.join(self.tree, 'top.py'))
        os.rename(os.path.join(self.tree, 'pkg', 'a.py'), os.path.join(self.tree, 'pkg', 'a2.py'))
        shutil.rmtree(os.path.join(self.tree, 'pkg', 'sub', 'deep'))
        os.mkdir(os.path.join(self.tree, 'elsewhere'))
        support.write_tree(self.tree, {'elsewhere/linked.py': 'L = 1\n'})
        os.symlink(os.path.join(self.tree, 'elsewhere'), os.path.join(self.tree, 'pkg', 'sub', 'deep'))

    # -- tests ------------------------------------------------------------

    def test_noop_takes_every_directory_from_the_log(self):
        self.trusted(self.compile)
        r = self.compile()
        self.assertEqual(support.parse_summary(r.out)['compiled'], 0, r.describe())
        self.assertEqual(self.replayed(r), (4, 4), r.describe())

    def test_pycs_are_looked_for_wherever_they_can_be(self):
        # The plan does not open the pycs of a directory the walk saw without a
        # __pycache__ (walk.h: no_pycache).  A symlinked __pycache__ and a pycache
        # prefix are still looked in; a __pycache__ taken away is seen gone.
        shared = os.path.join(self.tmp, 'shared-pycache')
        os.mkdir(shared)
        os.symlink(shared, os.path.join(self.tree, 'pkg', '__pycache__'))
        self.trusted(self.compile)
        self.assertTrue(os.path.exists(os.path.join(shared, self.py.pyc_name('a'))))
        r = self.compile()
        self.assertEqual(support.parse_summary(r.out)['compiled'], 0, r.describe())
        self.assertEqual(self.replayed(r), (4, 4), r.describe())
        shutil.move(os.path.join(self.tree, 'pkg', 'sub', '__pycache__'),
                    os.path.join(self.tmp, 'moved'))
        r = self.compile()  # pkg/sub changed: listed again, its two pycs written again
        self.assertEqual(support.parse_summary(r.out)['compiled'], 2, r.describe())
        r = self.trusted(self.compile)
        self.assertEqual(support.parse_summary(r.out)['compiled'], 0, r.describe())
        if self.py.version >= (3, 8):
            prefix = os.path.join(self.tmp, 'pfx')
            self.env = dict(self.env, PYTHONPYCACHEPREFIX=prefix)
            self.trusted(self.compile)
            r = self.compile()
            self.assertEqual(support.parse_summary(r.out)['compiled'], 0, r.describe())
            self.assertTrue(glob.glob(os.path.join(prefix, '**', self.py.pyc_name('c')),
                                      recursive=True))

    def test_compile_sees_every_change(self):
        self.trusted(self.compile)
        self.change_tree()
        r = self.compile()
        s = support.parse_summary(r.out)
        # pkg/new.py, pkg/a2.py, elsewhere/linked.py (sub/deep is a symlink now: not entered)
        self.assertEqual(s['compiled'], 3, r.describe())
        self.assertEqual(r.rc, 0, r.describe())
        self.assertTrue(os.path.exists(os.path.join(
            self.tree, 'pkg', '__pycache__', self.py.pyc_name('new'))))
        r = self.compile()
        self.assertEqual(support.parse_summary(r.out)['compiled'], 0, r.describe())
        self.assertIsNotNone(self.replayed(r), r.describe())

    def test_compileall_lists_what_it_lists_without_a_log(self):
        self.trusted(self.compileall)
        self.change_tree()
        self.same_as_without_log(lambda log: self.compileall(log))
        self.same_as_without_log(lambda log: self.compileall(log))

    def test_check_sees_pycs_added_and_removed(self):
        self.compile()
        self.trusted(self.check)
        cache = os.path.join(self.tree, 'pkg', '__pycache__')
        # an orphan appears, a pyc disappears
        shutil.copy(os.path.join(cache, self.py.pyc_name('a')),
                    os.path.join(cache, self.py.pyc_name('gone')))
        os.remove(os.path.join(self.tree, 'pkg', 'sub', '__pycache__', self.py.pyc_name('b')))
        r = self.same_as_without_log(lambda log: self.check(log))
        self.assertIn('missing', r.out)
        self.assertIn('orphan', r.out + r.err)

    def test_damaged_log_is_ignored(self):
        self.trusted(self.compile)
        logs = glob.glob(os.path.join(self.cache, 'buildlog', 'walk-*'))
        self.assertEqual(len(logs), 1)
        with open(logs[0], 'r+b') as f:
            f.seek(60)
            b = f.read(1)
            f.seek(60)
            f.write(bytes([b[0] ^ 0x01]))
        support.write_tree(self.tree, {'pkg/new.py': 'N = 1\n'})
        r = self.compile()
        self.assertIn('ignored', r.err, r.describe())
        self.assertEqual(support.parse_summary(r.out)['compiled'], 1, r.describe())

    def test_no_build_log_writes_no_walk_log(self):
        self.compile(False)
        self.assertEqual(glob.glob(os.path.join(self.cache, 'buildlog', 'walk-*')), [])


_GENERATED = support.per_interpreter(WalkLogTests, 'TestWalkLog_', 'the walk log with %s (%s)',
                                     globals())


def load_tests(loader, tests, pattern):
    return support.load_generated(loader, _GENERATED)


if __name__ == '__main__':
    unittest.main()
