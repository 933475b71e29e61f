"""End-to-end tests of the build log (src/engine/buildlog.h).

A no-op ``prepyc compile`` and ``prepyc check`` decide freshness from the
stat data of sources and pycs when the build log vouches for them.  These
tests first make the log trusted (PREPYC_TEST_RACY_NS=0 instead of waiting
two seconds), show it is used (PREPYC_TRACE), then change sources and pycs
behind prepyc's back -- same size, mtime put back to the nanosecond,
replaced by another file, deleted -- and assert that both commands still
see it exactly as they do without a log; and that a truncated, corrupt,
foreign or unsafe log is ignored (the run reads headers, and is right).
"""

import glob
import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402

_FRESH = re.compile(r"build log '[^']*': (\d+) of (\d+) pycs found fresh by their stat data alone")


class BuildLogTests(support.InterpreterCase):
    tmp_prefix = 'prepyc-buildlog-'

    def setUp(self):
        super().setUp()
        self.skip_if_pyodide('slow to start; the build log does not depend on the target')
        self.cache = os.path.join(self.tmp, 'cache')
        self.env = support.base_env(PREPYC_CACHE_DIR=self.cache, PREPYC_TEST_RACY_NS=0,
                                    PREPYC_TRACE=1)
        self.tree = os.path.join(self.tmp, 'tree')
        files = {'pkg/__init__.py': 'X = 1\n', 'pkg/b.py': 'def f():\n    return "bbbb"\n'}
        for i in range(6):
            files['pkg/m%d.py' % i] = 'V = %d\nS = "%s"\n' % (i, 'x' * (10 + i))
        support.write_tree(self.tree, files)
        # old enough sources: their ctime is now, but the margin is 0 in these tests
        self.target = os.path.join(self.tree, 'pkg', 'b.py')
        self.pyc = os.path.join(self.tree, 'pkg', '__pycache__', self.py.pyc_name('b'))

    # -- helpers ----------------------------------------------------------

    def compile(self, *extra):
        r = support.run_prepyc(['compile', '--no-cache', '--python', self.py.path] +
                               list(extra) + [self.tree], env=self.env)
        self.assertIn(r.rc, (0, 1), r.describe())
        time.sleep(0.05)  # the next run starts in a later timestamp tick
        return r

    def check(self, *extra):
        r = support.run_prepyc(['check', '--python', self.py.path] + list(extra) + [self.tree],
                               env=self.env)
        time.sleep(0.05)
        return r

    def fresh_by_log(self, r):
        m = _FRESH.search(r.err)
        return (int(m.group(1)), int(m.group(2))) if m else None

    def logs(self):
        """The build logs (not the walk logs beside them: test_walklog.py)."""
        return [p for p in glob.glob(os.path.join(self.cache, 'buildlog', '*'))
                if not os.path.basename(p).startswith('walk-')]

    def trusted(self, *extra):
        """Compile cold, then no-op twice: the second run trusts every entry."""
        self.compile(*extra)
        self.compile(*extra)
        r = self.compile(*extra)
        n = self.fresh_by_log(r)
        self.assertIsNotNone(n, r.describe())
        self.assertEqual(n[0], n[1], r.describe())
        self.assertEqual(n[0], 8)
        self.assertEqual(len(self.logs()), 1)

    def trusted_check(self):
        self.trusted()
        self.check()  # parses every pyc, records that their bodies are ok
        r = self.check()
        self.assertEqual(r.rc, 0, r.describe())
        self.assertEqual(self.fresh_by_log(r), (8, 8), r.describe())

    def compiled(self, r):
        return support.parse_summary(r.out)

    def assert_recompiled(self, r, n=1):
        s = self.compiled(r)
        self.assertEqual(s['compiled'], n, r.describe())

    def check_status(self, r):
        line = [l for l in r.out.splitlines() if l.startswith(self.target)]
        return line[0] if line else ''

    def keep_times(self, path, fn):
        """Run fn() and put path's atime and mtime back, to the nanosecond."""
        st = os.stat(path)
        fn()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        self.assertEqual(os.stat(path).st_mtime_ns, st.st_mtime_ns)

    def rewrite(self, path, fn):
        with open(path, 'rb') as f:
            data = bytearray(f.read())
        new = fn(data)
        self.assertEqual(len(new), len(data))
        with open(path, 'r+b') as f:
            f.write(new)

    # -- the log is used -------------------------------------------------------

    def test_noop_uses_the_log(self):
        self.trusted()
        r = self.compile('--no-build-log')
        self.assertIsNone(self.fresh_by_log(r))
        self.assertEqual(self.compiled(r)['compiled'], 0, r.describe())

    def test_logs_in_use_are_kept_and_unused_ones_removed(self):
        """A run that reads a log refreshes its mtime; a run that makes a new
        log removes the logs of builds that did not run for 30 days."""
        self.trusted()
        log = self.logs()[0]
        month = time.time() - 31 * 24 * 3600
        os.utime(log, (month, month))
        stale = os.path.join(self.cache, 'buildlog', '%032x' % 7)
        foreign = os.path.join(self.cache, 'buildlog', 'notes.txt')
        for p in (stale, foreign):
            with open(p, 'wb') as f:
                f.write(b'old')
            os.utime(p, (month, month))
        self.compile()  # reads the log: in use
        self.assertGreater(os.path.getmtime(log), time.time() - 3600)
        other = os.path.join(self.tmp, 'other')
        support.write_tree(other, {'o.py': 'O = 1\n'})
        r = support.run_prepyc(['compile', '--no-cache', '--python', self.py.path, other],
                               env=self.env)
        self.assertEqual(r.rc, 0, r.describe())
        self.assertFalse(os.path.exists(stale), 'a log unused for a month was kept')
        self.assertTrue(os.path.exists(log), 'the log in use was removed')
        self.assertTrue(os.path.exists(foreign), 'a file prepyc did not make was removed')

    def test_pycs_written_by_the_run_are_not_trusted_by_it(self):
        self.compile()
        r = self.compile()  # reads headers: the pycs were written by the run before
        self.assertEqual(self.fresh_by_log(r), (0, 8), r.describe())

    # -- behind prepyc's back: compile ------------------------------------------

    def test_source_edited(self):
        self.trusted()
        with open(self.target, 'a') as f:
            f.write('# more\n')
        self.assert_recompiled(self.compile())

    def test_source_same_size_same_mtime_hash_pyc(self):
        if self.py.version < (3, 7):
            self.skipTest('no hash-based pycs before 3.7')
        self.trusted('--invalidation-mode', 'checked-hash')
        self.keep_times(self.target, lambda: self.rewrite(
            self.target, lambda d: d.replace(b'bbbb', b'cccc')))
        self.assert_recompiled(self.compile('--invalidation-mode', 'checked-hash'))
        r = self.check('--invalidation-mode', 'checked-hash')
        self.assertEqual(r.rc, 0, r.describe())

    def test_pyc_header_changed_same_size_same_mtime(self):
        self.trusted()
        # the source size the header records: another value, same length
        at = 12 if self.py.version >= (3, 7) else 8
        self.keep_times(self.pyc, lambda: self.rewrite(
            self.pyc, lambda d: d[:at] + bytes([d[at] ^ 1]) + d[at + 1:]))
        self.assert_recompiled(self.compile())

    def test_pyc_replaced_by_another_file(self):
        self.trusted()
        other = os.path.join(self.tree, 'pkg', '__pycache__', self.py.pyc_name('m0'))
        st = os.stat(self.pyc)
        os.rename(other, self.pyc)  # a valid pyc, of another source
        os.utime(self.pyc, ns=(st.st_atime_ns, st.st_mtime_ns))
        r = self.compile()
        self.assert_recompiled(r, 2)  # b's pyc, and m0's, now missing

    def test_pyc_deleted(self):
        self.trusted()
        os.unlink(self.pyc)
        self.assert_recompiled(self.compile())
        self.assertTrue(os.path.exists(self.pyc))

    # -- behind prepyc's back: check -------------------------------------------

    def test_check_uses_the_log(self):
        self.trusted_check()
        r = self.check('--no-build-log')
        self.assertEqual(r.rc, 0, r.describe())
        self.assertIsNone(self.fresh_by_log(r))

    def test_check_body_corrupted_same_size_same_mtime(self):
        self.trusted_check()
        self.keep_times(self.pyc, lambda: self.rewrite(
            self.pyc, lambda d: d[:16] + b'\xff' * (len(d) - 16)))
        r = self.check()
        self.assertEqual(r.rc, 1, r.describe())
        self.assertIn('corrupt', self.check_status(r), r.describe())

    def test_check_source_edited_same_size_same_mtime(self):
        if self.py.version < (3, 7):
            self.skipTest('no hash-based pycs before 3.7')
        self.trusted('--invalidation-mode', 'checked-hash')
        self.check()
        self.assertEqual(self.fresh_by_log(self.check()), (8, 8))
        self.keep_times(self.target, lambda: self.rewrite(
            self.target, lambda d: d.replace(b'bbbb', b'cccc')))
        r = self.check()
        self.assertEqual(r.rc, 1, r.describe())
        self.assertIn('stale-hash', self.check_status(r), r.describe())

    def test_check_source_touched(self):
        self.trusted_check()
        st = os.stat(self.target)
        os.utime(self.target, ns=(st.st_atime_ns, st.st_mtime_ns + 10 ** 9))
        r = self.check()
        self.assertEqual(r.rc, 1, r.describe())
        self.assertIn('stale-mtime', self.check_status(r), r.describe())

    def test_check_pyc_deleted_and_replaced(self):
        self.trusted_check()
        os.unlink(self.pyc)
        r = self.check()
        self.assertIn('missing', self.check_status(r), r.describe())
        other = os.path.join(self.tree, 'pkg', '__pycache__', self.py.pyc_name('m1'))
        os.link(other, self.pyc)  # another source's pyc, by a hard link
        r = self.check()
        self.assertEqual(r.rc, 1, r.describe())
        self.assertRegex(self.check_status(r), 'stale-(mtime|size)', r.describe())

    # -- a bad log is ignored -------------------------------------------------

    def bad_log_is_ignored(self, spoil):
        self.trusted_check()
        log = self.logs()[0]
        spoil(log)
        # and a change behind prepyc's back is still caught
        self.keep_times(self.pyc, lambda: self.rewrite(
            self.pyc, lambda d: d[:16] + b'\xff' * (len(d) - 16)))
        r = self.check()
        self.assertEqual(r.rc, 1, r.describe())
        self.assertIn('corrupt', self.check_status(r), r.describe())
        n = self.fresh_by_log(r)
        self.assertTrue(n is None or n[0] == 0, r.describe())
        r = self.compile()
        self.assertEqual(self.compiled(r)['compiled'], 0, r.describe())

    def test_truncated_log(self):
        def spoil(log):
            with open(log, 'r+b') as f:
                f.truncate(os.path.getsize(log) // 2)
        self.bad_log_is_ignored(spoil)

    def test_corrupt_log(self):
        def spoil(log):
            with open(log, 'r+b') as f:
                f.seek(100)
                b = f.read(1)
                f.seek(100)
                f.write(bytes([b[0] ^ 0x40]))
        self.bad_log_is_ignored(spoil)

    def test_foreign_log(self):
        def spoil(log):
            with open(log, 'wb') as f:
                f.write(b'# ninja log v5\n' + b'0\t1\t2\tout\tdeadbeef\n' * 50)
        self.bad_log_is_ignored(spoil)

    def test_log_writable_by_others(self):
        self.bad_log_is_ignored(lambda log: os.chmod(log, 0o666))

    def test_log_symlink(self):
        def spoil(log):
            os.rename(log, log + '.real')
            os.symlink(log + '.real', log)
        self.bad_log_is_ignored(spoil)

    def test_log_of_a_stale_build_never_says_fresh(self):
        """A valid log whose entries describe other files: every entry misses."""
        self.trusted_check()
        log = self.logs()[0]
        with open(log, 'rb') as f:
            saved = f.read()
        # rebuild everything: new inodes, the log's entries describe the old pycs
        r = self.compile('-f')
        self.assertEqual(self.compiled(r)['compiled'], 8)
        with open(log, 'wb') as f:
            f.write(saved)
        os.chmod(log, 0o600)
        self.keep_times(self.pyc, lambda: self.rewrite(
            self.pyc, lambda d: d[:16] + b'\xff' * (len(d) - 16)))
        r = self.check()
        self.assertIn('corrupt', self.check_status(r), r.describe())


_GENERATED = support.per_interpreter(BuildLogTests, 'TestBuildLog_', 'the build log with %s (%s)',
                                     globals())


def load_tests(loader, tests, pattern):
    return support.load_generated(loader, _GENERATED)


if __name__ == '__main__':
    unittest.main()
