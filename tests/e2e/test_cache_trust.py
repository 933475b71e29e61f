"""End-to-end tests of who may write the cache (src/base/trustdir.c, issue 18):
a cache directory someone else could have written is not read.

Every refusal is shown with a *planted* entry: a valid entry (right magic,
key and checksum) for the very source compiled, but carrying the code of
another source (``X = 'planted'`` where the source says ``X = 'real'``).
Each test first shows that a cache of ours serves the planted entry (the
pyc says 'planted'), then changes one thing -- the directory's owner or
modes, an entry's, a shard's, a directory above -- and checks that the pyc
says 'real', with one warning naming the directory and why, and exit
status 0.  The facts cache is shown the same way with a planted cache tag
(it would decide where pycs are written).  ``--cache-shared`` is run by two
users of one group (made-up uids and gids, set in the child: no system
accounts are created), and refuses what a third user outside the group
wrote.  Ownership cases need root (else skipped); the mode cases run as
anyone.  One interpreter (the first one a normal user can run): what is
tested is the core.
"""

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402

HEADER = 80
USER_A, USER_B, OUTSIDER, GROUP = 4711, 4712, 4713, 4710
IS_ROOT = os.geteuid() == 0


def entries(cache):
    out = []
    for dirpath, dirnames, filenames in os.walk(os.path.join(cache, 'v1')):
        out.extend(os.path.join(dirpath, n) for n in filenames if not n.startswith('.'))
    return sorted(out)


def read_bytes(path):
    with open(path, 'rb') as f:
        return f.read()


def key_of(entry_path):
    """The key an entry file is named after (DIR/v1/ab/cdef...)."""
    return bytes.fromhex(os.path.basename(os.path.dirname(entry_path)) +
                         os.path.basename(entry_path))


def forge(donor_path, key):
    """A valid entry for `key` holding the donor entry's code (store-disk.h's grammar)."""
    with open(donor_path, 'rb') as f:
        data = f.read()
    head = bytearray(data[:HEADER])
    head[16:48] = key
    body = data[HEADER:]
    head[64:80] = hashlib.blake2b(bytes(head[:64]) + body, digest_size=16).digest()
    return bytes(head) + body


def run_as(argv, uid, gid, groups, cwd, env, timeout=120):
    """Run argv as uid/gid with supplementary `groups` (when root)."""
    def drop():
        os.setgroups(groups)
        os.setgid(gid)
        os.setuid(uid)
    proc = subprocess.Popen([str(a) for a in argv], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, preexec_fn=drop if IS_ROOT else None)
    start = time.monotonic()
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
    return support.Result(argv, proc.returncode, out.decode('utf-8', 'backslashreplace'),
                          err.decode('utf-8', 'backslashreplace'), time.monotonic() - start)


def first_usable(other_users=False):
    """The first non-Pyodide interpreter; with `other_users`, one that uid
    OUTSIDER can run too (under a 0700 /root, the pyenv ones are not)."""
    for c in support.candidates():
        if c.interp is None or c.interp.pyodide:
            continue
        if not other_users or not IS_ROOT:
            return c
        try:
            r = run_as([c.path, '-S', '-c', 'pass'], OUTSIDER, OUTSIDER, [], '/',
                       support.base_env(), timeout=60)
        except OSError:  # under a 0700 /root: the exec itself is refused
            continue
        if r.rc == 0:
            return c
    return None


class TrustTests(support.InterpreterCase):
    tmp_prefix = 'prepyc-e2e-trust-'

    @classmethod
    def setUpClass(cls):
        cls.candidate = first_usable()
        if cls.candidate is None:
            raise unittest.SkipTest('no interpreter (Pyodide has no users to test with)')
        super().setUpClass()

    def setUp(self):
        super().setUp()
        os.chmod(self.tmp, 0o755)  # other users get to the trees and the copy of prepyc
        self.cache = os.path.join(self.tmp, 'cache')
        self.tree = os.path.join(self.tmp, 't')
        support.write_tree(self.tree, {'m.py': "X = 'real'\n"})
        self.prepyc = os.path.join(self.tmp, 'prepyc')
        shutil.copy2(support.PREPYC, self.prepyc)
        os.chmod(self.prepyc, 0o755)

    def pp(self, args, cache=None, env=None):
        cache = self.cache if cache is None else cache
        return support.run([self.prepyc, '--python', self.py.path, '--cache-dir', cache] +
                           list(args), cwd=self.tmp, env=env or support.base_env())

    def pyc_says(self, tree=None):
        pyc = os.path.join(tree or self.tree, '__pycache__', self.py.pyc_name('m'))
        with open(pyc, 'rb') as f:
            data = f.read()
        says = [w for w in ('planted', 'real') if w.encode() in data]
        self.assertEqual(len(says), 1, data)
        return says[0]

    def plant(self, cache=None):
        """Fill `cache` from the tree, then replace its entry by one carrying other code."""
        cache = cache or self.cache
        donor_cache = os.path.join(self.tmp, 'donor-cache')
        donor_tree = os.path.join(self.tmp, 'donor')
        support.write_tree(donor_tree, {'m.py': "X = 'planted'\n"})
        r = self.pp(['donor'], cache=donor_cache)
        self.assertEqual(r.rc, 0, str(r))
        r = self.pp(['-f', 't'], cache=cache)
        self.assertEqual(r.rc, 0, str(r))
        (donor,), (entry,) = entries(donor_cache), entries(cache)
        with open(entry, 'wb') as f:
            f.write(forge(donor, key_of(entry)))
        return entry

    def compile_with_plant(self, expect, warning=None, args=(), cache=None):
        r = self.pp(['-f'] + list(args) + ['t'], cache=cache)
        self.assertEqual(r.rc, 0, str(r))
        self.assertEqual(self.pyc_says(), expect, str(r))
        if warning is None:
            self.assertNotIn('warning', r.err, str(r))
        else:
            self.assertEqual(r.err.count('warning'), 1, str(r))
            self.assertIn(warning, r.err)
        return r

    # -- the bytecode cache -------------------------------------------------------

    def test_a_cache_of_ours_serves_the_planted_entry(self):
        """The control: the forged entry is valid, and caches of older prepyc
        (0755 directories, 0644 entries) are still used."""
        entry = self.plant()
        self.compile_with_plant('planted')
        for dirpath, dirnames, filenames in os.walk(self.cache):
            os.chmod(dirpath, 0o755)
            for n in filenames:
                os.chmod(os.path.join(dirpath, n), 0o644)
        self.compile_with_plant('planted')
        self.assertTrue(os.path.exists(entry))

    def test_new_caches_are_private(self):
        r = support.run([self.prepyc, '--python', self.py.path, '--cache-dir', self.cache, 't'],
                        cwd=self.tmp, env=support.base_env(), umask=0)
        self.assertEqual(r.rc, 0, str(r))
        for dirpath, dirnames, filenames in os.walk(self.cache):
            self.assertEqual(os.stat(dirpath).st_mode & 0o7777, 0o700, dirpath)
            for n in filenames:
                p = os.path.join(dirpath, n)
                self.assertEqual(os.stat(p).st_mode & 0o7777, 0o600, p)
        self.assertTrue(os.path.isdir(os.path.join(self.cache, 'v1')))

    def test_a_cache_anyone_can_write_is_not_read(self):
        entry = self.plant()
        os.chmod(self.cache, 0o777)
        self.compile_with_plant(
            'real', "prepyc: warning: not using the cache '%s': it can be written by anyone "
            "(mode 0777)\n" % self.cache)
        # not written either: the planted entry is as it was
        self.assertEqual(entries(self.cache), [entry])
        os.chmod(self.cache, 0o700)
        os.chmod(os.path.join(self.cache, 'v1'), 0o773)
        self.compile_with_plant(
            'real', "not using the cache '%s': '%s/v1' in it can be written by anyone "
            "(mode 0773)" % (self.cache, self.cache))
        # a shard that others can write
        os.chmod(os.path.join(self.cache, 'v1'), 0o700)
        os.chmod(os.path.dirname(entry), 0o777)
        self.compile_with_plant(
            'real', "not using the cache '%s': '%s' in it can be written by anyone (mode 0777)"
            % (self.cache, os.path.dirname(entry)))

    def test_an_entry_others_can_write_is_not_read(self):
        entry = self.plant()
        os.chmod(entry, 0o666)
        self.compile_with_plant(
            'real', "prepyc: warning: not using the cache entry '%s': it can be written by "
            "anyone (mode 0666)\n" % entry)
        # replaced by an entry of ours: the next run hits the real code without a word
        self.assertEqual(os.stat(entry).st_mode & 0o777, 0o600)
        r = self.compile_with_plant('real')
        self.assertIn('1 from the cache', r.out)

    def test_a_directory_above_that_anyone_can_write(self):
        above = os.path.join(self.tmp, 'open')
        os.mkdir(above)
        cache = os.path.join(above, 'cache')
        self.plant(cache=cache)
        os.chmod(above, 0o777)
        self.compile_with_plant(
            'real', "not using the cache '%s': '%s' above it can be written by anyone and is "
            "not sticky (mode 0777)" % (cache, above), cache=cache)
        # sticky, as /tmp: nobody else can rename our directory
        os.chmod(above, 0o1777)
        self.compile_with_plant('planted', cache=cache)
        # a cache under a directory anyone can write is not even created
        os.chmod(above, 0o777)
        r = self.pp(['-f', 't'], cache=os.path.join(above, 'new'))
        self.assertEqual(r.rc, 0, str(r))
        self.assertFalse(os.path.exists(os.path.join(above, 'new')))

    @unittest.skipUnless(IS_ROOT, 'needs root to give files to another user')
    def test_a_cache_of_another_user_is_not_read(self):
        """Even by root: a root build using a cache a user can write is the
        classic poisoning."""
        entry = self.plant()
        os.chown(self.cache, OUTSIDER, OUTSIDER)
        self.compile_with_plant(
            'real', "prepyc: warning: not using the cache '%s': it belongs to uid %d, not to "
            "you (uid 0); see --cache-shared\n" % (self.cache, OUTSIDER))
        os.chown(self.cache, 0, 0)
        os.chown(entry, OUTSIDER, OUTSIDER)
        self.compile_with_plant(
            'real', "not using the cache entry '%s': it belongs to uid %d" % (entry, OUTSIDER))
        entry = self.plant()
        os.chown(os.path.dirname(entry), OUTSIDER, OUTSIDER)
        self.compile_with_plant(
            'real', "not using the cache '%s': '%s' in it belongs to uid %d"
            % (self.cache, os.path.dirname(entry), OUTSIDER))

    @unittest.skipUnless(IS_ROOT, 'needs root to give files to another user')
    def test_cache_commands_on_a_cache_not_ours(self):
        entry = self.plant()
        os.chown(self.cache, OUTSIDER, OUTSIDER)
        for sub in ('clear', 'prune'):
            r = support.run([self.prepyc, 'cache', sub, '--cache-dir', self.cache])
            self.assertEqual(r.rc, 1, str(r))
            self.assertIn("prepyc: error: not using the cache '%s': it belongs to uid %d"
                          % (self.cache, OUTSIDER), r.err)
            self.assertTrue(os.path.exists(entry))
        r = support.run([self.prepyc, 'cache', 'stats', '--cache-dir', self.cache])
        self.assertEqual(r.rc, 0, str(r))
        self.assertIn("warning: the cache '%s' is not yours" % self.cache, r.err)
        self.assertIn('entries:         1,', r.out)

    # -- the facts cache ----------------------------------------------------------

    def test_a_planted_facts_entry_is_not_used(self):
        """A facts entry decides the cache tag, hence where pycs are written."""
        r = self.pp(['t'])
        self.assertEqual(r.rc, 0, str(r))
        targets = os.path.join(self.cache, 'targets')
        if not os.path.isdir(targets) or not os.listdir(targets):
            self.skipTest('the interpreter is a script: its facts are never cached')
        (name,) = os.listdir(targets)
        entry = os.path.join(targets, name)
        with open(entry, 'rb') as f:
            data = f.read()
        tag = self.py.cache_tag.encode()
        self.assertIn(b'\0cache_tag=' + tag + b'\0', data)
        planted_data = data.replace(b'\0cache_tag=' + tag + b'\0', b'\0cache_tag=planted-1\0')
        planted = os.path.join(self.tree, '__pycache__', 'm.planted-1.pyc')
        real = os.path.join(self.tree, '__pycache__', self.py.pyc_name('m'))

        def run(expect_planted, mode=0o600, owner=0, targets_mode=0o700):
            with open(entry, 'wb') as f:  # (a refused entry is replaced by the probe's)
                f.write(planted_data)
            os.chmod(entry, mode)
            os.chmod(targets, targets_mode)
            if IS_ROOT:
                os.chown(entry, owner, owner)
            for p in (planted, real):
                if os.path.exists(p):
                    os.unlink(p)
            r = self.pp(['--no-cache', 't'])
            self.assertEqual(r.rc, 0, str(r))
            self.assertEqual((os.path.exists(planted), os.path.exists(real)),
                             (expect_planted, not expect_planted), str(r))
            return r
        run(True)  # the control: a facts cache of ours is used
        run(False, mode=0o646)
        run(False, targets_mode=0o777)
        run(True, mode=0o644, targets_mode=0o755)  # older prepyc's modes
        if IS_ROOT:
            run(False, owner=OUTSIDER)
            os.chown(self.cache, OUTSIDER, OUTSIDER)
            run(False)
            # refused, the facts are not stored there either
            self.assertEqual(read_bytes(entry), planted_data)

    # -- a group's cache ----------------------------------------------------------

    @unittest.skipUnless(IS_ROOT, 'needs root to run as two users of one group')
    def test_cache_shared_by_two_users_of_one_group(self):
        cand = first_usable(other_users=True)
        if cand is None:
            self.skipTest('no interpreter that uid %d can run' % OUTSIDER)
        self.py = cand.interp
        env = support.base_env(HOME='/nonexistent')
        os.makedirs(self.cache)
        os.chown(self.cache, USER_A, GROUP)
        os.chmod(self.cache, 0o2770)
        trees = {}
        for uid in (USER_A, USER_B, OUTSIDER):
            tree = os.path.join(self.tmp, 't%d' % uid)
            support.write_tree(tree, {'m.py': "X = 'real'\n",
                                      'n.py': 'def f():\n    return 42\n'})
            for dirpath, dirnames, filenames in os.walk(tree):
                os.chown(dirpath, uid, uid)
                for n in filenames:
                    os.chown(os.path.join(dirpath, n), uid, uid)
            trees[uid] = tree

        def run(uid, *args, groups=(GROUP,), env=env):
            return run_as([self.prepyc, '--python', self.py.path, '--cache-dir', self.cache] +
                          list(args) + ['-f', os.path.basename(trees[uid])],
                          uid, uid, list(groups), self.tmp, env)

        r = run(USER_A, '--cache-shared')
        self.assertEqual(r.rc, 0, str(r))
        self.assertNotIn('warning', r.err, str(r))
        self.assertEqual(len(entries(self.cache)), 2)
        for p in entries(self.cache) + [os.path.join(self.cache, 'v1')]:
            st = os.stat(p)
            self.assertEqual(st.st_gid, GROUP, p)
            self.assertEqual(st.st_mode & 0o7777, 0o660 if os.path.isfile(p) else 0o2770, p)
        # the other member uses A's entries (option or variable)
        r = run(USER_B, '--cache-shared')
        self.assertEqual(r.rc, 0, str(r))
        self.assertNotIn('warning', r.err, str(r))
        self.assertIn('2 from the cache', r.out, str(r))
        r = run(USER_B, env=dict(env, PREPYC_CACHE_SHARED='1'))
        self.assertIn('2 from the cache', r.out, str(r))
        # without --cache-shared, A's cache is not B's
        r = run(USER_B)
        self.assertEqual(r.rc, 0, str(r))
        self.assertIn("not using the cache '%s': it belongs to uid %d, not to you (uid %d); "
                      "see --cache-shared" % (self.cache, USER_A, USER_B), r.err)
        self.assertNotIn('from the cache', r.out)
        # an entry written by someone outside the group is refused, even shared
        (entry,) = [e for e in entries(self.cache) if b'real' in read_bytes(e)]
        os.chown(entry, OUTSIDER, OUTSIDER)
        os.chmod(entry, 0o644)  # (readable by B: what refuses it is prepyc, not the modes)
        r = run(USER_B, '--cache-shared')
        self.assertEqual(r.rc, 0, str(r))
        self.assertIn("not using the cache entry '%s': it belongs to uid %d" % (entry, OUTSIDER),
                      r.err)
        self.assertIn('1 from the cache', r.out, str(r))
        # still: nothing anyone can write
        os.chmod(self.cache, 0o2777)
        r = run(USER_B, '--cache-shared')
        self.assertIn("not using the cache '%s': it can be written by anyone" % self.cache, r.err)
        self.assertNotIn('from the cache', r.out)

    @unittest.skipUnless(IS_ROOT, 'needs root to run as two users of one group')
    def test_cache_shared_packs(self):
        # a run that stores more than 64 entries packs the rest (store-pack.h): the pack
        # and its directory get the group's modes, and the other member reads it
        cand = first_usable(other_users=True)
        if cand is None:
            self.skipTest('no interpreter that uid %d can run' % OUTSIDER)
        env = support.base_env(HOME='/nonexistent')
        os.makedirs(self.cache)
        os.chown(self.cache, USER_A, GROUP)
        os.chmod(self.cache, 0o2770)
        files = {'m%02d.py' % i: 'X = %d\n' % i for i in range(80)}
        trees = {}
        for uid in (USER_A, USER_B):
            tree = trees[uid] = os.path.join(self.tmp, 'p%d' % uid)
            support.write_tree(tree, files)
            for dirpath, dirnames, filenames in os.walk(tree):
                os.chown(dirpath, uid, uid)
                for n in filenames:
                    os.chown(os.path.join(dirpath, n), uid, uid)

        def run(uid):
            # (a bound small enough for the pack to be kept: store-pack.h's PACK_MIN_SHARE)
            return run_as([self.prepyc, '--python', cand.interp.path, '--cache-dir', self.cache,
                           '--cache-shared', '--cache-max-size', '64K',
                           os.path.basename(trees[uid])],
                          uid, uid, [GROUP], self.tmp, env)

        r = run(USER_A)
        self.assertEqual(r.rc, 0, str(r))
        pk = os.path.join(self.cache, 'v1', 'pk')
        (pack,) = os.listdir(pk)
        self.assertEqual(os.stat(pk).st_mode & 0o7777, 0o2770)
        self.assertEqual(os.stat(os.path.join(pk, pack)).st_mode & 0o7777, 0o660)
        self.assertEqual(os.stat(os.path.join(pk, pack)).st_gid, GROUP)
        r = run(USER_B)
        self.assertEqual(r.rc, 0, str(r))
        self.assertNotIn('warning', r.err, str(r))
        self.assertIn('%d from the cache' % len(files), r.out, str(r))


if __name__ == '__main__':
    unittest.main()
