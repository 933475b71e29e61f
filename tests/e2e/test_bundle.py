"""End-to-end tests of ``prepyc check BUNDLE`` and ``prepyc compile --bundle``.

Trees are compiled by prepyc, packed into real bundles (Python's zipfile and
tarfile; Info-ZIP ``zip`` and GNU ``tar`` where installed) and checked as
they will arrive: a timestamp pyc of a source with an odd-second mtime is
``stale-on-arrival`` in a zip (DOS times have 2-second steps) and ``ok`` in
a tar; hash pycs are ``ok`` in both; a pyc built for other source bytes is
``stale-hash``; a wheel keeps no mtime.  One generated class per interpreter
(``TestBundle_<label>``).  ``BundleSafetyTests`` (one interpreter): corrupt,
truncated and hostile archives (absolute names, ``..``, links out, a zip
bomb beyond the bound, too many members) are errors, exit 2, and nothing
is written.  Everything skips when prepyc was built without libarchive
(``prepyc --version``), except the test of that error.
"""

import io
import json
import os
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

# 2026-01-02 12:00:00 UTC: an even second
BASE = 1767355200
TREE = {
    'pkg/__init__.py': ('', BASE),
    'pkg/odd.py': ('ODD = 3\n', BASE + 3),
    'pkg/even.py': ('EVEN = 4\n', BASE + 4),
    'top.py': ('import pkg\n', BASE + 10),
}


def have_libarchive():
    if not support.prepyc_exists():
        return False
    res = support.run([support.PREPYC, '--version'], timeout=60)
    return any(line.startswith('features:') and 'libarchive' in line.split()
               for line in res.out.splitlines())


HAVE_LIBARCHIVE = None


def require_libarchive(test):
    global HAVE_LIBARCHIVE
    if HAVE_LIBARCHIVE is None:
        HAVE_LIBARCHIVE = have_libarchive()
    if not HAVE_LIBARCHIVE:
        test.skipTest('prepyc was built without libarchive')


def env():
    # a zip stores local time: make it UTC for the writers and for prepyc
    return support.base_env(TZ='UTC')


def write_tree(root, tree=TREE, prefix=''):
    for rel, (text, mtime) in sorted(tree.items()):
        p = os.path.join(root, prefix, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, 'w') as f:
            f.write(text)
        os.utime(p, (mtime, mtime))


def members(root):
    """(arcname, path) of every file under root, sorted."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            p = os.path.join(dirpath, name)
            out.append((os.path.relpath(p, root), p))
    return sorted(out)


def make_zip(path, root, override=None, zone=0):
    """A zip as Python's zipfile writes it (DOS times only), from the tree's
    mtimes in UTC (+ `zone` seconds: written where local time is not UTC);
    `override` maps arcnames to other bytes."""
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED) as z:
        for arc, p in members(root):
            info = zipfile.ZipInfo(arc, time.gmtime(os.stat(p).st_mtime + zone)[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            with open(p, 'rb') as f:
                data = f.read()
            z.writestr(info, (override or {}).get(arc, data))


def make_tar(path, root, mode='w', mtime=None):
    with tarfile.open(path, mode) as t:
        for arc, p in members(root):
            info = t.gettarinfo(p, arc)
            if mtime is not None:
                info.mtime = mtime
            with open(p, 'rb') as f:
                t.addfile(info, f)


def snapshot(root):
    """Everything under root: names, sizes, mtimes."""
    snap = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            snap[os.path.relpath(p, root)] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return snap


class BundleCase(support.InterpreterCase):
    tmp_prefix = 'prepyc-e2e-bundle-'

    def setUp(self):
        require_libarchive(self)
        support.InterpreterCase.setUp(self)
        self.src = os.path.join(self.tmp, 'src')
        write_tree(self.src)

    def prepyc(self, args, rc=None):
        res = support.run_prepyc(args, cwd=self.tmp, env=env(), timeout=300)
        if rc is not None:
            self.assertEqual(res.rc, rc, res.describe())
        return res

    def compile(self, *opts):
        self.prepyc(['compile', '-q', '--python', self.py.path] + list(opts) + [self.src], 0)

    def check(self, bundle, rc, *opts):
        """check --json of a bundle: {source member: (status, detail)}."""
        res = self.prepyc(['check', '--json', '--python', self.py.path] + list(opts) + [bundle],
                          rc)
        doc = json.loads(res.out)
        self.assertEqual(doc['ok'], rc == 0)
        prefix = bundle + '/'
        out = {}
        for f in doc['files']:
            self.assertTrue(f['source'].startswith(prefix), f)
            out[f['source'][len(prefix):]] = (f['status'], f['detail'])
        return out, doc

    def need_hash(self):
        if self.py.version < (3, 7):
            self.skipTest('hash-based pycs need Python 3.7+')

    def statuses(self, got):
        return {k: v[0] for k, v in got.items()}


class InterpreterTests(BundleCase):

    def test_timestamp_pycs_zip_vs_tar(self):
        self.compile()  # timestamp pycs (no SOURCE_DATE_EPOCH)
        z = os.path.join(self.tmp, 'f.zip')
        make_zip(z, self.src)
        got, doc = self.check('f.zip', 1)
        self.assertEqual(self.statuses(got), {
            'pkg/__init__.py': 'ok', 'pkg/odd.py': 'stale-on-arrival', 'pkg/even.py': 'ok',
            'top.py': 'ok'})
        self.assertEqual(got['pkg/odd.py'][1], 'the zip stores 2026-01-02 12:00:02 UTC for a '
                         'source compiled at 2026-01-02 12:00:03 UTC')
        self.assertEqual(doc['counts']['stale-on-arrival'], 1)
        # the text report: one line, the source first
        res = self.prepyc(['check', '--python', self.py.path, 'f.zip'], 1)
        self.assertIn('f.zip/pkg/odd.py: stale-on-arrival (f.zip/pkg/__pycache__/%s: the zip '
                      'stores' % self.py.pyc_name('odd'), res.out)
        # written at UTC+1: every DOS time is an hour off where it arrives
        make_zip(os.path.join(self.tmp, 'zone.zip'), self.src, zone=3600)
        got, doc = self.check('zone.zip', 1)
        self.assertEqual(set(self.statuses(got).values()), {'stale-on-arrival'})
        self.assertEqual(got['top.py'][1], 'the zip stores 2026-01-02 13:00:10 UTC for a source '
                         'compiled at 2026-01-02 12:00:10 UTC (a zip stores local time; it '
                         'arrives as UTC)')
        for name, mode in (('f.tar', 'w'), ('f.tar.gz', 'w:gz'), ('f.tgz', 'w:gz'),
                           ('f.tar.xz', 'w:xz')):
            with self.subTest(bundle=name):
                make_tar(os.path.join(self.tmp, name), self.src, mode)
                got, doc = self.check(name, 0)
                self.assertEqual(set(self.statuses(got).values()), {'ok'})
                self.assertEqual(len(got), 4)

    def test_hash_pycs_survive_zip_tar_wheel(self):
        self.need_hash()
        self.compile('--bundle')  # checked-hash by default
        for name in ('h.zip', 'h.whl', 'h.tar'):
            with self.subTest(bundle=name):
                p = os.path.join(self.tmp, name)
                (make_tar if name.endswith('.tar') else make_zip)(p, self.src)
                got, doc = self.check(name, 0, '--invalidation-mode', 'checked-hash')
                self.assertEqual(set(self.statuses(got).values()), {'ok'})
        for name in ('u.zip', 'u.tar'):
            with self.subTest(bundle=name, mode='unchecked-hash'):
                self.compile('--bundle', '--invalidation-mode', 'unchecked-hash')
                p = os.path.join(self.tmp, name)
                (make_tar if name.endswith('.tar') else make_zip)(p, self.src)
                got, doc = self.check(name, 0)
                self.check(name, 1, '--invalidation-mode', 'checked-hash')

    def test_pyc_of_other_source_is_stale_hash(self):
        self.need_hash()
        self.compile('--invalidation-mode', 'checked-hash')
        p = os.path.join(self.tmp, 'o.zip')
        make_zip(p, self.src, {'pkg/even.py': b'EVEN = 5\n'})
        got, doc = self.check('o.zip', 1)
        self.assertEqual(got['pkg/even.py'][0], 'stale-hash')
        self.assertEqual([s for s, d in got.values()].count('ok'), 3)

    def test_timestamp_pyc_of_other_source(self):
        # stale before it was packed: stale-mtime, not the bundle's fault
        self.compile()  # timestamp pycs (no SOURCE_DATE_EPOCH)
        os.utime(os.path.join(self.src, 'top.py'), (BASE + 500, BASE + 500))
        make_tar(os.path.join(self.tmp, 's.tar'), self.src)
        got, doc = self.check('s.tar', 1)
        self.assertEqual(got['top.py'][0], 'stale-mtime')
        make_zip(os.path.join(self.tmp, 's.zip'), self.src)
        got, doc = self.check('s.zip', 1)
        self.assertEqual(got['top.py'][0], 'stale-mtime')
        self.assertEqual(got['pkg/odd.py'][0], 'stale-on-arrival')

    def test_wheel_keeps_no_mtime(self):
        self.compile()  # timestamp pycs (no SOURCE_DATE_EPOCH)
        make_zip(os.path.join(self.tmp, 'w-1.0-py3-none-any.whl'), self.src)
        got, doc = self.check('w-1.0-py3-none-any.whl', 1)
        self.assertEqual(set(self.statuses(got).values()), {'stale-on-arrival'})
        self.assertIn('install', got['top.py'][1])

    def test_reset_mtimes(self):
        # a tool that gives every member one fixed time
        self.compile()  # timestamp pycs (no SOURCE_DATE_EPOCH)
        make_tar(os.path.join(self.tmp, 'r.tar'), self.src, mtime=315532800)
        got, doc = self.check('r.tar', 1)
        self.assertEqual(set(self.statuses(got).values()), {'stale-on-arrival'})
        self.assertIn('the tar stores 1980-01-01 00:00:00 UTC', got['top.py'][1])
        self.assertIn('as for every file', got['top.py'][1])

    def test_lambda_layer_root(self):
        self.need_hash()
        layer = os.path.join(self.tmp, 'layer')
        write_tree(layer, prefix='python')
        self.prepyc(['compile', '-q', '--bundle', '--python', self.py.path, layer], 0)
        make_zip(os.path.join(self.tmp, 'layer.zip'), layer)
        got, doc = self.check('layer.zip', 0, '--root', 'python')
        self.assertEqual(sorted(got), ['python/pkg/__init__.py', 'python/pkg/even.py',
                                       'python/pkg/odd.py', 'python/top.py'])
        got, doc = self.check('layer.zip', 0, '--root', './python/')
        self.assertEqual(len(got), 4)
        # -l: only the top of the root
        got, doc = self.check('layer.zip', 0, '--root', 'python', '-l')
        self.assertEqual(sorted(got), ['python/top.py'])
        res = self.prepyc(['check', '--python', self.py.path, '--root', 'var/task',
                           'layer.zip'], 2)
        self.assertIn("has nothing under 'var/task/'", res.err)
        # a missing level, a missing pyc; --strict: an orphan
        os.remove(os.path.join(layer, 'python', 'pkg', '__pycache__',
                               self.py.pyc_name('even')))
        os.rename(os.path.join(layer, 'python', 'pkg', 'odd.py'),
                  os.path.join(layer, 'python', 'pkg', 'gone.py'))
        make_zip(os.path.join(self.tmp, 'layer2.zip'), layer)
        got, doc = self.check('layer2.zip', 1, '--root', 'python')
        self.assertEqual(got['python/pkg/even.py'][0], 'missing')
        self.assertEqual(got['python/pkg/gone.py'][0], 'missing')
        self.assertEqual(len(doc['orphans']), 1)

    def test_info_zip_and_gnu_tar(self):
        self.compile()  # timestamp pycs (no SOURCE_DATE_EPOCH)
        if shutil.which('zip'):
            with self.subTest(tool='zip'):
                # Info-ZIP writes the exact time too (extra field UT); arrival is still 2 s
                subprocess.run(['zip', '-qr', os.path.join(self.tmp, 'i.zip'), '.'],
                               cwd=self.src, env=env(), check=True)
                got, doc = self.check('i.zip', 1)
                self.assertEqual(self.statuses(got)['pkg/odd.py'], 'stale-on-arrival')
                self.assertEqual(self.statuses(got)['pkg/even.py'], 'ok')
        if shutil.which('tar'):
            for flag, name in (('-cf', 't.tar'), ('--zstd', 't.tar.zst'), ('-cJf', 't.tar.xz')):
                with self.subTest(tool='tar', flag=flag):
                    argv = ['tar', flag, '-cf', name] if flag == '--zstd' else ['tar', flag, name]
                    r = subprocess.run(argv + ['-C', self.src, '.'], cwd=self.tmp, env=env(),
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    if r.returncode != 0:
                        self.skipTest('tar %s did not work here' % flag)
                    got, doc = self.check(name, 0)
                    self.assertEqual(len(got), 4)


def _generate():
    made = []
    for cand in support.candidates():
        name = 'TestBundle_' + cand.ident
        cls = type(name, (InterpreterTests,), {
            'candidate': cand, '__module__': __name__,
            '__doc__': 'prepyc check BUNDLE with %s (%s)' % (cand.label, cand.path)})
        globals()[name] = cls
        made.append(cls)
    return made


_GENERATED = _generate()


class BundleSafetyTests(unittest.TestCase):
    """Archives that must not be judged: exit 2, a message naming the
    bundle, and nothing written (the directory holding it is unchanged)."""

    def setUp(self):
        support.require_prepyc()
        interps = support.interpreters()
        if not interps:
            self.skipTest('no Python 3 interpreter found')
        self.py = interps[0].path
        self.tmp = tempfile.mkdtemp(prefix='prepyc-e2e-bundle-')
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def refused(self, name, words, extra_env=None):
        before = snapshot(self.tmp)
        e = env()
        e.update(extra_env or {})
        res = support.run_prepyc(['check', '--python', self.py, name], cwd=self.tmp, env=e,
                                 timeout=120)
        self.assertEqual(res.rc, 2, res.describe())
        self.assertEqual(res.out, '')
        self.assertIn("prepyc: error: cannot read '%s'" % name, res.err)
        for w in words:
            self.assertIn(w, res.err)
        self.assertEqual(snapshot(self.tmp), before)

    def tar(self, name, entries):
        with tarfile.open(os.path.join(self.tmp, name), 'w') as t:
            for arc, kind, value in entries:
                info = tarfile.TarInfo(arc)
                if kind == 'sym':
                    info.type, info.linkname = tarfile.SYMTYPE, value
                    t.addfile(info)
                elif kind == 'hard':
                    info.type, info.linkname = tarfile.LNKTYPE, value
                    t.addfile(info)
                else:
                    info.size = len(value)
                    t.addfile(info, io.BytesIO(value))

    def test_hostile(self):
        require_libarchive(self)
        evil = '/tmp/prepyc-e2e-evil-%d.py' % os.getpid()
        self.tar('abs.tar', [('ok.py', 'f', b'x = 1\n'), (evil, 'f', b'x = 1\n')])
        self.refused('abs.tar', ['outside'])
        self.assertFalse(os.path.exists(evil))
        self.tar('dots.tar', [('a/../../x.py', 'f', b'x = 1\n')])
        self.refused('dots.tar', ['outside'])
        with zipfile.ZipFile(os.path.join(self.tmp, 'dots.zip'), 'w') as z:
            z.writestr('../x.py', b'x = 1\n')
        self.refused('dots.zip', ['outside'])
        self.tar('link.tar', [('a.py', 'sym', '/etc/passwd')])
        self.refused('link.tar', ['symlink', 'out of the archive'])
        self.tar('link2.tar', [('sub/a.py', 'sym', '../../x.py')])
        self.refused('link2.tar', ['symlink'])
        self.tar('hard.tar', [('a.py', 'hard', '../x.py')])
        self.refused('hard.tar', ['hard link'])

    def test_bounds(self):
        require_libarchive(self)
        with zipfile.ZipFile(os.path.join(self.tmp, 'bomb.zip'), 'w', zipfile.ZIP_DEFLATED) as z:
            z.writestr('big.py', b'#' * (8 << 20))
        self.assertLess(os.path.getsize(os.path.join(self.tmp, 'bomb.zip')), 100000)
        self.refused('bomb.zip', ['PREPYC_BUNDLE_MAX_BYTES'],
                     {'PREPYC_BUNDLE_MAX_BYTES': '1000000'})
        self.tar('many.tar', [('m%d.py' % i, 'f', b'') for i in range(10)])
        self.refused('many.tar', ['PREPYC_BUNDLE_MAX_ENTRIES'],
                     {'PREPYC_BUNDLE_MAX_ENTRIES': '5'})

    def test_corrupt(self):
        require_libarchive(self)
        src = os.path.join(self.tmp, 'src')
        write_tree(src)
        make_zip(os.path.join(self.tmp, 'good.zip'), src)
        make_tar(os.path.join(self.tmp, 'good.tar.gz'), src, 'w:gz')
        with open(os.path.join(self.tmp, 'good.zip'), 'rb') as f:
            z = f.read()
        with open(os.path.join(self.tmp, 'good.tar.gz'), 'rb') as f:
            t = f.read()
        shutil.rmtree(src)
        for name, data in (('cut.zip', z[:len(z) // 2]), ('cut.tar.gz', t[:len(t) // 2]),
                           ('noise.zip', os.urandom(4096)), ('noise.tar.xz', os.urandom(4096)),
                           ('empty.whl', b''), ('text.tar', b'print("hi")\n' * 100)):
            with self.subTest(bundle=name):
                with open(os.path.join(self.tmp, name), 'wb') as f:
                    f.write(data)
                self.refused(name, [])
        self.refused('missing.zip', [])

    def test_links_inside_are_their_targets(self):
        require_libarchive(self)
        self.tar('in.tar', [('b.py', 'f', b'x = 1\n'), ('a.py', 'sym', 'b.py'),
                            ('c.py', 'hard', 'b.py'), ('d.py', 'sym', 'nothing.py')])
        res = support.run_prepyc(['check', '--json', '--python', self.py, 'in.tar'],
                                 cwd=self.tmp, env=env(), timeout=120)
        self.assertEqual(res.rc, 1, res.describe())
        doc = json.loads(res.out)
        self.assertEqual(sorted((f['source'], f['status']) for f in doc['files']),
                         [('in.tar/a.py', 'missing'), ('in.tar/b.py', 'missing'),
                          ('in.tar/c.py', 'missing')])

    def test_usage(self):
        os.mkdir(os.path.join(self.tmp, 'd'))
        with open(os.path.join(self.tmp, 'x.zip'), 'wb') as f:
            f.write(b'')
        for argv, words in ((['--root', 'python', 'd'], "'--root'"),
                            (['x.zip', 'd'], 'on its own'),
                            (['--import', 'os', 'x.zip'], "'--import'"),
                            (['--root', '../up', 'x.zip'], "'--root'")):
            with self.subTest(argv=argv):
                if 'x.zip' in argv and '--root' in argv:
                    require_libarchive(self)
                res = support.run_prepyc(['check', '--python', self.py] + argv, cwd=self.tmp,
                                         env=env(), timeout=120)
                self.assertEqual(res.rc, 2, res.describe())
                self.assertIn(words, res.err)

    def test_without_libarchive(self):
        global HAVE_LIBARCHIVE
        if HAVE_LIBARCHIVE is None:
            HAVE_LIBARCHIVE = have_libarchive()
        if HAVE_LIBARCHIVE:
            self.skipTest('prepyc was built with libarchive')
        with open(os.path.join(self.tmp, 'x.zip'), 'wb') as f:
            f.write(b'')
        res = support.run_prepyc(['check', '--python', self.py, 'x.zip'], cwd=self.tmp,
                                 env=env(), timeout=120)
        self.assertEqual(res.rc, 2, res.describe())
        self.assertIn('reading bundles needs libarchive; install libarchive-dev and rebuild',
                      res.err)


def load_tests(loader, standard_tests, pattern):
    suite = unittest.TestSuite()
    for cls in _GENERATED + [BundleSafetyTests]:
        suite.addTests(loader.loadTestsFromTestCase(cls))
    return suite


if __name__ == '__main__':
    unittest.main()
