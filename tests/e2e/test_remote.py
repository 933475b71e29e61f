"""End-to-end tests of the remote cache (--remote-cache, src/cache/store-remote.c
with store-redis.c and store-http.c) against real servers on 127.0.0.1:
redis-server and nginx with WebDAV PUT (tests/e2e/servers.py), started and
stopped here; skipped when the server or the compiled-in client library is
missing (``prepyc --version`` lists libcurl and hiredis).

- A second machine (another tree path, new mtimes, an empty local cache)
  takes every file from the remote: bytes identical to a compile, no worker
  started, the remote hits in ``prepyc cache stats``.  On every interpreter
  found (``TestRemoteFleet_<label>``): a few runs each, cheap.
- The rest is about C code and runs on the first interpreter only
  (``TestRemoteFaults``): read-only mode uploads nothing; a server killed
  mid-run, one that accepts and never answers, one that answers HTTP 500,
  one that answers garbage each leave a complete, correct tree, one warning
  and exit status 0 within a generous bound; with PREPYC_REMOTE_CACHE_SECRET
  set, entries altered on the server (a valid checksum but a wrong or
  missing tag) are rejected, counted, and compiled locally; with libzstd,
  values travel compressed, uncompressed ones are still read, and a
  damaged frame is rejected.
"""

import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import servers  # noqa: E402
import support  # noqa: E402

MODULES = {
    'app/__init__.py': 'VERSION = "1.0"\n',
    'app/core.py': 'import os\n\ndef f(x):\n    """doc"""\n    return {"a": x, "b": [1, 2.5, None]}\n',
    'app/util.py': ''.join('def h%d(x):\n    return x * %d + %r\n' % (i, i, 's%d' % i)
                           for i in range(40)),
    'app/sub/__init__.py': '',
    'app/sub/deep.py': 'X = %r\n' % (list(range(200)),),
    'warn.py': 'def f(x):\n    return x is 1\n',
    'top.py': 'from app import core\nprint(core.f(1))\n',
}
# a file whose compile takes a moment: the window in which a server is killed
SLOW = 'X = [\n' + ''.join('    (%d, "s%d", %d.5, {"k": [%d]}),\n' % (i, i, i, i)
                           for i in range(60000)) + ']\n'
BOUND = 90  # seconds: "a bounded time", generous


def features():
    r = support.run_prepyc(['--version'], env=support.base_env())
    m = re.search(r'^features:(.*)$', r.out, re.M)
    return m.group(1).split() if m else []


def warnings_of(err):
    return [l for l in err.splitlines() if 'warning:' in l]


def read_all(tree):
    out = {}
    for rel in support.pyc_files(tree):
        with open(os.path.join(tree, rel), 'rb') as f:
            out[rel] = f.read()
    return out


def touch_all(tree, delta=10):
    for dirpath, dirnames, filenames in os.walk(tree):
        for name in filenames:
            if name.endswith('.py'):
                p = os.path.join(dirpath, name)
                st = os.stat(p)
                os.utime(p, (st.st_atime + delta, st.st_mtime + delta))


def local_entries(cache_dir):
    """The entry files (DIR/v1/AB/KEY) and packs (DIR/v1/pk/NAME) of a local cache directory."""
    return sorted(glob.glob(os.path.join(cache_dir, 'v1', '??', '*')))


def packs(cache_dir):
    return sorted(glob.glob(os.path.join(cache_dir, 'v1', 'pk', '*')))


def remote_stats(r):
    """The counters of PREPYC_TRACE's remote line (summed over remotes)."""
    out = {}
    for m in re.finditer(r"trace: remote cache '[^']*': (hits=.*)", r.err):
        for k, v in re.findall(r'(\w+)=(\d+)', m.group(1)):
            out[k] = out.get(k, 0) + int(v)
    return out


class RemoteCase(support.InterpreterCase):
    tmp_prefix = 'prepyc-e2e-remote-'
    kinds = ('redis', 'http')

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.features = features()

    def start(self, kind):
        """A fresh server of `kind`, stopped at the test's end."""
        if kind == 'redis':
            if 'hiredis' not in self.features:
                self.skipTest('prepyc built without hiredis')
            if not servers.redis_binary():
                self.skipTest('no redis-server')
            s = servers.Redis(self.tmp)
        else:
            if 'libcurl' not in self.features:
                self.skipTest('prepyc built without libcurl')
            if not servers.nginx_binary():
                self.skipTest('no nginx')
            s = servers.Nginx(self.tmp)
        self.addCleanup(s.stop)
        return s

    def machine(self, name, files=MODULES):
        """A fresh checkout: its own path, cache directory, and new mtimes."""
        root = tempfile.mkdtemp(prefix=name + '-', dir=self.tmp)
        tree = os.path.join(root, 'src')
        support.write_tree(tree, files)
        touch_all(tree, delta=hash(name) % 1000 + 10)
        return root, tree

    def pp(self, root, url, extra=(), env=None, timeout=support.DEFAULT_TIMEOUT, **envkw):
        env = env or support.base_env(PREPYC_TRACE=1, **envkw)
        args = ['--python', self.py.path, '--cache-dir', os.path.join(root, 'cache')]
        if url:
            args += ['--remote-cache', url]
        # the tree by its absolute path: another machine's pycs name another co_filename
        return support.run_prepyc(args + list(extra) + [os.path.join(root, 'src')], cwd=root,
                                  env=env,
                                  timeout=timeout)

    def reference(self, root):
        """The pycs a compile without any cache writes for the tree (in place)."""
        src = os.path.join(root, 'src')
        for rel in support.pyc_files(src):
            os.unlink(os.path.join(src, rel))
        r = support.run_prepyc(['--python', self.py.path, '--no-cache', src], cwd=root,
                               env=support.base_env())
        self.assertEqual(r.rc, 0, str(r))
        return read_all(src)

    def from_cache(self, r):
        s = support.parse_summary(r.out)
        self.assertIsNotNone(s, str(r))
        m = re.search(r'(\d+) from the cache', s['line'])
        return int(m.group(1)) if m else 0

    def assert_complete(self, root, r, nfiles=len(MODULES)):
        """Exit 0, every pyc there and equal to a compile's."""
        self.assertEqual(r.rc, 0, str(r))
        got = read_all(os.path.join(root, 'src'))
        self.assertEqual(len(got), nfiles, str(r))
        self.assertEqual(got, self.reference(root))


class FleetTests(RemoteCase):

    def fleet(self, kind):
        s = self.start(kind)
        a, _ = self.machine('a')
        r = self.pp(a, s.url)
        self.assertEqual(r.rc, 0, str(r))
        self.assertEqual(remote_stats(r).get('uploads'), len(MODULES), str(r))
        b, _ = self.machine('b-elsewhere')
        r = self.pp(b, s.url)
        self.assertEqual(self.from_cache(r), len(MODULES), str(r))
        self.assertIn(' 0 workers', r.out, 'every file a remote hit: no worker started')
        self.assertEqual([w for w in warnings_of(r.err) if 'remote cache' in w], [])
        st = remote_stats(r)
        self.assertEqual((st.get('hits'), st.get('errors'), st.get('uploads')),
                         (len(MODULES), 0, 0), str(r))
        self.assert_complete(b, r)
        stats = support.run_prepyc(['cache', 'stats', '--cache-dir', os.path.join(b, 'cache')],
                                   env=support.base_env())
        self.assertIn('remote: hits %d  misses 0  uploads 0  errors 0' % len(MODULES), stats.out)
        # the remote's hits were kept locally (loose: so few are not packed, test_pack.py)
        self.assertEqual(len(local_entries(os.path.join(b, 'cache'))), len(MODULES), str(r))
        self.assertRegex(stats.out, r'entries: +%d,' % len(MODULES))
        # that local cache alone serves a third checkout elsewhere
        c, _ = self.machine('c-from-the-pack')
        shutil.copytree(os.path.join(b, 'cache'), os.path.join(c, 'cache'))
        r = self.pp(c, None)
        self.assertEqual(self.from_cache(r), len(MODULES), str(r))
        self.assertIn(' 0 workers', r.out, str(r))
        self.assert_complete(c, r)

    def test_second_machine_redis(self):
        self.fleet('redis')

    def test_second_machine_http(self):
        self.fleet('http')


class FaultTests(RemoteCase):

    def test_read_only_uploads_nothing(self):
        for kind in self.kinds:
            with self.subTest(kind=kind):
                s = self.start(kind)
                a, _ = self.machine('ro-' + kind)
                r = self.pp(a, s.url, ['--remote-cache-read-only'])
                self.assert_complete(a, r)
                self.assertEqual(remote_stats(r).get('uploads'), 0, str(r))
                b, _ = self.machine('ro-env-' + kind)
                r = self.pp(b, s.url, PREPYC_REMOTE_CACHE_READ_ONLY=1)
                self.assert_complete(b, r)
                if kind == 'redis':
                    self.assertEqual(s.keys(), [])
                else:
                    self.assertEqual(s.entries(), [])
                    self.assertEqual(s.requests('PUT'), 0)

    def test_environment_list_tried_in_order(self):
        s = self.start('redis')
        h = self.start('http')
        a, _ = self.machine('one')
        r = self.pp(a, None, PREPYC_REMOTE_CACHE='%s %s' % (h.url, s.url))
        self.assertEqual(r.rc, 0, str(r))
        self.assertEqual(len(h.entries()), len(MODULES))
        self.assertEqual(len(s.keys()), len(MODULES))
        b, _ = self.machine('two')
        r = self.pp(b, None, PREPYC_REMOTE_CACHE='%s %s' % (h.url, s.url))
        self.assertEqual(self.from_cache(r), len(MODULES), str(r))
        self.assertEqual(r.err.count("prefetched"), 1, 'the second remote asked for nothing')

    def bad_server(self, url, extra=()):
        root, _ = self.machine('bad')
        started = time.monotonic()
        r = self.pp(root, url, ['--remote-cache-timeout', '2'] + list(extra), timeout=BOUND * 2)
        elapsed = time.monotonic() - started
        self.assert_complete(root, r)
        warns = [w for w in warnings_of(r.err) if 'remote cache' in w]
        self.assertEqual(len(warns), 1, str(r))
        self.assertLess(elapsed, BOUND, str(r))
        self.assertGreater(remote_stats(r).get('errors', 0), 0, str(r))
        return r

    def test_server_that_never_answers(self):
        for kind in self.kinds:
            with self.subTest(kind=kind):
                self.start(kind)  # skips when not compiled in
                m = servers.Misbehaving('silent')
                self.addCleanup(m.stop)
                self.bad_server(m.url_redis if kind == 'redis' else m.url_http)

    def test_server_that_answers_500(self):
        self.start('http')
        m = servers.Misbehaving('500')
        self.addCleanup(m.stop)
        self.bad_server(m.url_http)

    def test_server_that_answers_garbage(self):
        for kind in self.kinds:
            with self.subTest(kind=kind):
                self.start(kind)
                m = servers.Misbehaving('garbage')
                self.addCleanup(m.stop)
                self.bad_server(m.url_redis if kind == 'redis' else m.url_http)

    def test_server_down(self):
        for kind in self.kinds:
            with self.subTest(kind=kind):
                s = self.start(kind)
                s.stop()
                self.bad_server(s.url)

    def test_server_killed_mid_run(self):
        files = dict(MODULES, **{'slow.py': SLOW})
        for kind in self.kinds:
            with self.subTest(kind=kind):
                s = self.start(kind)
                root, _ = self.machine('killed-' + kind, files)
                args = ['--python', self.py.path, '--cache-dir', os.path.join(root, 'cache'),
                        '--remote-cache', s.url, os.path.join(root, 'src')]
                env = support.base_env(PREPYC_TRACE=1)
                started = time.monotonic()
                p = subprocess.Popen([support.PREPYC] + args, cwd=root, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                # the lookups reached the server: kill it before the uploads
                while time.monotonic() - started < BOUND:
                    if kind == 'redis':
                        try:
                            info = s.command('INFO', 'commandstats')
                        except OSError:
                            info = b''
                        if b'cmdstat_mget' in info:
                            break
                    elif s.requests('GET'):
                        break
                    time.sleep(0.005)
                s.stop()
                out, err = p.communicate(timeout=BOUND * 2)
                r = support.Result(args, p.returncode, out.decode(), err.decode(),
                                   time.monotonic() - started)
                self.assertLess(r.elapsed, BOUND, str(r))
                self.assert_complete(root, r, len(files))
                self.assertEqual(len([w for w in warnings_of(r.err) if 'remote cache' in w]),
                                 1, str(r))
                st = remote_stats(r)
                self.assertEqual(st.get('uploads'), 0, str(r))
                self.assertGreater(st.get('errors'), 0, str(r))

    def tamper(self, kind, s, how):
        """Change every entry on the server `s`; `how`(key, value) -> new value."""
        if kind == 'redis':
            for k in s.keys():
                s.command('SET', k, how(k[len(b'prepyc:'):].decode(), s.command('GET', k)))
        else:
            for path in s.entries():
                with open(path, 'rb') as f:
                    v = f.read()
                with open(path, 'wb') as f:
                    f.write(how(os.path.basename(path), v))

    def test_secret_rejects_altered_entries(self):
        def strip_tag(key, v):
            return v[:-32]

        def wrong_tag(key, v):
            return v[:-32] + bytes(32)

        def other_code(key, v):
            # a valid entry (its checksum made anew) with other code, the tag kept
            header, body, tag = v[:80], v[80:-32], v[-32:]
            code_len = int.from_bytes(header[48:56], 'little')
            code = body[:code_len].replace(b'h1', b'h2')
            if code == body[:code_len]:
                code = code + b'N'
            header = header[:48] + len(code).to_bytes(8, 'little') + header[56:64]
            body = code + body[code_len:]
            s = hashlib.blake2b(header + body, digest_size=16).digest()
            return header + s + body + tag

        for kind in self.kinds:
            for name, how in (('missing', strip_tag), ('wrong', wrong_tag),
                              ('altered', other_code)):
                with self.subTest(kind=kind, tag=name):
                    s = self.start(kind)
                    a, _ = self.machine('signer-%s-%s' % (kind, name))
                    # the entries as they are, so that 'altered' edits a valid one
                    r = self.pp(a, s.url, PREPYC_REMOTE_CACHE_SECRET='s3cret key',
                                PREPYC_REMOTE_CACHE_COMPRESS='0')
                    self.assertEqual(r.rc, 0, str(r))
                    self.assertNotIn('s3cret', r.err + r.out)
                    # untouched, they are hits with the secret
                    b, _ = self.machine('reader-%s-%s' % (kind, name))
                    r = self.pp(b, s.url, PREPYC_REMOTE_CACHE_SECRET='s3cret key')
                    self.assertEqual(self.from_cache(r), len(MODULES), str(r))
                    self.tamper(kind, s, how)
                    c, _ = self.machine('victim-%s-%s' % (kind, name))
                    r = self.pp(c, s.url, ['--remote-cache-read-only'],
                                PREPYC_REMOTE_CACHE_SECRET='s3cret key')
                    self.assert_complete(c, r)
                    self.assertEqual(self.from_cache(r), 0, str(r))
                    st = remote_stats(r)
                    self.assertEqual((st.get('rejected'), st.get('hits')), (len(MODULES), 0),
                                     str(r))
                    self.assertEqual(len([w for w in warnings_of(r.err) if 'rejected' in w]), 1,
                                     str(r))
                    self.assertNotIn('s3cret', r.err + r.out)

    def values(self, kind, s):
        """Every value on the server `s`."""
        if kind == 'redis':
            return [s.command('GET', k) for k in s.keys()]
        out = []
        for path in s.entries():
            with open(path, 'rb') as f:
                out.append(f.read())
        return out

    def test_compressed_values(self):
        """With libzstd, values travel as zstd frames (the larger ones); a
        writer with PREPYC_REMOTE_CACHE_COMPRESS=0 sends them as they are; a
        reader takes both, signed or not; a damaged frame is rejected."""
        if 'zstd' not in self.features:
            self.skipTest('prepyc built without libzstd')
        zstd = b'\x28\xb5\x2f\xfd'
        for kind in self.kinds:
            for compress, secret in (('1', ''), ('0', ''), ('1', 's3cret')):
                with self.subTest(kind=kind, compress=compress, secret=secret):
                    s = self.start(kind)
                    keys = dict(PREPYC_REMOTE_CACHE_SECRET=secret) if secret else {}
                    a, _ = self.machine('zw-%s-%s%s' % (kind, compress, secret))
                    r = self.pp(a, s.url, PREPYC_REMOTE_CACHE_COMPRESS=compress, **keys)
                    self.assertEqual(r.rc, 0, str(r))
                    vals = self.values(kind, s)
                    self.assertEqual(len(vals), len(MODULES))
                    framed = [v for v in vals if v.startswith(zstd)]
                    if compress == '1':
                        # util.py and deep.py shrink for sure
                        self.assertGreaterEqual(len(framed), 2, [v[:8] for v in vals])
                    else:
                        self.assertEqual(framed, [])
                    b, _ = self.machine('zr-%s-%s%s' % (kind, compress, secret))
                    r = self.pp(b, s.url, **keys)
                    self.assertEqual(self.from_cache(r), len(MODULES), str(r))
                    self.assert_complete(b, r)
        s = self.start('redis' if 'hiredis' in self.features else 'http')
        kind = 'redis' if 'hiredis' in self.features else 'http'
        a, _ = self.machine('zdamage-w')
        self.assertEqual(self.pp(a, s.url).rc, 0)

        def damage(key, v):
            if not v.startswith(zstd):
                return v
            return v[:len(v) // 2] + bytes([v[len(v) // 2] ^ 0x55]) + v[len(v) // 2 + 1:-2]

        self.tamper(kind, s, damage)
        c, _ = self.machine('zdamage-r')
        r = self.pp(c, s.url, ['--remote-cache-read-only'])
        self.assert_complete(c, r)
        st = remote_stats(r)
        self.assertGreaterEqual(st.get('rejected', 0), 2, str(r))
        self.assertEqual(st.get('rejected', 0) + st.get('hits', 0), len(MODULES), str(r))

    def test_remote_only_keeps_no_local_entry(self):
        # --remote-cache-only: the remote alone, for a builder thrown away after the job;
        # a source found three times in the tree costs one value fetched, not three
        files = dict(MODULES, **{'dup1.py': MODULES['app/util.py'],
                                 'dup2.py': MODULES['app/util.py']})
        distinct = len(files) - 2
        for kind in self.kinds:
            with self.subTest(kind=kind):
                s = self.start(kind)
                a, _ = self.machine('only-a-' + kind, files)
                self.assertEqual(self.pp(a, s.url).rc, 0)
                b, _ = self.machine('only-b-' + kind, files)
                r = self.pp(b, s.url, ['--remote-cache-only'])
                self.assertEqual(self.from_cache(r), len(files), str(r))
                self.assertIn(' 0 workers', r.out, str(r))
                st = remote_stats(r)
                self.assertEqual((st.get('hits'), st.get('misses'), st.get('errors')),
                                 (len(files), 0, 0), str(r))
                self.assertLessEqual(st.get('requests'), 1 if kind == 'redis' else distinct,
                                     str(r))
                self.assert_complete(b, r, len(files))
                self.assertEqual(local_entries(os.path.join(b, 'cache')), [])
                stats = support.run_prepyc(['cache', 'stats', '--cache-dir',
                                            os.path.join(b, 'cache')], env=support.base_env())
                self.assertIn('remote: hits %d  misses 0' % len(files), stats.out)
                # from the environment; a new source: compiled, uploaded, not kept locally
                c, _ = self.machine('only-c-' + kind, dict(files, **{'new.py': 'N = 1\n'}))
                r = self.pp(c, s.url, PREPYC_REMOTE_CACHE_ONLY=1)
                self.assertEqual(self.from_cache(r), len(files), str(r))
                self.assertEqual(remote_stats(r).get('uploads'), 1, str(r))
                self.assert_complete(c, r, len(files) + 1)
                self.assertEqual(local_entries(os.path.join(c, 'cache')), [])
        root, _ = self.machine('only-usage')
        r = self.pp(root, None, ['--remote-cache-only'])
        self.assertEqual(r.rc, 2, str(r))
        self.assertIn('--remote-cache-only: no remote cache', r.err)
        r = self.pp(root, None, PREPYC_REMOTE_CACHE_ONLY=1)  # as the read-only one: ignored
        self.assert_complete(root, r)

    def test_bad_urls_and_options(self):
        root, _ = self.machine('urls')
        for url in ('ftp://host/x', 'redis://', 'redis://h:99999', 'redis+unix://relative',
                    'http://h/x?q=1'):
            r = self.pp(root, url)
            self.assertEqual(r.rc, 2, str(r))
            self.assertIn('remote cache', r.err)
        r = self.pp(root, 'redis://user:hunter2@127.0.0.1:1', ['--remote-cache-timeout', 'x'])
        self.assertEqual(r.rc, 2, str(r))
        r = self.pp(root, 'redis://user:hunter2@127.0.0.1:1')
        self.assertEqual(r.rc, 0, str(r))
        self.assertNotIn('hunter2', r.err + r.out)


def _first_interpreter():
    for cand in support.candidates():
        if cand.interp is not None and not cand.interp.pyodide:
            return cand
    return None


_GENERATED = support.per_interpreter(FleetTests, 'TestRemoteFleet_',
                                     'the remote cache across machines with %s (%s)', globals())
TestRemoteFaults = type('TestRemoteFaults', (FaultTests,), {
    'candidate': _first_interpreter(), '__module__': __name__,
    '__doc__': 'remote cache faults and trust, on the first interpreter found'})
_GENERATED.append(TestRemoteFaults)


def load_tests(loader, standard_tests, pattern):
    return support.load_generated(loader, _GENERATED)


if __name__ == '__main__':
    unittest.main()
