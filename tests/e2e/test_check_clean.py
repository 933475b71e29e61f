"""End-to-end tests of ``prepyc check`` and ``prepyc clean``.

One generated TestCase class per interpreter candidate
(``TestCheckClean_<label>``): trees are built in every state a pyc can be in
and the verdicts, exit statuses and JSON reports of ``check`` are asserted,
``check --import`` is run against compiled, stale and broken packages, and
``clean`` is run in each of its modes on one tree holding every kind of
file, asserting exactly which files went and that everything else (outside
the tree included) is byte for byte untouched.  ``CheckCleanUsageTests``
holds the interpreter-independent usage errors.
"""

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402

STATUSES = ['ok', 'missing', 'stale-mtime', 'stale-size', 'stale-hash', 'wrong-magic',
            'wrong-mode', 'corrupt', 'unreadable', 'stale-on-arrival']

# a problem line of `check`: "PATH: status (detail)"
_LINE = re.compile(r'^(?P<path>.*): (?P<status>%s|orphan|sourceless) \((?P<detail>.*)\)$'
                   % '|'.join(re.escape(s) for s in STATUSES[1:]))
_CHECK_SUMMARY = re.compile(
    r'^prepyc: check: (?P<sources>\d+) sources?, (?P<ok>\d+) pycs? ok, (?P<problems>\d+) '
    r'problems?(?P<counts>(?:, \d+ [a-z-]+)*); (?P<orphans>\d+) orphans?, '
    r'(?P<sourceless>\d+) sourceless \((?P<targets>.*)\)$', re.M)
# check --import's summary, passing or not: the real counts
_IMPORT_SUMMARY = re.compile(
    r'^prepyc: check --import: (?:(?P<imported>\d+) of )?(?P<n>\d+) modules? imported'
    r'(?: \((?P<failed>\d+) failed\))?, (?P<loaded>\d+) loaded, (?P<compiled>\d+) sources? '
    r'compiled at import, (?P<written>\d+) bytecode writes? attempted'
    r'(?:, (?P<lazy>\d+) lazy imports? made eager)?'
    r'(?:, (?P<outside>\d+) from outside the (?:checked paths|working directory))?'
    r'(?P<unfinished>, did not finish)? \((?P<t>.*)\)$', re.M)


def import_summary_ok(m):
    """Is this summary match a passing one?"""
    return (m is not None and m.group('imported') is None and m.group('failed') is None
            and m.group('compiled') == '0' and m.group('written') == '0'
            and m.group('unfinished') is None)

_CLEAN_SUMMARY = re.compile(
    r'^prepyc: clean: removed (?P<n>\d+) pycs? \((?P<mb>[\d.]+) MB\) and (?P<dirs>\d+) empty '
    r'__pycache__ director(?:y|ies)$', re.M)
_CLEAN_DRY_SUMMARY = re.compile(r'^prepyc: clean: would remove (?P<n>\d+) pycs? \([\d.]+ MB\)$',
                                re.M)

TEN_S = 10 * 10**9
IS_ROOT = hasattr(os, 'geteuid') and os.geteuid() == 0


def rd(path):
    with open(path, 'rb') as f:
        return f.read()


def wr(path, data):
    d = os.path.dirname(path)
    if d:
        os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode('utf-8')
    with open(path, 'wb') as f:
        f.write(data)


def touch_forward(path, ns=TEN_S):
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + ns))


def rewrite_keep_mtime(path, data):
    """Replace a file's content, keeping its mtime."""
    st = os.stat(path)
    wr(path, data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def snapshot_tree(root):
    """{relpath: description} of everything under root, symlinks not
    followed: ('dir',), ('link', target), ('file', bytes, mode) or ('other',)."""
    snap = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                snap[rel] = ('link', os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                snap[rel] = ('dir',)
            elif stat.S_ISREG(st.st_mode):
                snap[rel] = ('file', rd(p), stat.S_IMODE(st.st_mode))
            else:
                snap[rel] = ('other',)
        # os.walk lists symlinks to directories in dirnames without entering them
    return snap


def chattr_works(probe_dir):
    """Can we make a directory immutable (root's way to make unlink fail)?"""
    if not shutil.which('chattr'):
        return False
    d = tempfile.mkdtemp(dir=probe_dir)
    try:
        r = subprocess.run(['chattr', '+i', d], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        if r.returncode != 0:
            return False
        subprocess.run(['chattr', '-i', d], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return True
    finally:
        shutil.rmtree(d, True)


class CheckCleanBase(unittest.TestCase):

    def setUp(self):
        support.require_prepyc()
        self.tmp = tempfile.mkdtemp(prefix='prepyc-e2e-cc-')
        self.addCleanup(self._rmtree, self.tmp)

    @staticmethod
    def _rmtree(path):
        # chmod'ed directories and files must not stop the removal
        for dirpath, dirnames, filenames in os.walk(path):
            for name in dirnames:
                p = os.path.join(dirpath, name)
                if not os.path.islink(p):
                    try:
                        os.chmod(p, 0o755)
                    except OSError:
                        pass
        shutil.rmtree(path, True)

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def assertRc(self, res, rc, msg=''):
        self.assertFalse(res.timed_out, 'timed out\n%s' % res)
        self.assertEqual(res.rc, rc, '%s\n%s' % (msg, res))

    def load_json(self, res):
        try:
            return json.loads(res.out)
        except ValueError as e:
            self.fail('stdout is not a JSON document (%s)\n%s' % (e, res))


class InterpreterTests(CheckCleanBase):
    candidate = None   # set on the generated subclasses

    @classmethod
    def setUpClass(cls):
        if cls.candidate is None:
            raise unittest.SkipTest('abstract base')
        if cls.candidate.interp is None:
            raise unittest.SkipTest(cls.candidate.reason)
        cls.py = cls.candidate.interp
        cls.other = None  # another interpreter: other magic number and other cache tag
        for i in support.interpreters():
            if i.magic != cls.py.magic and i.cache_tag != cls.py.cache_tag:
                cls.other = i
                break

    # -- helpers -----------------------------------------------------------

    @property
    def has_hash(self):
        return self.py.version >= (3, 7)

    def magic_num(self, magic=None):
        m = magic if magic is not None else self.py.magic
        return m[0] | m[1] << 8

    def compile(self, args, env=None, python=None):
        res = support.run_prepyc(['compile', '--python', (python or self.py).path, '-q']
                                 + list(args), cwd=self.tmp, env=env, timeout=120)
        self.assertRc(res, 0, 'setup: compiling failed')
        return res

    def check(self, args, cwd=None, env=None, pythons=None, timeout=120):
        pys = []
        for p in (pythons or [self.py]):
            pys += ['--python', p.path]
        return support.run_prepyc(['check'] + pys + list(args), cwd=cwd or self.tmp, env=env,
                                  timeout=timeout)

    def check_json(self, args, rc, **kw):
        res = self.check(['--json'] + list(args), **kw)
        self.assertRc(res, rc)
        doc = self.load_json(res)
        return res, doc

    def clean(self, args, cwd=None):
        return support.run_prepyc(['clean', '--python', self.py.path] + list(args),
                                  cwd=cwd or self.tmp, timeout=120)

    def pyc_rel(self, src_rel, opt=0, tag=None):
        d, name = os.path.split(src_rel)
        base = name[:-3]
        tag = tag or self.py.cache_tag
        return os.path.join(d, '__pycache__',
                            '%s.%s%s.pyc' % (base, tag, '.opt-%d' % opt if opt else ''))

    def file_statuses(self, doc, level=0, tag=None):
        tag = tag or self.py.cache_tag
        return {f['source']: f['status'] for f in doc['files']
                if f['optimization'] == level and f['cache_tag'] == tag}

    def problem_lines(self, out):
        """[(path, status, detail)] of check's output lines, and the summary match."""
        lines, summary = [], None
        for line in out.splitlines():
            m = _LINE.match(line)
            if m:
                lines.append((m.group('path'), m.group('status'), m.group('detail')))
                continue
            s = _CHECK_SUMMARY.match(line)
            if s:
                summary = s
                continue
            self.fail('unexpected line in check output: %r\n%s' % (line, out))
        return lines, summary

    def summary_counts(self, summary):
        counts = {}
        for part in summary.group('counts').split(', ')[1:]:
            n, name = part.split(' ', 1)
            counts[name] = int(n)
        return counts

    def other_magic(self):
        n = self.magic_num()
        fake = (n + 1) & 0xffff
        return fake.to_bytes(2, 'little') + self.py.magic[2:], fake

    # -- check: every status in one tree -------------------------------------

    def build_status_tree(self):
        """A tree 'c' with one source per state; returns
        ({source: expected status}, {source: detail regex}, orphans, sourceless)."""
        names = ['ok', 'touched', 'resized', 'magic', 'trunc', 'garbage', 'halfbody',
                 'dirpyc', 'fifo', 'missing', 'dangling', 'linked']
        if self.has_hash:
            names += ['hashc', 'hashu', 'hashok', 'flags']
        if not IS_ROOT:
            names += ['noperm']
        files = {'c/%s.py' % n: 'X = "%s"\n' % n for n in names}
        files['c/sub/__init__.py'] = ''
        files['c/sub/deep.py'] = 'D = 1\n'
        # symlinked directory pointing out of the tree: never entered
        files['outside_c/stale.py'] = 'S = 1\n'
        support.write_tree(self.tmp, files)
        self.compile(['c'])
        if self.has_hash:
            self.compile(['--invalidation-mode', 'checked-hash', 'c/hashc.py', 'c/hashok.py'])
            self.compile(['--invalidation-mode', 'unchecked-hash', 'c/hashu.py'])
        P = lambda n: self.path('c', self.pyc_rel(n + '.py'))  # noqa: E731
        S = lambda n: self.path('c', n + '.py')  # noqa: E731
        hl = self.py.header_size
        ok_pyc = rd(P('ok'))
        expect = {'c/ok.py': 'ok', 'c/sub/__init__.py': 'ok', 'c/sub/deep.py': 'ok'}
        detail = {}

        touch_forward(S('touched'))
        expect['c/touched.py'] = 'stale-mtime'
        rewrite_keep_mtime(S('resized'), 'X = "resized"  # longer\n')
        expect['c/resized.py'] = 'stale-size'
        fake, fake_n = self.other_magic()
        wr(P('magic'), fake + rd(P('magic'))[4:])
        expect['c/magic.py'] = 'wrong-magic'
        detail['c/magic.py'] = r'\b%d\b.*\b%d\b' % (fake_n, self.magic_num())
        wr(P('trunc'), rd(P('trunc'))[:8])
        expect['c/trunc.py'] = 'corrupt'
        data = rd(P('garbage'))
        wr(P('garbage'), data[:hl] + b'\x00garbage\x00\x01')
        expect['c/garbage.py'] = 'corrupt'
        data = rd(P('halfbody'))
        wr(P('halfbody'), data[:hl + (len(data) - hl) // 2])
        expect['c/halfbody.py'] = 'corrupt'
        os.unlink(P('dirpyc'))
        os.mkdir(P('dirpyc'))
        expect['c/dirpyc.py'] = 'unreadable'
        os.unlink(P('fifo'))
        os.mkfifo(P('fifo'))
        expect['c/fifo.py'] = 'unreadable'
        os.unlink(P('missing'))
        expect['c/missing.py'] = 'missing'
        os.unlink(P('dangling'))
        os.symlink('nowhere.pyc', P('dangling'))
        expect['c/dangling.py'] = 'missing'
        # a pyc that is a symlink to a fresh pyc elsewhere: the import system follows it
        os.makedirs(self.path('outside_c'), exist_ok=True)
        os.rename(P('linked'), self.path('outside_c', 'linked-target.pyc'))
        os.symlink(self.path('outside_c', 'linked-target.pyc'), P('linked'))
        expect['c/linked.py'] = 'ok'
        if self.has_hash:
            rewrite_keep_mtime(S('hashc'), 'X = "HASHC"\n')
            expect['c/hashc.py'] = 'stale-hash'
            detail['c/hashc.py'] = r'(?<!un)checked-hash'
            rewrite_keep_mtime(S('hashu'), 'X = "HASHU"\n')
            expect['c/hashu.py'] = 'stale-hash'
            detail['c/hashu.py'] = r'unchecked-hash'
            expect['c/hashok.py'] = 'ok'
            data = rd(P('flags'))
            wr(P('flags'), data[:4] + (4).to_bytes(4, 'little') + data[8:])
            expect['c/flags.py'] = 'corrupt'
            detail['c/flags.py'] = r'0x4\b'
        if not IS_ROOT:
            os.chmod(P('noperm'), 0)
            expect['c/noperm.py'] = 'unreadable'
        # orphans (any cache tag, any level) and sourceless legacy pycs
        other_tag = self.other.cache_tag if self.other else 'cpython-35'
        orphans = ['c/__pycache__/gone.%s.pyc' % self.py.cache_tag,
                   'c/__pycache__/gone2.%s.pyc' % other_tag,
                   'c/sub/__pycache__/gone3.%s.opt-1.pyc' % self.py.cache_tag]
        for o in orphans:
            wr(self.path(o), ok_pyc)
        sourceless = ['c/legacy.pyc', 'c/sub/old.pyc']
        for s in sourceless:
            wr(self.path(s), ok_pyc)
        wr(self.path('c/ok.pyc'), ok_pyc)            # legacy pyc with its source: no warning
        wr(self.path('c/__pycache__/notes.txt'), 'not a pyc\n')
        # outside the tree, reached only through a symlinked directory
        wr(self.path('outside_c/__pycache__/orph.%s.pyc' % self.py.cache_tag), ok_pyc)
        wr(self.path('outside_c/lonely.pyc'), ok_pyc)
        os.symlink(os.path.join('..', 'outside_c'), self.path('c', 'linkdir'))
        return expect, detail, sorted(orphans), sorted(sourceless)

    def test_check_statuses_json(self):
        expect, detail, orphans, sourceless = self.build_status_tree()
        res, doc = self.check_json(['c'], 1)
        self.assertIs(doc['ok'], False)
        self.assertEqual(doc['targets'], [{
            'python': self.py.path, 'implementation': self.py.impl,
            'version': '%d.%d.%d' % self.py.version, 'cache_tag': self.py.cache_tag,
            'magic': self.magic_num()}])
        self.assertEqual(self.file_statuses(doc), expect, res)
        self.assertEqual(len(doc['files']), len(expect), 'one verdict per source and level')
        want_counts = {s: 0 for s in STATUSES}
        for s in expect.values():
            want_counts[s] += 1
        want_counts['orphan'] = len(orphans)
        want_counts['sourceless'] = len(sourceless)
        self.assertEqual(doc['counts'], want_counts)
        self.assertEqual(sorted(doc['orphans']), orphans)
        self.assertEqual(sorted(doc['sourceless']), sourceless)
        for f in doc['files']:
            self.assertEqual(f['pyc'], os.path.join('c', self.pyc_rel(f['source'][2:])), f)
            self.assertEqual((f['cache_tag'], f['optimization']), (self.py.cache_tag, 0), f)
            if f['status'] not in ('ok', 'missing'):
                self.assertTrue(f['detail'], 'no detail for %r' % f)
            if f['source'] in detail:
                self.assertRegex(f['detail'], detail[f['source']], f)
        for f in doc['files']:
            self.assertNotIn('outside_c', f['source'])
            self.assertNotIn('linkdir', f['source'])

    def test_check_statuses_text(self):
        expect, detail, orphans, sourceless = self.build_status_tree()
        res = self.check(['c'])
        self.assertRc(res, 1)
        lines, summary = self.problem_lines(res.out)
        self.assertIsNotNone(summary, 'no summary line\n%s' % res)
        want = set()
        for src, st in expect.items():
            if st == 'ok':
                continue
            # the source first (what a person fixes), then the pyc
            want.add((src, st, os.path.join('c', self.pyc_rel(src[2:]))))
        for o in orphans:
            want.add((o, 'orphan', None))
        for s in sourceless:
            want.add((s, 'sourceless', None))
        got = set((p, s, d.split(': ', 1)[0] if s in STATUSES else None) for p, s, d in lines)
        self.assertEqual(got, want, res)
        self.assertEqual(len(lines), len(want), 'a line printed twice\n%s' % res)
        for p, s, d in lines:
            if s == 'orphan':
                self.assertIn(p.replace('__pycache__/', '').split('.')[0], d)
            if s == 'sourceless':
                self.assertIn(p[:-1], d)
            if s == 'stale-mtime':
                self.assertRegex(d, r'\d+.*\d+')
        self.assertEqual(int(summary.group('sources')), len(expect))
        self.assertEqual(int(summary.group('ok')), list(expect.values()).count('ok'))
        self.assertEqual(int(summary.group('problems')),
                         len(expect) - list(expect.values()).count('ok'))
        self.assertEqual((int(summary.group('orphans')), int(summary.group('sourceless'))),
                         (len(orphans), len(sourceless)))
        want_counts = {}
        for s in expect.values():
            if s != 'ok':
                want_counts[s] = want_counts.get(s, 0) + 1
        self.assertEqual(self.summary_counts(summary), want_counts)
        self.assertIn(self.py.version_str, summary.group('targets'))
        # --strict changes nothing here (already failing); -q drops the summary, -qq all
        self.assertRc(self.check(['--strict', 'c']), 1)
        q = self.check(['-q', 'c'])
        self.assertRc(q, 1)
        self.assertNotRegex(q.out, r'prepyc: check:')
        self.assertEqual(sorted(q.out.splitlines()),
                         sorted(l for l in res.out.splitlines() if not l.startswith('prepyc:')))
        qq = self.check(['-qq', 'c'])
        self.assertRc(qq, 1)
        self.assertEqual(qq.out, '')

    def test_check_exclude(self):
        expect, detail, orphans, sourceless = self.build_status_tree()
        bad = sorted(os.path.basename(s)[:-3] for s, st in expect.items() if st != 'ok')
        rx = r'/(%s)\.py$' % '|'.join(re.escape(b) for b in bad)
        res, doc = self.check_json(['-x', rx, 'c'], 0)
        self.assertIs(doc['ok'], True)
        self.assertEqual(self.file_statuses(doc),
                         {s: 'ok' for s, st in expect.items() if st == 'ok'})
        self.assertEqual((doc['counts']['orphan'], doc['counts']['sourceless']),
                         (len(orphans), len(sourceless)))
        res = self.check(['-x', rx, 'c'])
        self.assertRc(res, 0)
        lines, summary = self.problem_lines(res.out)
        self.assertEqual(sorted(s for _, s, _ in lines),
                         ['orphan'] * len(orphans) + ['sourceless'] * len(sourceless))
        # warnings fail with --strict
        self.assertRc(self.check(['-x', rx, '--strict', 'c']), 1)
        # one excluded source: only its verdict disappears
        res, doc = self.check_json(['-x', r'touched', 'c'], 1)
        want = dict(expect)
        del want['c/touched.py']
        self.assertEqual(self.file_statuses(doc), want)

    def test_check_fresh_then_touched_then_resized(self):
        files = {'t/a.py': 'A = 1\n', 't/pkg/__init__.py': '', 't/pkg/m.py': 'M = "m"\n'}
        support.write_tree(self.tmp, files)
        self.compile(['t'])
        res, doc = self.check_json(['t'], 0)
        self.assertIs(doc['ok'], True)
        self.assertEqual(self.file_statuses(doc), {s: 'ok' for s in files})
        self.assertEqual(doc['counts']['ok'], 3)
        res = self.check(['t'])
        self.assertRc(res, 0)
        lines, summary = self.problem_lines(res.out)
        self.assertEqual(lines, [])
        self.assertEqual((summary.group('sources'), summary.group('ok'),
                          summary.group('problems')), ('3', '3', '0'))
        touch_forward(self.path('t/pkg/m.py'))
        res = self.check(['t'])
        self.assertRc(res, 1)
        lines, _ = self.problem_lines(res.out)
        self.assertEqual([(p, s) for p, s, _ in lines], [('t/pkg/m.py', 'stale-mtime')], res)
        self.assertRegex(lines[0][2], r'^t/pkg/__pycache__/%s: pyc records mtime \d+'
                         % re.escape(self.py.pyc_name('m')))
        self.compile(['t'])
        self.assertRc(self.check(['t']), 0)
        rewrite_keep_mtime(self.path('t/a.py'), 'A = 12\n')
        res, doc = self.check_json(['t'], 1)
        self.assertEqual(self.file_statuses(doc),
                         {'t/a.py': 'stale-size', 't/pkg/__init__.py': 'ok', 't/pkg/m.py': 'ok'})
        self.assertIs(doc['ok'], False)

    def test_check_orphans_and_sourceless_strict(self):
        support.write_tree(self.tmp, {'s/a.py': 'A = 1\n'})
        self.compile(['s'])
        res, doc = self.check_json(['--strict', 's'], 0)
        self.assertIs(doc['ok'], True)
        pyc = rd(self.path('s', self.pyc_rel('a.py')))
        wr(self.path('s/__pycache__/gone.%s.pyc' % self.py.cache_tag), pyc)
        res = self.check(['s'])
        self.assertRc(res, 0, 'an orphan is only a warning')
        lines, summary = self.problem_lines(res.out)
        self.assertEqual([(p, s) for p, s, _ in lines],
                         [('s/__pycache__/gone.%s.pyc' % self.py.cache_tag, 'orphan')])
        self.assertEqual(summary.group('orphans'), '1')
        res, doc = self.check_json(['--strict', 's'], 1)
        self.assertIs(doc['ok'], False)
        self.assertEqual(doc['counts']['orphan'], 1)
        self.assertEqual(self.file_statuses(doc), {'s/a.py': 'ok'})
        os.unlink(self.path('s/__pycache__/gone.%s.pyc' % self.py.cache_tag))
        wr(self.path('s/lib.pyc'), pyc)
        res, doc = self.check_json(['s'], 0)
        self.assertIs(doc['ok'], True)
        self.assertEqual((doc['sourceless'], doc['counts']['sourceless'], doc['orphans']),
                         (['s/lib.pyc'], 1, []))
        res = self.check(['--strict', 's'])
        self.assertRc(res, 1)
        lines, _ = self.problem_lines(res.out)
        self.assertEqual([(p, s) for p, s, _ in lines], [('s/lib.pyc', 'sourceless')])

    def test_check_recursion_limits(self):
        files = {'d/top.py': 'T = 1\n', 'd/sub/deep.py': 'D = 1\n', 'd/sub/sub2/deeper.py': 'E = 1\n'}
        support.write_tree(self.tmp, files)
        self.compile(['d'])
        os.unlink(self.path('d/sub/sub2', self.pyc_rel('deeper.py')))
        res, doc = self.check_json(['d'], 1)
        self.assertEqual(self.file_statuses(doc), {'d/top.py': 'ok', 'd/sub/deep.py': 'ok',
                                                   'd/sub/sub2/deeper.py': 'missing'})
        res, doc = self.check_json(['-l', 'd'], 0)
        self.assertEqual(self.file_statuses(doc), {'d/top.py': 'ok'})
        res, doc = self.check_json(['-r', '1', 'd'], 0)
        self.assertEqual(self.file_statuses(doc), {'d/top.py': 'ok', 'd/sub/deep.py': 'ok'})
        res, doc = self.check_json(['-r', '2', 'd'], 1)
        self.assertEqual(len(doc['files']), 3)
        # a file argument is checked as such
        res, doc = self.check_json(['d/sub/sub2/deeper.py', 'd/top.py'], 1)
        self.assertEqual(self.file_statuses(doc), {'d/top.py': 'ok',
                                                   'd/sub/sub2/deeper.py': 'missing'})

    def test_check_optimization_levels(self):
        files = {'o/a.py': 'A = 1\n', 'o/b.py': 'assert 1\n'}
        support.write_tree(self.tmp, files)
        self.compile(['o'])
        res, doc = self.check_json(['-o', '0', '-o', '1', 'o'], 1)
        self.assertEqual(self.file_statuses(doc, 0), {'o/a.py': 'ok', 'o/b.py': 'ok'})
        self.assertEqual(self.file_statuses(doc, 1), {'o/a.py': 'missing', 'o/b.py': 'missing'})
        self.assertEqual(sorted(f['pyc'] for f in doc['files'] if f['optimization'] == 1),
                         ['o/' + self.pyc_rel('a.py', 1), 'o/' + self.pyc_rel('b.py', 1)])
        res = self.check(['-o', '1', 'o'])
        self.assertRc(res, 1)
        lines, _ = self.problem_lines(res.out)
        self.assertEqual(sorted(lines), [('o/a.py', 'missing', 'o/' + self.pyc_rel('a.py', 1)),
                                         ('o/b.py', 'missing', 'o/' + self.pyc_rel('b.py', 1))])
        if self.py.version >= (3, 9):
            self.compile(['-o', '1', 'o'])
        else:
            self.compile(['o'], env=support.base_env(PYTHONOPTIMIZE='1'))
        self.assertTrue(os.path.isfile(self.path('o', self.pyc_rel('a.py', 1))))
        res, doc = self.check_json(['-o', '0', '-o', '1', 'o'], 0)
        self.assertEqual(len(doc['files']), 4)
        res, doc = self.check_json(['-o', '1', 'o'], 0)
        self.assertEqual(self.file_statuses(doc, 1), {'o/a.py': 'ok', 'o/b.py': 'ok'})
        self.assertEqual(len(doc['files']), 2)
        res, doc = self.check_json(['-o', '2', 'o'], 1)
        self.assertEqual(self.file_statuses(doc, 2), {'o/a.py': 'missing', 'o/b.py': 'missing'})
        touch_forward(self.path('o/b.py'))
        res, doc = self.check_json(['-o', '0', '-o', '1', 'o'], 1)
        self.assertEqual(self.file_statuses(doc, 1), {'o/a.py': 'ok', 'o/b.py': 'stale-mtime'})
        self.assertEqual(self.file_statuses(doc, 0), {'o/a.py': 'ok', 'o/b.py': 'stale-mtime'})

    def test_check_levels_are_compiles_plan(self):
        """check takes its levels and pycs from the engine's plan (issue 13):
        -o levels in compile's order (sorted, de-duplicated, -1 the target's
        own), and with -b the several levels' one pyc judged once, at the
        last level (the one compile writes it with)."""
        support.write_tree(self.tmp, {'pl/a.py': 'A = 1\n', 'pl/b.py': 'B = 1\n'})
        self.compile(['pl'])
        res, doc = self.check_json(['-o', '2', '-o', '1', '-o', '0', '-o', '1', 'pl'], 1)
        self.assertEqual([(f['source'], f['optimization']) for f in doc['files']],
                         [('pl/a.py', 0), ('pl/a.py', 1), ('pl/a.py', 2),
                          ('pl/b.py', 0), ('pl/b.py', 1), ('pl/b.py', 2)], res)
        res, doc = self.check_json(['-o', '-1', '-o', '0', 'pl'], 0)
        self.assertEqual([(f['source'], f['optimization']) for f in doc['files']],
                         [('pl/a.py', 0), ('pl/b.py', 0)], res)
        self.compile(['-b', 'pl'])
        res, doc = self.check_json(['-b', '-o', '0', '-o', '1', 'pl'], 0)
        self.assertEqual([(f['source'], f['pyc'], f['optimization']) for f in doc['files']],
                         [('pl/a.py', 'pl/a.pyc', 1), ('pl/b.py', 'pl/b.pyc', 1)], res)

    def test_check_invalidation_modes(self):
        support.write_tree(self.tmp, {'h/a.py': 'A = 1\n', 'h/b.py': 'B = 2\n'})
        self.compile(['h'])
        self.assertRc(self.check(['--invalidation-mode', 'timestamp', 'h']), 0)
        if not self.has_hash:
            return  # hash pycs are 3.7+
        res, doc = self.check_json(['--invalidation-mode', 'checked-hash', 'h'], 1)
        self.assertEqual(self.file_statuses(doc), {'h/a.py': 'wrong-mode', 'h/b.py': 'wrong-mode'})
        self.assertEqual(doc['counts']['wrong-mode'], 2)
        for f in doc['files']:
            self.assertRegex(f['detail'], r'timestamp.*checked-hash')
        res = self.check(['--invalidation-mode', 'unchecked-hash', 'h'])
        self.assertRc(res, 1)
        lines, _ = self.problem_lines(res.out)
        self.assertEqual(sorted((p, s) for p, s, _ in lines),
                         [('h/a.py', 'wrong-mode'), ('h/b.py', 'wrong-mode')])
        self.compile(['--invalidation-mode', 'checked-hash', 'h/a.py'])
        self.compile(['--invalidation-mode', 'unchecked-hash', 'h/b.py'])
        res, doc = self.check_json(['h'], 0)   # any valid mode
        res, doc = self.check_json(['--invalidation-mode', 'checked-hash', 'h'], 1)
        self.assertEqual(self.file_statuses(doc), {'h/a.py': 'ok', 'h/b.py': 'wrong-mode'})
        res, doc = self.check_json(['--invalidation-mode', 'unchecked-hash', 'h'], 1)
        self.assertEqual(self.file_statuses(doc), {'h/a.py': 'wrong-mode', 'h/b.py': 'ok'})
        res, doc = self.check_json(['--invalidation-mode', 'timestamp', 'h'], 1)
        self.assertEqual(self.file_statuses(doc), {'h/a.py': 'wrong-mode', 'h/b.py': 'wrong-mode'})
        # a hash pyc ignores the source's mtime; its bytes decide
        touch_forward(self.path('h/a.py'))
        touch_forward(self.path('h/b.py'))
        self.assertRc(self.check(['h']), 0)
        rewrite_keep_mtime(self.path('h/a.py'), 'A = 3\n')
        rewrite_keep_mtime(self.path('h/b.py'), 'B = 4\n')
        res, doc = self.check_json(['h'], 1)
        self.assertEqual(self.file_statuses(doc), {'h/a.py': 'stale-hash', 'h/b.py': 'stale-hash'})
        res = self.check(['--invalidation-mode', 'bogus', 'h'])
        self.assertRc(res, 2)

    def test_check_legacy_layout(self):
        support.write_tree(self.tmp, {'b/a.py': 'A = 1\n', 'b/sub/c.py': 'C = 1\n'})
        self.compile(['-b', 'b'])
        self.assertTrue(os.path.isfile(self.path('b/a.pyc')))
        res, doc = self.check_json(['-b', 'b'], 0)
        self.assertEqual(self.file_statuses(doc), {'b/a.py': 'ok', 'b/sub/c.py': 'ok'})
        self.assertEqual(sorted(f['pyc'] for f in doc['files']), ['b/a.pyc', 'b/sub/c.pyc'])
        # legacy pycs beside their sources are not sourceless, but not __pycache__ pycs either
        res, doc = self.check_json(['b'], 1)
        self.assertEqual(self.file_statuses(doc), {'b/a.py': 'missing', 'b/sub/c.py': 'missing'})
        self.assertEqual(doc['sourceless'], [])
        touch_forward(self.path('b/sub/c.py'))
        res = self.check(['-b', 'b'])
        self.assertRc(res, 1)
        lines, _ = self.problem_lines(res.out)
        self.assertEqual([(p, s, d.split(':')[0]) for p, s, d in lines],
                         [('b/sub/c.py', 'stale-mtime', 'b/sub/c.pyc')])

    def test_check_pycache_prefix(self):
        if self.py.version < (3, 8):
            self.skipTest('sys.pycache_prefix is 3.8+')
        support.write_tree(self.tmp, {'p/a.py': 'A = 1\n', 'p/s/b.py': 'B = 1\n'})
        prefix = self.path('prefix')
        self.compile(['p'], env=support.base_env(PYTHONPYCACHEPREFIX=prefix))
        res, doc = self.check_json(['--pycache-prefix', prefix, 'p'], 0)
        self.assertEqual(self.file_statuses(doc), {'p/a.py': 'ok', 'p/s/b.py': 'ok'})
        for f in doc['files']:
            self.assertTrue(f['pyc'].startswith(prefix + '/'), f)
            self.assertTrue(os.path.isfile(f['pyc']), f)
        res, doc = self.check_json(['p'], 1)
        self.assertEqual(self.file_statuses(doc), {'p/a.py': 'missing', 'p/s/b.py': 'missing'})

    def test_check_several_targets_and_real_wrong_magic(self):
        if self.other is None:
            self.skipTest('needs another interpreter with another magic number')
        support.write_tree(self.tmp, {'m/a.py': 'A = 1\n', 'm/b.py': 'B = 1\n'})
        self.compile(['m'])
        res, doc = self.check_json(['m'], 1, pythons=[self.py, self.other])
        self.assertEqual([(t['cache_tag'], t['magic']) for t in doc['targets']],
                         [(self.py.cache_tag, self.magic_num()),
                          (self.other.cache_tag, self.magic_num(self.other.magic))])
        self.assertEqual(self.file_statuses(doc), {'m/a.py': 'ok', 'm/b.py': 'ok'})
        self.assertEqual(self.file_statuses(doc, tag=self.other.cache_tag),
                         {'m/a.py': 'missing', 'm/b.py': 'missing'})
        self.assertEqual(doc['counts']['ok'], 2)
        self.assertEqual(doc['counts']['missing'], 2)
        self.compile(['m'], python=self.other)
        res, doc = self.check_json(['m'], 0, pythons=[self.py, self.other])
        self.assertEqual(doc['counts']['ok'], 4)
        # another interpreter's pyc under this one's name
        shutil.copy(self.path('m', self.pyc_rel('b.py', tag=self.other.cache_tag)),
                    self.path('m', self.pyc_rel('b.py')))
        res = self.check(['m'])
        self.assertRc(res, 1)
        lines, _ = self.problem_lines(res.out)
        self.assertEqual(len(lines), 1, res)
        p, s, d = lines[0]
        self.assertEqual((p, s), ('m/b.py', 'wrong-magic'))
        self.assertTrue(d.startswith('m/' + self.pyc_rel('b.py') + ': '), d)
        self.assertRegex(d, r'\b%d\b.*\b%d\b' % (self.magic_num(self.other.magic),
                                                 self.magic_num()))

    def test_check_body_that_is_not_code_is_corrupt(self):
        """A body that unmarshals to something else than a code object: the
        import system refuses it ("Non-code object"), so check must not call
        it ok."""
        support.write_tree(self.tmp, {'n/e2e_noncode_mod.py': 'X = 1\n'})
        self.compile(['n'])
        pyc = self.path('n', self.pyc_rel('e2e_noncode_mod.py'))
        data = rd(pyc)
        wr(pyc, data[:self.py.header_size] + b'i\x2a\x00\x00\x00')   # marshal of int 42
        compiled, errors = support.import_compiled(self.py, self.path('n'), ['e2e_noncode_mod'])
        self.assertIn('e2e_noncode_mod', errors, 'sanity: the import system refuses it')
        res, doc = self.check_json(['n'], 1)
        self.assertEqual(self.file_statuses(doc), {'n/e2e_noncode_mod.py': 'corrupt'}, res)

    # -- check on a stdlib copy ------------------------------------------------

    def test_check_stdlib_subset(self):
        rels = support.select_stdlib_subset(self.py.stdlib, 200)
        self.assertGreater(len(rels), 150, 'stdlib too small? %s' % self.py.stdlib)
        support.copy_files(self.py.stdlib, rels, self.path('lib'))
        res = support.run_prepyc(['compile', '--python', self.py.path, '-q', 'lib'],
                                 cwd=self.tmp, timeout=300)
        self.assertIn(res.rc, (0, 1), res)
        failed = support.prepyc_failures(res.err)
        self.assertEqual(res.rc, 1 if failed else 0, res)
        sources = set(os.path.join('lib', r) for r in rels)
        res, doc = self.check_json(['lib'], 1 if failed else 0)
        st = self.file_statuses(doc)
        self.assertEqual(set(st), sources)
        self.assertEqual({s for s, v in st.items() if v != 'ok'}, failed,
                         'exactly the sources that do not compile have no pyc')
        self.assertEqual({v for s, v in st.items() if v != 'ok'}, {'missing'} if failed else set())
        self.assertEqual(doc['counts']['ok'], len(sources) - len(failed))
        self.assertEqual(doc['counts']['orphan'] + doc['counts']['sourceless'], 0)
        if failed:
            rx = '^(%s)$' % '|'.join(re.escape(f) for f in sorted(failed))
            res, doc = self.check_json(['-x', rx, 'lib'], 0)
            self.assertEqual(len(doc['files']), len(sources) - len(failed))
        # one touched module is found among the others
        ok_sources = sorted(s for s in sources if s not in failed)
        victims = [s for s in ok_sources if s.startswith('lib/json/')] or ok_sources
        if victims:
            victim = victims[0]
            touch_forward(self.path(victim))
            res = self.check(['-q', 'lib'])
            self.assertRc(res, 1)
            lines, _ = self.problem_lines(res.out)
            stale = [(p, s) for p, s, _ in lines if s != 'missing']
            self.assertEqual(stale, [(victim, 'stale-mtime')])

    # -- check --import ----------------------------------------------------------

    IMPORT_FILES = {
        'imp/e2e_app/__init__.py': 'from . import mod\n',
        'imp/e2e_app/mod.py': 'def f():\n    return 1\n',
        'imp/e2e_app/noisy.py': ('import sys\n'
                                 'print("compile\\t/nonexistent/x.py")\n'
                                 'print("/nonexistent/y.py: compiled at import (CPython)")\n'
                                 'print("write\\t/tmp/__pycache__/z.pyc")\n'
                                 'sys.stderr.write("e2e_app.x: import failed: noise\\n")\n'
                                 'print("x" * 100000)\n'),
        'imp/e2e_app/boom.py': 'raise RuntimeError("boom at import")\n',
        'imp/e2e_quitter.py': 'import os\nos._exit(0)\n',
        'imp/e2e_top.py': 'import e2e_app.mod\nT = 1\n',
    }

    def build_import_tree(self):
        if self.py.version < (3, 8):
            self.skipTest('check --import needs audit hooks (3.8+)')
        support.write_tree(self.tmp, self.IMPORT_FILES)
        self.compile(['imp'])
        return self.path('imp')

    def check_import(self, mods, cwd, env=None, paths=()):
        args = list(paths)
        for m in mods:
            args += ['--import', m]
        return self.check(args, cwd=cwd, env=env)

    def test_import_compiled_package(self):
        imp = self.build_import_tree()
        res = self.check_import(['e2e_app', 'e2e_app.mod', 'e2e_top'], cwd=imp)
        self.assertRc(res, 0)
        m = _IMPORT_SUMMARY.search(res.out)
        self.assertTrue(import_summary_ok(m), res)
        self.assertEqual(m.group('n'), '3')
        self.assertNotRegex(res.out, r'(?m)^(?!prepyc: ).*: compiled at import')
        # the caller's environment: PYTHONPATH, from another directory
        res = self.check_import(['e2e_top'], cwd=self.tmp,
                                env=support.base_env(PYTHONPATH=imp))
        self.assertRc(res, 0)
        self.assertRegex(res.out, _IMPORT_SUMMARY)
        # without it the module is not found
        res = self.check_import(['e2e_top'], cwd=self.tmp)
        self.assertRc(res, 1)
        self.assertRegex(res.out, r'(?m)^e2e_top: import failed: ModuleNotFoundError')
        # with PATHs: both checks, both fine
        res = self.check_import(['e2e_app'], cwd=imp, paths=['.'])
        self.assertRc(res, 0)
        self.assertRegex(res.out, _CHECK_SUMMARY)
        self.assertRegex(res.out, _IMPORT_SUMMARY)

    def test_import_application_output(self):
        imp = self.build_import_tree()
        res = self.check_import(['e2e_app.noisy', 'e2e_app.mod'], cwd=imp)
        self.assertRc(res, 0, 'what the application prints is not a finding')
        m = _IMPORT_SUMMARY.search(res.out)
        self.assertIsNotNone(m, res)
        self.assertEqual(m.group('n'), '2')
        self.assertIn('x' * 100000, res.out, 'the application\'s output is passed through')

    def test_import_stale_source(self):
        imp = self.build_import_tree()
        mod = os.path.join(imp, 'e2e_app', 'mod.py')
        touch_forward(mod)
        pyc = os.path.join(imp, 'e2e_app', '__pycache__', self.py.pyc_name('mod'))
        # as on a read-only deployment: nothing can be written, the compile must still show
        with self.subTest('PYTHONDONTWRITEBYTECODE=1'):
            res = self.check_import(['e2e_top'], cwd=imp,
                                    env=support.base_env(PYTHONDONTWRITEBYTECODE='1'))
            self.assertRc(res, 1)
            compiled = re.findall(r'(?m)^(.*): compiled at import \(.*\)$', res.out)
            self.assertEqual([os.path.realpath(p) for p in compiled], [os.path.realpath(mod)], res)
            self.assertNotIn('bytecode write attempted', res.out)
            # a failing check's summary is not a passing one's: the real counts
            m = _IMPORT_SUMMARY.search(res.out)
            self.assertIsNotNone(m, res)
            self.assertFalse(import_summary_ok(m), res)
            self.assertEqual((m.group('n'), m.group('compiled'), m.group('written')),
                             ('1', '1', '0'), res)
        with self.subTest('bytecode writes allowed'):
            res = self.check_import(['e2e_top'], cwd=imp)
            self.assertRc(res, 1)
            compiled = re.findall(r'(?m)^(.*): compiled at import \(.*\)$', res.out)
            self.assertEqual([os.path.realpath(p) for p in compiled], [os.path.realpath(mod)], res)
            writes = re.findall(r'(?m)^(.*): bytecode write attempted at import \(.*\)$', res.out)
            self.assertTrue(writes, res)
            self.assertTrue(all(os.path.basename(pyc) in w for w in writes), writes)
            m = _IMPORT_SUMMARY.search(res.out)
            self.assertEqual((m.group('compiled'), m.group('written')), ('1', str(len(writes))),
                             res)
        # the import rewrote the pyc: a second run is clean
        self.assertRc(self.check_import(['e2e_top'], cwd=imp), 0)
        # with a PATH too: the path check alone finds a stale pyc
        touch_forward(mod)
        res = self.check_import(['e2e_app'], cwd=imp, paths=['.'],
                                env=support.base_env(PYTHONDONTWRITEBYTECODE='1'))
        self.assertRc(res, 1)
        self.assertIn('./e2e_app/mod.py: stale-mtime (./e2e_app/__pycache__/%s: '
                      % self.py.pyc_name('mod'), res.out)

    def test_import_errors(self):
        imp = self.build_import_tree()
        res = self.check_import(['e2e_no_such_module_xyz', 'e2e_app.mod'], cwd=imp)
        self.assertRc(res, 1)
        self.assertRegex(res.out, r'(?m)^e2e_no_such_module_xyz: import failed: '
                                  r'ModuleNotFoundError')
        self.assertNotRegex(res.out, r'(?m)^e2e_app\.mod: import failed')
        res = self.check_import(['e2e_app.mod', 'e2e_app.boom'], cwd=imp)
        self.assertRc(res, 1)
        self.assertRegex(res.out, r'(?m)^e2e_app\.boom: import failed: RuntimeError: boom at import$')
        m = _IMPORT_SUMMARY.search(res.out)
        self.assertFalse(import_summary_ok(m), res)
        self.assertEqual((m.group('imported'), m.group('n'), m.group('failed')), ('1', '2', '1'))

    def test_import_process_that_exits_during_import(self):
        """A module that ends the process at import (os._exit(0)): the modules
        after it were never imported, so the check cannot pass."""
        imp = self.build_import_tree()
        # e2e_top (stale) would be compiled, had it been imported
        touch_forward(os.path.join(imp, 'e2e_top.py'))
        res = self.check_import(['e2e_quitter', 'e2e_top'], cwd=imp,
                                env=support.base_env(PYTHONDONTWRITEBYTECODE='1'))
        self.assertNotEqual(res.rc, 0, res)
        m = _IMPORT_SUMMARY.search(res.out)
        self.assertFalse(import_summary_ok(m), res)
        if m:
            self.assertEqual(m.group('unfinished'), ', did not finish', res)
        # sanity: without the quitter the stale module is reported
        res = self.check_import(['e2e_top'], cwd=imp,
                                env=support.base_env(PYTHONDONTWRITEBYTECODE='1'))
        self.assertRc(res, 1)

    def test_import_with_json_keeps_stdout_json(self):
        imp = self.build_import_tree()
        res = self.check(['--json', '.', '--import', 'e2e_app'], cwd=imp)
        self.assertRc(res, 0)
        self.load_json(res)

    def test_import_needs_38(self):
        if self.py.version >= (3, 8):
            self.skipTest('audit hooks available')
        support.write_tree(self.tmp, {'imp/e2e_m.py': 'M = 1\n'})
        res = self.check(['--import', 'e2e_m'], cwd=self.path('imp'))
        self.assertRc(res, 2)
        self.assertIn('3.8', res.err)

    # -- clean ---------------------------------------------------------------------

    # modes: the options of each run, by name
    CLEAN_MODES = {
        'default': [],
        'other': ['--other-versions'],
        'all': ['--all'],
        'legacy': ['--legacy'],
        'legsrc': ['--legacy', '--sourceless'],
        'all-legacy': ['--all', '--legacy'],
        'all-legsrc': ['--all', '--legacy', '--sourceless'],
    }

    def build_clean_template(self):
        """Build root/ (tree/ and outside/); return ({relpath: modes that
        remove it}, {dir relpath: modes that remove it})."""
        R = self.path('tpl')
        T = os.path.join(R, 'tree')
        O = os.path.join(R, 'outside')
        EVERY = set(self.CLEAN_MODES)
        ALL = {'all', 'all-legacy', 'all-legsrc'}
        tag = self.py.cache_tag
        other_tag = self.other.cache_tag if self.other else 'cpython-35'
        srcs = ['fresh', 'stale', 'resized', 'corrupt', 'badbody', 'magic', 'lnkbad', 'lnkfresh',
                'leg_fresh', 'leg_stale', 'allgo/x', 'lnkcache/a']
        if self.has_hash:
            srcs += ['hashok', 'hashstale']
        files = {'tree/%s.py' % s: 'X = "%s"\n' % s for s in srcs}
        support.write_tree(R, files)
        self.compile([T])
        self.compile(['-b', os.path.join(T, 'leg_fresh.py'), os.path.join(T, 'leg_stale.py')])
        if self.has_hash:
            self.compile(['--invalidation-mode', 'checked-hash', os.path.join(T, 'hashok.py')])
            self.compile(['--invalidation-mode', 'unchecked-hash', os.path.join(T, 'hashstale.py')])
        PC = os.path.join(T, '__pycache__')
        P = lambda n, opt=0: os.path.join(T, self.pyc_rel(n + '.py', opt))  # noqa: E731
        rel = lambda p: os.path.relpath(p, R)  # noqa: E731
        hl = self.py.header_size
        fresh_pyc = rd(P('fresh'))
        gone = {}
        dirs_gone = {}

        gone[rel(P('fresh'))] = ALL
        shutil.copy2(P('fresh'), P('fresh', 1))          # a fresh opt-1 pyc (same header)
        gone[rel(P('fresh', 1))] = ALL
        gone[rel(P('leg_fresh'))] = ALL
        gone[rel(P('allgo/x'))] = ALL
        dirs_gone['tree/allgo/__pycache__'] = ALL
        touch_forward(os.path.join(T, 'stale.py'))
        shutil.copy2(P('stale'), P('stale', 2))
        gone[rel(P('stale'))] = EVERY
        gone[rel(P('stale', 2))] = EVERY
        rewrite_keep_mtime(os.path.join(T, 'resized.py'), 'X = "resized, longer"\n')
        gone[rel(P('resized'))] = EVERY
        wr(P('corrupt'), rd(P('corrupt'))[:8])
        gone[rel(P('corrupt'))] = EVERY
        wr(P('badbody'), rd(P('badbody'))[:hl] + b'\x00garbage')
        gone[rel(P('badbody'))] = EVERY
        wr(P('magic'), self.other_magic()[0] + rd(P('magic'))[4:])
        gone[rel(P('magic'))] = EVERY
        if self.has_hash:
            gone[rel(P('hashok'))] = ALL
            rewrite_keep_mtime(os.path.join(T, 'hashstale.py'), 'X = "HASHSTALE"\n')
            gone[rel(P('hashstale'))] = EVERY
        # orphans, of this version and another
        wr(os.path.join(PC, 'gone.%s.pyc' % tag), fresh_pyc)
        gone['tree/__pycache__/gone.%s.pyc' % tag] = EVERY
        wr(os.path.join(PC, 'gone.%s.opt-2.pyc' % tag), fresh_pyc)
        gone['tree/__pycache__/gone.%s.opt-2.pyc' % tag] = EVERY
        wr(os.path.join(PC, 'gone.%s.pyc' % other_tag), fresh_pyc)
        gone['tree/__pycache__/gone.%s.pyc' % other_tag] = EVERY
        # another version's pyc of an existing source
        wr(os.path.join(PC, 'fresh.%s.pyc' % other_tag), b'other version bytes')
        gone['tree/__pycache__/fresh.%s.pyc' % other_tag] = {'other'} | ALL
        # not of the BASE.TAG.pyc shape: only --all
        wr(os.path.join(PC, 'weird.pyc'), fresh_pyc)
        gone['tree/__pycache__/weird.pyc'] = ALL
        # never removed: non-pyc files, directories named *.pyc
        wr(os.path.join(PC, 'notes.txt'), 'keep me\n')
        wr(os.path.join(PC, 'dirpyc.%s.pyc' % tag, 'inner.txt'), 'keep me too\n')
        wr(os.path.join(PC, 'fresh.%s.pyc.d' % tag, 'x.pyc'), fresh_pyc)  # not a __pycache__
        wr(os.path.join(T, 'legdir.pyc', 'x.txt'), 'a directory named .pyc\n')
        # pycs that are symlinks: only the link may go
        wr(os.path.join(O, 'bad.pyc'), b'12345678')
        os.unlink(P('lnkbad'))
        os.symlink('../../outside/bad.pyc', P('lnkbad'))
        gone[rel(P('lnkbad'))] = EVERY
        wr(os.path.join(O, 'orphan-target.pyc'), fresh_pyc)
        os.symlink('../../outside/orphan-target.pyc', os.path.join(PC, 'lnkgone.%s.pyc' % tag))
        gone['tree/__pycache__/lnkgone.%s.pyc' % tag] = EVERY
        os.rename(P('lnkfresh'), os.path.join(O, 'fresh-target.pyc'))
        os.symlink('../../outside/fresh-target.pyc', P('lnkfresh'))
        gone[rel(P('lnkfresh'))] = ALL
        # legacy pycs
        touch_forward(os.path.join(T, 'leg_stale.py'))
        gone[rel(P('leg_stale'))] = EVERY              # its __pycache__ pyc is stale too
        gone['tree/leg_fresh.pyc'] = {'all-legacy', 'all-legsrc'}
        gone['tree/leg_stale.pyc'] = {'legacy', 'legsrc', 'all-legacy', 'all-legsrc'}
        wr(os.path.join(T, 'leg_gone.pyc'), fresh_pyc)
        gone['tree/leg_gone.pyc'] = {'legsrc', 'all-legsrc'}
        wr(os.path.join(O, 'legtarget.pyc'), fresh_pyc)
        os.symlink('../outside/legtarget.pyc', os.path.join(T, 'leglink.pyc'))
        gone['tree/leglink.pyc'] = {'legsrc', 'all-legsrc'}
        # a __pycache__ holding only an orphan: emptied, then removed
        wr(os.path.join(T, 'emptied', '__pycache__', 'only.%s.pyc' % tag), fresh_pyc)
        gone['tree/emptied/__pycache__/only.%s.pyc' % tag] = EVERY
        dirs_gone['tree/emptied/__pycache__'] = EVERY
        # a __pycache__ that keeps a non-pyc file: stays
        wr(os.path.join(T, 'keepdir', '__pycache__', 'gone.%s.pyc' % tag), fresh_pyc)
        gone['tree/keepdir/__pycache__/gone.%s.pyc' % tag] = EVERY
        wr(os.path.join(T, 'keepdir', '__pycache__', 'README'), 'keep\n')
        # a symlinked __pycache__ pointing outside: never entered
        shutil.rmtree(os.path.join(T, 'lnkcache', '__pycache__'))
        wr(os.path.join(O, 'pcache', 'a.%s.pyc' % tag), b'stale garbage')
        wr(os.path.join(O, 'pcache', 'zzz.%s.pyc' % tag), fresh_pyc)
        wr(os.path.join(O, 'pcache', 'zzz.%s.pyc' % other_tag), fresh_pyc)
        os.symlink('../../outside/pcache', os.path.join(T, 'lnkcache', '__pycache__'))
        # a symlinked directory pointing outside, full of removable things: never entered
        wr(os.path.join(O, 'pkg', 'stale.py'), 'S = 1\n')
        wr(os.path.join(O, 'pkg', '__pycache__', 'stale.%s.pyc' % tag), b'garbage')
        wr(os.path.join(O, 'pkg', '__pycache__', 'orph.%s.pyc' % tag), fresh_pyc)
        wr(os.path.join(O, 'pkg', 'src.pyc'), fresh_pyc)
        os.symlink('../outside/pkg', os.path.join(T, 'lnkdir'))
        # sanity: every listed path exists (as a file or a link)
        for p in list(gone) + list(dirs_gone):
            self.assertTrue(os.path.lexists(os.path.join(R, p)), p)
        return R, gone, dirs_gone

    def run_clean_mode(self, template, mode, extra=()):
        work = self.path('run-' + mode + ''.join(extra))
        shutil.copytree(template, work, symlinks=True)
        before = snapshot_tree(work)
        res = self.clean(list(extra) + self.CLEAN_MODES[mode] + ['tree'], cwd=work)
        after = snapshot_tree(work)
        return work, res, before, after

    def assertCleaned(self, mode, res, before, after, gone, dirs_gone):
        want_files = {p for p, modes in gone.items() if mode in modes}
        want_dirs = {p for p, modes in dirs_gone.items() if mode in modes}
        removed = set(before) - set(after)
        self.assertEqual(set(after) - set(before), set(), 'files appeared')
        self.assertEqual(sorted(removed - want_files - want_dirs), [],
                         'removed but should have stayed (%s)\n%s' % (mode, res))
        self.assertEqual(sorted((want_files | want_dirs) - removed), [],
                         'should have been removed (%s)\n%s' % (mode, res))
        changed = sorted(p for p in after if after[p] != before[p])
        self.assertEqual(changed, [], 'modified (%s)' % mode)
        m = _CLEAN_SUMMARY.search(res.out)
        self.assertIsNotNone(m, 'no summary line\n%s' % res)
        self.assertEqual((int(m.group('n')), int(m.group('dirs'))),
                         (len(want_files), len(want_dirs)), res)

    def test_clean_modes(self):
        R, gone, dirs_gone = self.build_clean_template()
        for mode in self.CLEAN_MODES:
            with self.subTest(mode=mode):
                work, res, before, after = self.run_clean_mode(R, mode)
                self.assertRc(res, 0)
                self.assertCleaned(mode, res, before, after, gone, dirs_gone)
                shutil.rmtree(work, True)

    def test_clean_verbose_and_dry_run(self):
        R, gone, dirs_gone = self.build_clean_template()
        want = {p for p, modes in gone.items() if 'default' in modes}
        want_dirs = {p for p, modes in dirs_gone.items() if 'default' in modes}
        # -n: the list is exactly what the default removes, nothing is removed
        work, res, before, after = self.run_clean_mode(R, 'default', extra=('-n',))
        self.assertRc(res, 0)
        self.assertEqual(after, before, 'a dry run removed something')
        listed = []
        for line in res.out.splitlines():
            if line.startswith('would remove '):
                listed.append(line[len('would remove '):])
            else:
                self.assertRegex(line, _CLEAN_DRY_SUMMARY)
        self.assertEqual(len(listed), len(set(listed)), 'listed twice')
        self.assertEqual(set(listed), want)
        m = _CLEAN_DRY_SUMMARY.search(res.out)
        self.assertIsNotNone(m, res)
        self.assertEqual(int(m.group('n')), len(want))
        # -v: every file and directory removed is listed
        work, res, before, after = self.run_clean_mode(R, 'default', extra=('-v',))
        self.assertRc(res, 0)
        self.assertCleaned('default', res, before, after, gone, dirs_gone)
        files, dirs = set(), set()
        for line in res.out.splitlines():
            if line.startswith('removed '):
                p = line[len('removed '):]
                (dirs if p.endswith('/') else files).add(p.rstrip('/'))
            else:
                self.assertRegex(line, _CLEAN_SUMMARY)
        self.assertEqual(files, want, res)
        self.assertEqual(dirs, want_dirs, res)
        # -q: nothing on stdout; -n -qq: nothing either
        work, res, before, after = self.run_clean_mode(R, 'default', extra=('-q',))
        self.assertRc(res, 0)
        self.assertEqual(res.out, '')
        removed = set(before) - set(after)
        self.assertEqual(removed, want | want_dirs)
        work, res, before, after = self.run_clean_mode(R, 'all', extra=('-n', '-qq'))
        self.assertRc(res, 0)
        self.assertEqual((res.out, after), ('', before))

    def test_clean_all_removes_empty_pycache(self):
        """--all: "remove every pyc and __pycache__ under the paths" — an
        already empty __pycache__ goes too, one holding other files stays."""
        support.write_tree(self.tmp, {'e/a.py': 'A = 1\n', 'e/sub/b.py': 'B = 1\n',
                                      'e/keep/__pycache__/notes.txt': 'x\n'})
        self.compile(['e/a.py'])
        os.makedirs(self.path('e/sub/__pycache__'))
        res = support.run_prepyc(['clean', '--all', 'e'], cwd=self.tmp)
        self.assertRc(res, 0)
        self.assertFalse(os.path.exists(self.path('e/__pycache__')))
        self.assertTrue(os.path.isfile(self.path('e/keep/__pycache__/notes.txt')))
        self.assertFalse(os.path.exists(self.path('e/sub/__pycache__')),
                         'an empty __pycache__ survived clean --all\n%s' % res)

    def test_clean_unremovable_file(self):
        support.write_tree(self.tmp, {'u/a.py': 'A = 1\n', 'u/sub/b.py': 'B = 1\n'})
        self.compile(['u'])
        pyc = rd(self.path('u', self.pyc_rel('a.py')))
        top_orphan = self.path('u/__pycache__/gone.%s.pyc' % self.py.cache_tag)
        locked_dir = self.path('u/sub/__pycache__')
        locked = os.path.join(locked_dir, 'gone.%s.pyc' % self.py.cache_tag)
        wr(top_orphan, pyc)
        wr(locked, pyc)
        touch_forward(self.path('u/a.py'))
        if IS_ROOT:
            if not chattr_works(self.tmp):
                self.skipTest('as root a read-only directory does not prevent removal, '
                              'and chattr +i is not available')
            lock = lambda: subprocess.run(['chattr', '+i', locked_dir], check=True)  # noqa
            unlock = lambda: subprocess.run(['chattr', '-i', locked_dir])  # noqa: E731
        else:
            lock = lambda: os.chmod(locked_dir, 0o555)  # noqa: E731
            unlock = lambda: os.chmod(locked_dir, 0o755)  # noqa: E731
        self.addCleanup(unlock)
        lock()
        try:
            res = support.run_prepyc(['clean', '--python', self.py.path, 'u'], cwd=self.tmp,
                                     timeout=60)
        finally:
            unlock()
        self.assertRc(res, 1)
        self.assertIn('u/sub/__pycache__/gone.%s.pyc' % self.py.cache_tag, res.err)
        self.assertTrue(os.path.exists(locked))
        self.assertFalse(os.path.exists(top_orphan), 'the rest is still removed\n%s' % res)
        self.assertFalse(os.path.exists(self.path('u', self.pyc_rel('a.py'))),
                         'the stale pyc is still removed\n%s' % res)
        self.assertTrue(os.path.isfile(self.path('u/sub', self.pyc_rel('b.py'))))

    def test_clean_then_check(self):
        """clean removes what check flags (orphans, stale); a compile then
        makes check pass, --strict included."""
        support.write_tree(self.tmp, {'k/a.py': 'A = 1\n', 'k/b.py': 'B = 1\n'})
        self.compile(['k'])
        wr(self.path('k/__pycache__/gone.%s.pyc' % self.py.cache_tag),
           rd(self.path('k', self.pyc_rel('a.py'))))
        touch_forward(self.path('k/b.py'))
        res, doc = self.check_json(['--strict', 'k'], 1)
        self.assertEqual(doc['counts']['stale-mtime'], 1)
        self.assertEqual(doc['counts']['orphan'], 1)
        self.assertRc(self.clean(['k']), 0)
        res, doc = self.check_json(['k'], 1)
        self.assertEqual(self.file_statuses(doc), {'k/a.py': 'ok', 'k/b.py': 'missing'})
        self.assertEqual(doc['orphans'], [])
        self.compile(['k'])
        self.check_json(['--strict', 'k'], 0)


def _generate():
    made = []
    for cand in support.candidates():
        name = 'TestCheckClean_' + cand.ident
        cls = type(name, (InterpreterTests,), {
            'candidate': cand, '__module__': __name__,
            '__doc__': 'prepyc check/clean with %s (%s)' % (cand.label, cand.path)})
        globals()[name] = cls
        made.append(cls)
    return made


_GENERATED = _generate()


class CheckCleanUsageTests(CheckCleanBase):

    @classmethod
    def setUpClass(cls):
        cls.interps = support.interpreters()

    def py(self):
        if not self.interps:
            self.skipTest('no Python 3 interpreter found')
        return self.interps[0].path

    def test_usage_errors(self):
        support.write_tree(self.tmp, {'t/a.py': 'A = 1\n'})
        cases = [
            ['check'],
            ['check', '--python', self.py()],
            ['check', '--python', self.py(), '--bogus-option', 't'],
            ['check', '--python', self.py(), '-o', '3', 't'],
            ['check', '--python', self.py(), '--invalidation-mode', 'sometimes', 't'],
            ['clean'],
            ['clean', '--python', self.py()],
            ['clean', '--python', self.py(), '--bogus-option', 't'],
        ]
        for argv in cases:
            with self.subTest(argv=argv):
                res = support.run_prepyc(argv, cwd=self.tmp, timeout=60)
                self.assertRc(res, 2)
                self.assertTrue(res.err.strip(), res)
        self.assertEqual(support.pyc_files(self.path('t')), set())

    def test_help(self):
        for cmd in ('check', 'clean'):
            res = support.run_prepyc([cmd, '--help'], cwd=self.tmp, timeout=60)
            self.assertRc(res, 0)
            self.assertIn('usage: prepyc %s' % cmd, res.out)

    def test_unusable_target(self):
        support.write_tree(self.tmp, {'t/a.py': 'A = 1\n'})
        for cmd in ('check', 'clean'):
            with self.subTest(cmd=cmd):
                res = support.run_prepyc([cmd, '--python', '/nonexistent/python3', 't'],
                                         cwd=self.tmp, timeout=60)
                self.assertRc(res, 2)

    def test_nonexistent_path(self):
        res = support.run_prepyc(['check', '--python', self.py(), 'no/such/dir'],
                                 cwd=self.tmp, timeout=60)
        self.assertRc(res, 1)
        self.assertIn('no/such/dir', res.err)


def load_tests(loader, standard_tests, pattern):
    suite = unittest.TestSuite()
    for cls in _GENERATED + [CheckCleanUsageTests]:
        suite.addTests(loader.loadTestsFromTestCase(cls))
    return suite


if __name__ == '__main__':
    unittest.main()
