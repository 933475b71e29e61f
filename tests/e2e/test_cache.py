"""End-to-end tests of the bytecode cache (src/cache.c, the cache phase of
src/engine.c), one generated class per interpreter (``TestCache_<label>``).

Each test gets its own cache directory (``--cache-dir``) and a small tree of
modules; "a new build" is the same tree with every source touched (new
mtimes, same bytes), which compileall recompiles in full and prepyc serves
from the cache.  What is checked:

- a hit writes exactly the bytes a compile writes (header for the current
  source included), and a run where every file hits starts no worker;
- changing any part of the key misses: a source byte, the optimization
  level, the target interpreter; another dfile (-d) hits, relocated (the
  key leaves the dfile out, cachekey.h; test_relocate.py has the rest);
- warnings printed by a compile are printed again on a hit (compileall
  style: the same output as compileall);
- damaged entries (a flipped byte, truncated, empty, another entry's bytes)
  are ignored, removed and replaced, and the pycs are still right;
- two concurrent runs sharing one cache and one tree both succeed;
- a cache directory that cannot be written means one warning and a run
  that still compiles everything;
- --cache-max-size bounds the cache; ``prepyc cache stats|clear|prune``.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402

MODULES = {
    'app/__init__.py': 'VERSION = "1.0"\n',
    'app/core.py': 'import os\n\ndef f(x):\n    """doc"""\n    return {"a": x, "b": [1, 2.5, None]}\n'
                   'class C:\n    def m(self):\n        return frozenset({"x", "y", "z"})\n',
    'app/util.py': 'def g(*a, **k):\n    return sum(a) + len(k)\n' + ''.join(
        'def h%d(x):\n    return x * %d + %r\n' % (i, i, 's%d' % i) for i in range(40)),
    'app/sub/__init__.py': '',
    'app/sub/deep.py': 'X = %r\n' % (list(range(200)),),
    'top.py': 'from app import core\nprint(core.f(1))\n',
}
WARN_SOURCE = 'def f(x):\n    assert (x, "always true")\n    return x is 1\n'


def entries(cache):
    """The cache's entry files (relative paths)."""
    out = []
    root = os.path.join(cache, 'v1')
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            if not name.startswith('.'):
                out.append(os.path.relpath(os.path.join(dirpath, name), root))
    return sorted(out)


def read_all(tree):
    out = {}
    for rel in support.pyc_files(tree):
        with open(os.path.join(tree, rel), 'rb') as f:
            out[rel] = f.read()
    return out


def touch_all(tree, delta=10):
    """Give every source a new mtime, as a fresh checkout does."""
    for dirpath, dirnames, filenames in os.walk(tree):
        for name in filenames:
            if name.endswith('.py'):
                p = os.path.join(dirpath, name)
                st = os.stat(p)
                os.utime(p, (st.st_atime + delta, st.st_mtime + delta))


class CacheTests(support.InterpreterCase):
    tmp_prefix = 'prepyc-e2e-cache-'

    def setUp(self):
        super().setUp()
        self.cache = os.path.join(self.tmp, 'cache')
        self.tree = os.path.join(self.tmp, 't')
        support.write_tree(self.tree, MODULES)

    def pp(self, args, cache=None, env=None, cwd=None, **kw):
        cache = self.cache if cache is None else cache
        return support.run_prepyc(['--python', self.py.path, '--cache-dir', cache] + list(args),
                                  cwd=cwd or self.tmp, env=env or support.base_env(), **kw)

    def compile_ok(self, args=('t',), **kw):
        r = self.pp(list(args), **kw)
        self.assertEqual(r.rc, 0, str(r))
        return r

    def reference(self, args=('t',), env=None):
        """The pycs a run without the cache writes for the tree as it is now."""
        for rel in support.pyc_files(self.tree):
            os.unlink(os.path.join(self.tree, rel))
        r = support.run_prepyc(['--python', self.py.path, '--no-cache'] + list(args),
                               cwd=self.tmp, env=env or support.base_env())
        self.assertEqual(r.rc, 0, str(r))
        return read_all(self.tree)

    def from_cache(self, r):
        s = support.parse_summary(r.out)
        self.assertIsNotNone(s, str(r))
        line = s['line']
        if 'from the cache' not in line:
            return 0
        return int(line.split(' from the cache')[0].rsplit(' ', 1)[1])

    def test_a_hit_writes_the_bytes_a_compile_writes(self):
        r = self.compile_ok()
        self.assertEqual(self.from_cache(r), 0)
        self.assertEqual(len(entries(self.cache)), len(MODULES))
        touch_all(self.tree)
        r = self.compile_ok()
        self.assertEqual(self.from_cache(r), len(MODULES), str(r))
        self.assertIn(' 0 workers', r.out, 'a run where everything hits starts no worker')
        got = read_all(self.tree)
        self.assertEqual(len(got), len(MODULES))
        self.assertEqual(got, self.reference())
        compiled, errors = support.import_compiled(self.py, self.tree, ['app.core', 'app.sub.deep'])
        self.assertEqual((compiled, errors), ([], {}))

    def test_unchanged_code_only_gets_a_new_header(self):
        # a touched source whose pyc holds the same code: the header is updated
        # in place (same inode); a pyc with another link is replaced instead,
        # leaving the other link alone
        self.compile_ok()
        core = os.path.join(self.tree, 'app', '__pycache__', self.py.pyc_name('core'))
        util = os.path.join(self.tree, 'app', '__pycache__', self.py.pyc_name('util'))
        other = os.path.join(self.tmp, 'util-link.pyc')
        os.link(util, other)
        with open(other, 'rb') as f:
            linked = f.read()
        ino = os.stat(core).st_ino
        touch_all(self.tree)
        r = self.compile_ok()
        self.assertEqual(self.from_cache(r), len(MODULES), str(r))
        self.assertEqual(os.stat(core).st_ino, ino)
        self.assertNotEqual(os.stat(util).st_ino, os.stat(other).st_ino)
        with open(other, 'rb') as f:
            self.assertEqual(f.read(), linked)
        self.assertEqual(read_all(self.tree), self.reference())

    def test_hash_based_pycs_from_the_cache(self):
        if self.py.version < (3, 7):
            self.skipTest('no hash-based pycs before 3.7')
        args = ['--invalidation-mode', 'checked-hash', 't']
        self.compile_ok(args)
        with open(os.path.join(self.tree, 'top.py'), 'a') as f:
            f.write('# changed\n')
        touch_all(self.tree)
        r = self.compile_ok(['-f'] + args)
        self.assertEqual(self.from_cache(r), len(MODULES) - 1, str(r))
        self.assertEqual(read_all(self.tree), self.reference(args))

    def test_every_part_of_the_key_counts(self):
        self.compile_ok()
        n = len(entries(self.cache))
        # one source byte
        p = os.path.join(self.tree, 'app', 'util.py')
        with open(p) as f:
            text = f.read()
        with open(p, 'w') as f:
            f.write(text.replace('x * 3 +', 'x * 4 +'))
        touch_all(self.tree)
        r = self.compile_ok()
        self.assertEqual(self.from_cache(r), len(MODULES) - 1, str(r))
        self.assertEqual(len(entries(self.cache)), n + 1)
        self.assertEqual(read_all(self.tree), self.reference())
        # the dfile is not part of the key: relocated, the bytes a compile there writes
        r = self.compile_ok(['-f', '-d', '/srv/app', 't'])
        self.assertEqual(self.from_cache(r), len(MODULES), str(r))
        self.assertEqual(len(entries(self.cache)), n + 1)
        self.assertEqual(read_all(self.tree), self.reference(['-d', '/srv/app', 't']))
        # the optimization level
        if self.py.version >= (3, 9):
            r = self.compile_ok(['-f', '-o', '2', 't'])
            self.assertEqual(self.from_cache(r), 0, str(r))
        r = self.compile_ok(['-f', 't'], env=support.base_env(PYTHONOPTIMIZE='1'))
        self.assertEqual(self.from_cache(r), 0, str(r))
        # another interpreter
        other = [c.interp for c in support.candidates()
                 if c.interp is not None and c.interp.path != self.py.path]
        if other:
            r = support.run_prepyc(['--python', other[0].path, '--cache-dir', self.cache, '-f', 't'],
                                   cwd=self.tmp, env=support.base_env())
            self.assertEqual(r.rc, 0, str(r))
            self.assertEqual(self.from_cache(r), 0, str(r))
        # and the same run again hits
        r = self.compile_ok(['-f', '-d', '/srv/app', 't'])
        self.assertEqual(self.from_cache(r), len(MODULES), str(r))

    def test_no_cache_neither_reads_nor_writes(self):
        r = self.pp(['--no-cache', 't'])
        self.assertEqual(r.rc, 0, str(r))
        self.assertEqual(entries(self.cache), [])
        self.compile_ok(['-f', 't'])
        r = self.pp(['--no-cache', '-f', 't'])
        self.assertEqual(self.from_cache(r), 0, str(r))

    def test_warnings_are_printed_on_a_hit(self):
        support.write_tree(self.tree, {'w.py': WARN_SOURCE})
        r1 = self.compile_ok()
        self.assertIn('SyntaxWarning', r1.err)
        touch_all(self.tree)
        r2 = self.compile_ok()
        self.assertEqual(self.from_cache(r2), len(MODULES) + 1, str(r2))
        self.assertEqual(r2.err, r1.err)
        # compileall style: exactly compileall's output, from the cache
        touch_all(self.tree)
        ca = support.run_compileall(self.py, 't', cwd=self.tmp, env=support.base_env(),
                                    args=('-f',))
        touch_all(self.tree)
        pc = support.run_prepyc(['compileall', '--python', self.py.path, '--cache-dir', self.cache,
                                 '-f', 't'], cwd=self.tmp, env=support.base_env())
        self.assertEqual((pc.rc, pc.out, pc.err), (ca.rc, ca.out, ca.err))

    def test_damaged_entries_are_replaced(self):
        self.compile_ok()
        want = None
        names = entries(self.cache)
        self.assertEqual(len(names), len(MODULES))
        paths = [os.path.join(self.cache, 'v1', n) for n in names]
        with open(paths[1], 'rb') as f:
            other = f.read()
        # a flipped byte in the body, truncated, empty, another entry's bytes, junk
        with open(paths[0], 'r+b') as f:
            f.seek(-1, 2)
            last = f.read(1)
            f.seek(-1, 2)
            f.write(bytes([last[0] ^ 0xff]))
        with open(paths[2], 'r+b') as f:
            f.truncate(os.path.getsize(paths[2]) // 2)
        open(paths[3], 'wb').close()
        with open(paths[4], 'wb') as f:
            f.write(other)
        with open(paths[5], 'wb') as f:
            f.write(b'\x7fELF not an entry at all' * 10)
        touch_all(self.tree)
        r = self.compile_ok()
        self.assertEqual(self.from_cache(r), 1, str(r))
        want = self.reference()
        touch_all(self.tree, 0)
        self.assertEqual(len(entries(self.cache)), len(MODULES))
        # the damaged entries were replaced by good ones: everything hits now
        for rel in support.pyc_files(self.tree):
            os.unlink(os.path.join(self.tree, rel))
        r = self.compile_ok()
        self.assertEqual(self.from_cache(r), len(MODULES), str(r))
        self.assertEqual(read_all(self.tree), want)

    def test_concurrent_runs_share_one_cache(self):
        big = {'m%03d.py' % i: MODULES['app/util.py'] + 'Y = %d\n' % i for i in range(150)}
        support.write_tree(self.tree, big)
        procs = [subprocess.Popen([support.PREPYC, '--python', self.py.path, '--cache-dir',
                                   self.cache, '-f', 't'], cwd=self.tmp, env=support.base_env(),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for _ in range(3)]
        for p in procs:
            out, err = p.communicate(timeout=300)
            self.assertEqual(p.returncode, 0, err)
        # (each run packs what it stored past its first 64: keys may be held twice)
        self.assertEqual(len(set(support.cache_keys(self.cache))), len(MODULES) + len(big))
        self.assertEqual([n for n in os.listdir(os.path.join(self.cache, 'v1', entries(self.cache)[0][:2]))
                          if n.startswith('.prepyc-')], [])
        r = support.run_prepyc(['check', '--python', self.py.path, 't'], cwd=self.tmp,
                               env=support.base_env())
        self.assertEqual(r.rc, 0, str(r))
        got = read_all(self.tree)
        self.assertEqual(got, self.reference())

    def test_unwritable_cache_dir_still_compiles(self):
        # a path under a regular file: ENOTDIR, whoever runs the test (even root)
        blocker = os.path.join(self.tmp, 'file')
        open(blocker, 'w').close()
        r = self.pp(['t'], cache=os.path.join(blocker, 'cache'))
        self.assertEqual(r.rc, 0, str(r))
        self.assertEqual(r.err.count('warning'), 1, r.err)
        self.assertIn(os.path.join(blocker, 'cache'), r.err)
        self.assertEqual(len(read_all(self.tree)), len(MODULES))

    def test_read_only_cache_still_hits(self):
        if os.geteuid() != 0:
            self.skipTest('needs root to mount a read-only bind mount')
        self.compile_ok()
        if subprocess.call(['mount', '--bind', '-o', 'ro', self.cache, self.cache],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) != 0:
            self.skipTest('cannot bind-mount here')
        try:
            subprocess.call(['mount', '-o', 'remount,bind,ro', self.cache],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if os.access(self.cache, os.W_OK) and not self._really_read_only():
                self.skipTest('the bind mount is not read-only')
            with open(os.path.join(self.tree, 'top.py'), 'a') as f:
                f.write('# changed\n')
            touch_all(self.tree)
            r = self.compile_ok()
            self.assertEqual(self.from_cache(r), len(MODULES) - 1, str(r))
            self.assertLessEqual(r.err.count('warning'), 1, r.err)
        finally:
            subprocess.call(['umount', self.cache])
        self.assertEqual(read_all(self.tree), self.reference())

    def _really_read_only(self):
        try:
            fd = os.open(os.path.join(self.cache, 'probe'), os.O_CREAT | os.O_WRONLY)
        except OSError:
            return True
        os.close(fd)
        os.unlink(os.path.join(self.cache, 'probe'))
        return False

    def test_size_bound(self):
        big = {'m%03d.py' % i: MODULES['app/util.py'] + 'Y = %d\n' % i for i in range(120)}
        support.write_tree(self.tree, big)
        r = self.compile_ok(['--cache-max-size', '64K', 't'])
        total = sum(os.path.getsize(os.path.join(self.cache, 'v1', n))
                    for n in entries(self.cache))
        self.assertLessEqual(total, 64 * 1024)
        self.assertGreater(len(entries(self.cache)), 0)
        r = self.pp(['--cache-max-size', 'lots', 't'])
        self.assertEqual(r.rc, 2, str(r))
        self.assertIn('--cache-max-size', r.err)

    def test_cache_commands(self):
        n = len(MODULES)
        self.compile_ok()
        r = support.run_prepyc(['cache', 'stats', '--cache-dir', self.cache], env=support.base_env())
        self.assertEqual(r.rc, 0, str(r))
        self.assertIn(self.cache, r.out)
        self.assertIn('entries:         %d, ' % n, r.out)
        self.assertIn("max size:        1.0 GiB (1073741824 bytes), the last run's\n", r.out)
        self.assertRegex(r.out, r'(?m)^last 1 run:\n  \d{4}-\d\d-\d\d \d\d:\d\d:\d\d  \S.*'
                         r'  hits 0  misses %d  stored %d$' % (n, n))
        self.assertIn('hit rate: 0.0%% over these runs (0 hits, %d misses)\n' % n, r.out)
        logs = sorted(os.listdir(os.path.join(self.cache, 'buildlog')))
        self.assertTrue(logs, 'the run kept no build log')
        self.assertIn('build logs:      %d, ' % len(logs), r.out)
        # prune: a damaged entry, then the least recently used down to the bound
        with open(os.path.join(self.cache, 'v1', entries(self.cache)[0]), 'r+b') as f:
            f.seek(70)
            f.write(b'\xff\x00')
        r = support.run_prepyc(['cache', 'prune', '--cache-dir', self.cache, '--cache-max-size', '1'],
                               env=support.base_env())
        self.assertEqual(r.rc, 0, str(r))
        self.assertIn('cache prune: removed 1 damaged entry and %d least recently used' % (n - 1),
                      r.out)
        # (the build logs are in use: kept)
        self.assertIn('0 entries left (0 bytes), max 1 byte; 0 unused build logs removed, '
                      '%d left\n' % len(logs), r.out)
        self.assertEqual(entries(self.cache), [])
        self.compile_ok(['-f', 't'])
        self.assertEqual(len(entries(self.cache)), len(MODULES))
        keep = os.path.join(self.cache, 'mine.txt')
        with open(keep, 'w') as f:
            f.write('not prepyc\'s')
        r = support.run_prepyc(['cache', 'clear', '--cache-dir', self.cache], env=support.base_env())
        self.assertEqual(r.rc, 0, str(r))
        self.assertIn('cache clear: removed %d entries' % n, r.out)
        self.assertIn(' and %d build log' % len(logs), r.out)
        self.assertEqual(entries(self.cache), [])
        self.assertEqual(os.listdir(os.path.join(self.cache, 'buildlog')), [])
        self.assertTrue(os.path.exists(keep), 'clear removed a file prepyc did not make')
        self.assertFalse(os.path.exists(os.path.join(self.cache, 'stats')))
        r = support.run_prepyc(['cache', 'stats', '--cache-dir', os.path.join(self.tmp, 'none')],
                               env=support.base_env())
        self.assertEqual(r.rc, 0, str(r))
        self.assertIn('no cache at ', r.out)

    def test_cache_command_usage(self):
        for args in ([], ['frobnicate'], ['stats', 'extra'], ['stats', '--cache-max-size', '1'],
                     ['prune', '--cache-dir', self.cache, '--cache-max-size', 'lots']):
            r = support.run_prepyc(['cache'] + args, env=support.base_env())
            self.assertEqual(r.rc, 2, str(r))
        r = support.run_prepyc(['cache', '--help'], env=support.base_env())
        self.assertEqual(r.rc, 0, str(r))
        self.assertIn('usage: prepyc cache stats', r.out)
        r = support.run_prepyc(['cache', 'prune', '-h'], env=support.base_env())
        self.assertEqual(r.rc, 0, str(r))

    def test_default_location(self):
        env = support.base_env(PREPYC_CACHE_DIR=None, XDG_CACHE_HOME=os.path.join(self.tmp, 'xdg'),
                               HOME=os.path.join(self.tmp, 'home'))
        r = support.run_prepyc(['--python', self.py.path, 't'], cwd=self.tmp, env=env)
        self.assertEqual(r.rc, 0, str(r))
        self.assertEqual(len(entries(os.path.join(self.tmp, 'xdg', 'prepyc'))), len(MODULES))
        env = support.base_env(PREPYC_CACHE_DIR=None, XDG_CACHE_HOME=None,
                               HOME=os.path.join(self.tmp, 'home'))
        r = support.run_prepyc(['--python', self.py.path, '-f', 't'], cwd=self.tmp, env=env)
        self.assertEqual(r.rc, 0, str(r))
        self.assertEqual(len(entries(os.path.join(self.tmp, 'home', '.cache', 'prepyc'))),
                         len(MODULES))
        env = support.base_env(PREPYC_CACHE_DIR=os.path.join(self.tmp, 'env'))
        r = support.run_prepyc(['--python', self.py.path, '-f', 't'], cwd=self.tmp, env=env)
        self.assertEqual(len(entries(os.path.join(self.tmp, 'env'))), len(MODULES))


_GENERATED = support.per_interpreter(CacheTests, 'TestCache_', 'the bytecode cache with %s (%s)',
                                     globals())


def load_tests(loader, standard_tests, pattern):
    return support.load_generated(loader, _GENERATED)


if __name__ == '__main__':
    unittest.main()
