"""End-to-end tests of ``prepyc compileall [--python PATH] ARGS...`` against
``PATH -m compileall ARGS...`` of every target interpreter.

The core is a differential run (``CompileallTests.differential``): a tree is
built at a fixed path (sources with fixed mtimes), ``python -m compileall
ARGS`` runs in it (``PYTHONHASHSEED=0``, serial: compileall without ``-j``),
the whole tree is moved aside, the identical tree is rebuilt at the same path
and ``prepyc compileall --python PATH ARGS`` runs in it.  Then:

- stdout is the same, line for line, and so is the exit status;
- stderr agrees loosely (the same ``file:line: XWarning: ...`` lines; nothing
  on prepyc's stderr when compileall printed nothing there);
- both trees hold the same entries (files, directories, symlinks: no temporary
  files, no stray ``__pycache__``); every pyc is byte-identical or equal after
  ``marshal.loads`` in the target (support.compare_pycs, which also compares
  ``co_filename``); the same permission bits; the same pycs hard-linked.

Two normalisations only: py_compile's temporary file name (PYC.<id>, a
memory address) is cut from error messages; where a pycache prefix is in
play, only the prefix's mirror of the tree is compared (compileall's own
imports write stdlib pycs into the prefix).

One generated TestCase class per interpreter (``TestCompileall_<label>``);
cases for options a version lacks are skipped there, and instead prepyc's
refusal (exit 2, a message naming the option and the version) is tested.
Each test has core cases, run on every interpreter, and extra cases, run on
the first CPython of each version group (3.6, 3.7-3.8, 3.9-3.12, 3.13+) to
keep the file near two minutes; PREPYC_TEST_ALL_CASES=1 runs every case
everywhere.  The deliberate differences (freshness of hash-based pycs and of
the source size, the version refusal, Ctrl-C) are tested as prepyc's own
behaviour.  compile_path() (no path arguments) is only tested with
PYTHONPYCACHEPREFIX (3.8+), so nothing is written beside the real sys.path.
"""

import ast
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

BASE_MTIME = 1600000000   # sources get BASE_MTIME + 7 * i (deterministic headers)

# -- trees ---------------------------------------------------------------------
# A tree spec maps a relative path to: str/bytes (a file), LINK(target) (a
# symlink), FIFO, or DIR (an empty directory).


class LINK(object):
    def __init__(self, target, absolute=False):
        self.target = target
        self.absolute = absolute   # target is relative to the tree root, made absolute


FIFO = object()
DIR = object()

WARN_SRC = 'def f(x):\n    assert (x, "always true")\n    return x\n'

BASIC = {
    't/a.py': 'A = 1\n',
    't/b.py': 'def f():\n    """doc"""\n    assert f\n    return {"x", "y", "z", 1.5}\n',
    't/bad.py': 'def f(:\n    pass\n',
    't/warn.py': WARN_SRC,
    't/c.pyw': 'C = 1\n',
    't/D.PY': 'D = 1\n',
    't/noext': 'N = 1\n',
    't/notes.txt': 'text\n',
    't/empty.py': '',
    't/link.py': LINK('a.py'),
    't/dangling.py': LINK('does-not-exist.py'),
    't/linkdir': LINK('sub'),
    't/fifo.py': FIFO,
    't/emptydir': DIR,
    't/dir.py/inner.py': 'I = 1\n',
    't/__pycache__/stray.py': 'S = 1\n',
    't/sub/__init__.py': '',
    't/sub/mod.py': 'from . import deeper\nX = [1, 2, 3]\n',
    't/sub/broken.py': b'x = "\xff\xfe"\n',
    't/sub/deeper/__init__.py': '"""deeper"""\n',
    't/sub/deeper/m.py': 'class C:\n    y = (-0.0, 0.0, 2j)\n',
    't/sub/deeper/bad2.py': 'x = (\n',
    't/sub/esc.py': 'import re\nR = re.compile("\\d+")\n',   # invalid escape: a warning
}

ODD = {
    'o/sp ace.py': 'A = 1\n',
    "o/q'uote.py": 'A = 2\n',
    'o/dq"uote.py': 'A = 3\n',
    'o/back\\slash.py': 'A = 4\n',
    'o/new\nline.py': 'A = 5\n',
    'o/tab\there.py': 'A = 6\n',
    'o/\u00e9t\u00e9.py': 'A = 7\n',
    'o/\U0001f600.py': 'A = 8\n',
    'o/\udcffraw.py': 'A = 9\n',           # a non-UTF-8 name (b'\xff')
    'o/-dash.py': 'A = 10\n',
    'o/nul.py': b'x = 1\x00\n',
    'o/latin.py': b'# no coding cookie\ns = "\xe9"\n',
    'o/badcookie.py': b'# -*- coding: bogus-codec -*-\nx = 1\n',
    'o/bom.py': b'\xef\xbb\xbfx = "bom"\n',
    'o/ctl\x01.py': 'def f(:\n',
    'o/err\u00e9.py': 'x = "\u00e9" +\n',
    'o/indent.py': 'def f():\nreturn 1\n',
    'o/crlf_bad.py': b'x = 1\r\ndef f(:\r\n    pass\r\n',
    'o/latin1_bad.py': b'# -*- coding: latin-1 -*-\nx = "\xe9" +\n',
    'o/nested.py': 'x = ' + '(' * 250 + ')' * 250 + '\n',
    'o/esc.py': 'x = "\\d"\n',
    'o/\udcfebad.py': 'def f(:\n',          # the error message names it: backslashreplace
    'o/sub\udcfd/x.py': 'X = 1\n',
}

MANY = dict(('many/m%02d.py' % i, ('def f(:\n' if i % 17 == 5 else
                                   'X = %d\n' % i + 'def g():\n    return %d\n' % i * (i % 5)))
            for i in range(60))


def wide_tree():
    """Over 2,048 walk entries (the walk then sorts on two threads and merges
    from both ends: walk.c), in names whose order is compileall's alone: a
    name before its extensions ('a' < 'a.b'), '-' and '.' before letters,
    upper case before lower, non-ASCII last."""
    spec = {}
    for top in ('a', 'a.b', 'a-b', 'a0', 'aa', 'B', '\u00e9', '\u00fc.x'):
        for sub in ('x', 'x.y', 'x-y'):
            for i in range(100):
                name = ('m%d' % i, 'm_%d' % i, 'M%d' % i, 'm%d.x' % i)[i % 4]
                spec['w/%s/%s/%s.py' % (top, sub, name)] = 'X = %d\n' % i
    return spec


WIDE = wide_tree()


def deep_tree(depth=12):
    spec = {}
    d = 'd'
    for i in range(depth + 1):
        spec['%s/m%d.py' % (d, i)] = 'LEVEL = %d\n' % i
        d += '/l%d' % (i + 1)
    return spec


DEEP = deep_tree()

NESTED = {
    'src/top.py': 'T = 1\n',
    'src/pkg/__init__.py': '',
    'src/pkg/mod.py': 'def f():\n    raise ValueError\n',
    'src/pkg/bad.py': 'def f(:\n',
    'src/pkg/sub/__init__.py': '',
    'src/pkg/sub/deep.py': 'def g():\n    return __file__\n',
    'src/pkg/sub/warn.py': WARN_SRC,
}

EX = {
    'x/foobar.py': 'A = 1\n',
    'x/bazbar.py': 'A = 2\n',
    'x/m1.py': 'A = 3\n',
    'x/M2.py': 'A = 4\n',
    'x/keep.py': 'A = 5\n',
    'x/sub/m3.py': 'A = 6\n',
    'x/sub/foobar.py': 'A = 7\n',
    'x/sub/keep.py': 'A = 8\n',
}

ESYM = {
    'e/real.py': 'R = 1\n',
    'e/in_link.py': LINK('real.py'),
    'e/sub/up_link.py': LINK('../real.py'),
    'e/sub/s.py': 'S = 1\n',
    'e/out_link.py': LINK('../outside/o.py'),
    'e/abs_out.py': LINK('outside/o.py', absolute=True),
    'e/abs_in.py': LINK('e/real.py', absolute=True),
    'e/dangling.py': LINK('nowhere.py'),
    'e/sub/sib_link.py': LINK('../../outside/o.py'),
    'outside/o.py': 'O = 1\n',
}

OPT = {
    'op/plain.py': 'X = 1\n',                                     # 0 == 1 == 2
    'op/doc.py': '"""doc"""\nX = 1\n',                            # 0 == 1 != 2
    'op/asrt.py': 'def f(x):\n    assert x\n    return x\n',       # 0 != 1 == 2
    'op/both.py': '"""doc"""\nassert __debug__\nX = 1\n',         # all differ
    'op/bad.py': 'def f(:\n',
    'op/sub/deep.py': 'def f():\n    """d"""\n    assert f\n',
}

ILIST = {
    'i/a.py': 'A = 1\n',
    'i/b.py': 'B = 1\n',
    'i/bad.py': 'def f(:\n',
    'i/sub/c.py': 'C = 1\n',
    'i/sub/d.py': 'D = 1\n',
    'i/\u00e9.py': 'E = 1\n',
    'other.py': 'O = 1\n',
}
ILIST_TEXT = ('i/a.py\n\n   i/sub  \nmissing.py\n./other.py\ni/\u00e9.py\n'
              'i/bad.py\n\n')
ILIST_TEXT_DUP = ILIST_TEXT + 'i/a.py\n'      # a path listed twice

# modules with unique names, for the import-without-compiling checks
IMP = {
    't/pcall_top.py': 'import pcall_pkg\nX = 1\n',
    't/pcall_pkg/__init__.py': '"""package doc"""\nfrom . import mod\n',
    't/pcall_pkg/mod.py': ('def f(x):\n    """doc"""\n    assert x, "x must be true"\n'
                           '    return x in {"alpha", "beta", "gamma"}\n'),
    't/pcall_pkg/sub/__init__.py': '',
    't/pcall_pkg/sub/deep.py': 'class C:\n    """c"""\n    y = 1.5\n',
}
IMP_MODULES = ['pcall_top', 'pcall_pkg', 'pcall_pkg.mod', 'pcall_pkg.sub', 'pcall_pkg.sub.deep']


def build_spec(root, spec):
    """Create spec under root; sources get deterministic mtimes."""
    os.makedirs(root, exist_ok=True)
    files = []
    for rel in sorted(spec):
        item = spec[rel]
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        if item is DIR:
            os.makedirs(p, exist_ok=True)
        elif item is FIFO:
            os.mkfifo(p)
        elif isinstance(item, LINK):
            os.symlink(os.path.join(root, item.target) if item.absolute else item.target, p)
        else:
            with open(p, 'wb') as f:
                f.write(item.encode('utf-8') if isinstance(item, str) else item)
            files.append(p)
    for i, p in enumerate(files):
        t = BASE_MTIME + 7 * i
        os.utime(p, (t, t))


def builder(*specs):
    """A build(w) function for one or more specs."""
    def build(w):
        for spec in specs:
            build_spec(w, spec)
    return build


def tree_state(root):
    """{'entries': {rel: kind}, 'pycs': {rel: (bytes, mode, ino, nlink)}}."""
    entries = {}
    pycs = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                kind = 'symlink'
            elif stat.S_ISDIR(st.st_mode):
                kind = 'dir'
            elif stat.S_ISREG(st.st_mode):
                kind = 'file'
            else:
                kind = 'other'
            entries[rel] = kind
            if kind == 'file' and name.endswith('.pyc'):
                with open(p, 'rb') as f:
                    pycs[rel] = (f.read(), stat.S_IMODE(st.st_mode), st.st_ino, st.st_nlink)
    return {'entries': entries, 'pycs': pycs}


def link_groups(pycs):
    """The sets of pycs (relative paths) that are hard links of each other."""
    by_ino = {}
    for rel, (data, mode, ino, nlink) in pycs.items():
        if nlink > 1:
            by_ino.setdefault(ino, set()).add(rel)
    return sorted(sorted(g) for g in by_ino.values())


_WARN_LINE = re.compile(r'^.*:\d+: \w*Warning: .*$', re.M)


def warning_lines(err):
    return set(m.group(0) for m in _WARN_LINE.finditer(err))


def first_difference(a, b):
    la, lb = a.split('\n'), b.split('\n')
    for i in range(max(len(la), len(lb))):
        x = la[i] if i < len(la) else '<no more lines>'
        y = lb[i] if i < len(lb) else '<no more lines>'
        if x != y:
            return 'line %d: compileall %r, prepyc %r' % (i + 1, x, y)
    return None


_TMP_SUFFIX = re.compile(r"(\.pyc)\.\d+'")


def normalize_out(out):
    """py_compile's temporary file is PYC.<id(path)>, a memory address that
    differs from run to run: an error naming it keeps only PYC."""
    return _TMP_SUFFIX.sub(r"\1'", out)


def compiling_lines(out):
    return [l for l in out.splitlines() if l.startswith('Compiling ')]


class DiffResult(object):
    pass


def clip(s, n=4000):
    return s if len(s) <= n else s[:n] + '\n...[%d more characters]' % (len(s) - n)


class CompileallTests(unittest.TestCase):
    candidate = None        # set on the generated subclasses
    representative = False  # runs the extra cases too

    @classmethod
    def setUpClass(cls):
        if cls.candidate is None:
            raise unittest.SkipTest('abstract base')
        if cls.candidate.interp is None:
            raise unittest.SkipTest(cls.candidate.reason)
        cls.py = cls.candidate.interp
        cls.v = cls.py.version
        cls.vxy = '%d.%d' % cls.v[:2]

    def setUp(self):
        support.require_prepyc()
        self.tmp = tempfile.mkdtemp(prefix='prepyc-e2e-ca-')
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.w = os.path.join(self.tmp, 'w')
        self.ref = os.path.join(self.tmp, 'ref')

    # -- version gates -------------------------------------------------------

    def need(self, version, what):
        if self.v < version:
            self.skipTest('%s needs Python %d.%d+ (target is %s)'
                          % (what, version[0], version[1], self.py.version_str))

    @property
    def has_inval(self):
        return self.v >= (3, 7)

    @property
    def has_39(self):
        return self.v >= (3, 9)

    # -- running -------------------------------------------------------------

    def env(self, extra=None, tool='ca'):
        env = support.base_env(PYTHONHASHSEED='0')
        for k, val in (extra or {}).items():
            if val is None:
                env.pop(k, None)
            else:
                env[k] = val
        if tool == 'pp' and 'PYTHONHASHSEED' not in (extra or {}):
            env.pop('PYTHONHASHSEED', None)   # prepyc's workers default to 0
        return env

    def run_tool(self, tool, args, cwd, env_extra=None, stdin=None):
        env = self.env(env_extra, tool)
        if tool == 'ca':
            argv = [self.py.path, '-m', 'compileall'] + list(args)
        else:
            support.require_prepyc()
            argv = [support.PREPYC, 'compileall', '--python', self.py.path] + list(args)
        return support.run(argv, cwd=cwd, env=env, stdin_data=stdin, timeout=600)

    def ca(self, args, cwd=None, **kw):
        return self.run_tool('ca', args, cwd or self.w, **kw)

    def pp(self, args, cwd=None, **kw):
        return self.run_tool('pp', args, cwd or self.w, **kw)

    def differential(self, build, args, ca_args=None, pre=(), between=None, env=None,
                     stdin=None, cwd='', exact_stderr=False, guard=None, scope=None):
        """Run compileall then prepyc on the same tree at the same path; return
        a DiffResult with .problems (empty when they agree).  scope(rel) -> bool
        limits the tree comparison to some entries."""
        args = [a(self.w) if callable(a) else a for a in args]
        ca_args = args if ca_args is None else [a(self.w) if callable(a) else a for a in ca_args]
        res = DiffResult()
        res.args, res.ca_args, res.env = args, ca_args, env
        runs = {}
        for tool in ('ca', 'pp'):
            for d in (self.w, self.ref) if tool == 'ca' else (self.w,):
                if os.path.lexists(d):
                    shutil.rmtree(d)
            build(self.w)
            run_cwd = os.path.join(self.w, cwd)
            for p in pre:
                r = self.run_tool(tool, p, run_cwd, env)
                self.assertFalse(r.timed_out, 'pre-run timed out\n%s' % r)
            if between:
                between(self.w)
            r = self.run_tool(tool, ca_args if tool == 'ca' else args, run_cwd, env, stdin)
            if guard:
                guard(tool, r)
            state = tree_state(self.w)
            if scope:
                state = {k: {rel: v for rel, v in d.items() if scope(rel)}
                         for k, d in state.items()}
            runs[tool] = (r, state)
            if tool == 'ca':
                os.rename(self.w, self.ref)
        (ca, cst), (pp, pst) = runs['ca'], runs['pp']
        res.ca, res.pp, res.ca_state, res.pp_state = ca, pp, cst, pst
        problems = []
        if ca.timed_out or pp.timed_out:
            problems.append('TIMED OUT: compileall %s, prepyc %s' % (ca.timed_out, pp.timed_out))
        if pp.rc == 0 and ('-h' in args or '--help' in args):
            # compileall's help, then prepyc's own options (and only that)
            mark = '\nprepyc compileall also takes these options of its own'
            if mark not in pp.out:
                problems.append('-h: no list of prepyc\'s own options after the help')
            pp.out = pp.out.split(mark)[0]
        if normalize_out(ca.out) != normalize_out(pp.out):
            problems.append('stdout differs: first difference at %s'
                            % first_difference(normalize_out(ca.out), normalize_out(pp.out)))
        if ca.rc != pp.rc:
            problems.append('exit status: compileall %r, prepyc %r' % (ca.rc, pp.rc))
        if exact_stderr:
            if ca.err != pp.err:
                problems.append('stderr differs: first difference at %s'
                                % first_difference(ca.err, pp.err))
        else:
            wc, wp = warning_lines(ca.err), warning_lines(pp.err)
            if wc != wp:
                problems.append('warnings on stderr differ: only compileall %s, only prepyc %s'
                                % (sorted(wc - wp)[:5], sorted(wp - wc)[:5]))
            if not ca.err.strip() and pp.err.strip():
                problems.append('prepyc wrote to stderr, compileall did not')
        ce, pe = cst['entries'], pst['entries']
        if ce != pe:
            only_c = sorted(k for k in ce if k not in pe)
            only_p = sorted(k for k in pe if k not in ce)
            kinds = sorted(k for k in ce if k in pe and ce[k] != pe[k])
            problems.append('tree entries differ: only after compileall %r; only after prepyc %r;'
                            ' other kind %r' % (only_c[:10], only_p[:10], kinds[:10]))
        common = sorted(set(cst['pycs']) & set(pst['pycs']))
        differing = [rel for rel in common if cst['pycs'][rel][0] != pst['pycs'][rel][0]]
        res.identical = len(common) - len(differing)
        if differing:
            results = support.compare_pycs(self.py, [(os.path.join(self.ref, rel),
                                                      os.path.join(self.w, rel))
                                                     for rel in differing])
            for rel, (status, detail) in zip(differing, results):
                if status == 'mismatch':
                    problems.append('pyc %s: %s' % (rel, detail))
        modes = [(rel, oct(cst['pycs'][rel][1]), oct(pst['pycs'][rel][1])) for rel in common
                 if cst['pycs'][rel][1] != pst['pycs'][rel][1]]
        if modes:
            problems.append('pyc modes differ (rel, compileall, prepyc): %s' % modes[:5])
        lc, lp = link_groups(cst['pycs']), link_groups(pst['pycs'])
        if lc != lp:
            problems.append('hard-linked pycs: compileall %s, prepyc %s' % (lc, lp))
        res.problems = problems
        return res

    def describe(self, res):
        envs = ' '.join('%s=%s' % kv for kv in sorted((res.env or {}).items()))
        head = ('%s %s: compileall %s / prepyc compileall %s%s'
                % (self.py.label, self.py.version_str, res.ca_args, res.args,
                   (' [env %s]' % envs) if envs else ''))
        return '\n'.join([head] + ['  - ' + p for p in res.problems] + [
            '--- compileall stdout (exit %r) ---' % res.ca.rc, clip(res.ca.out),
            '--- prepyc stdout (exit %r) ---' % res.pp.rc, clip(res.pp.out),
            '--- compileall stderr ---', clip(res.ca.err, 1500),
            '--- prepyc stderr ---', clip(res.pp.err, 1500)])

    def assertSame(self, build, args, **kw):
        res = self.differential(build, args, **kw)
        if res.problems:
            self.fail('prepyc compileall differs from compileall\n' + self.describe(res))
        return res

    def cases(self, build, cases, extra=(), **kw):
        """cases: [args] or [(args, dict(kw))], each a subTest.  The extra
        cases run only on one interpreter per version group (see
        _representatives) unless PREPYC_TEST_ALL_CASES=1."""
        todo = list(cases)
        if self.representative or os.environ.get('PREPYC_TEST_ALL_CASES') == '1':
            todo += list(extra)
        results = []
        for case in todo:
            args, ckw = (case if isinstance(case, tuple) else (case, {}))
            kws = dict(kw)
            kws.update(ckw)
            results.append(None)    # stays None when the case fails
            with self.subTest(args=args, **{k: v for k, v in ckw.items()
                                            if k in ('env', 'ca_args', 'pre', 'stdin')}):
                results[-1] = self.assertSame(build, args, **kws)
        return results

    # -- basics ----------------------------------------------------------------

    def test_plain_and_nested(self):
        self.cases(builder(BASIC), [['t'], ['-q', 't'], ['-qq', 't'], ['-l', 't']],
                   extra=[['t/sub'], ['-q', '-q', 't'], ['-l', '-q', 't'], ['./t/'], ['t/'],
                          ['t//sub'], [lambda w: os.path.join(w, 't')], ['.']])

    def test_odd_file_names_and_sources(self):
        support.skip_if_pyodide(self, self.py, 'a directory holding a file name that is not '
                                'UTF-8 lists as empty (Emscripten\'s file names are JavaScript '
                                'strings)')
        self.cases(builder(ODD), [['o']], extra=[['-q', 'o']])

    def test_wide_tree_in_compileall_order(self):
        support.skip_if_pyodide(self, self.py, '2,400 compiles: slow to start and run there')
        self.cases(builder(WIDE), [['w']])

    def test_recursion_levels(self):
        self.cases(builder(DEEP), [['d'], ['-r', '0', 'd'], ['-r', '1', 'd'], ['-r', '3', 'd']],
                   extra=[['-l', 'd'], ['-l', '-r', '2', 'd'], ['-r', '-1', 'd'],
                          ['-r', '1', 'd/l1/l2']])

    def test_force_and_second_runs(self):
        def touch(w):
            p = os.path.join(w, 't', 'sub', 'mod.py')
            os.utime(p, (BASE_MTIME + 5000, BASE_MTIME + 5000))

        self.cases(builder(BASIC), [
            (['t'], {'pre': [['-q', 't']]}),                  # nothing left to compile
            (['-f', 't'], {'pre': [['-q', 't']]}),            # -f after a first run
            (['t'], {'pre': [['-q', 't']], 'between': touch}),  # exactly the touched one
        ], extra=[
            (['-f', '-q', 't'], {'pre': [['-qq', 't']]}),
            (['t'], {'pre': [['-q', 't/sub']]}),              # partly compiled
            (['-fq', 't'], {'pre': [['t']]}),
        ])

    def test_arguments_files_dirs_missing_twice(self):
        self.cases(builder(BASIC, NESTED), [
            ['t/a.py', 't/sub', 't/b.py', 't/notes.txt', 't/c.pyw', 'src'],
            ['missing', 't/a.py'],                          # Listing / Can't list, exit 0
            ['t', 't'],                                     # second listing: all fresh
            ['-f', 't/sub', 't/sub'],                       # -f: compiled twice
        ], extra=[
            ['t/bad.py', 't/a.py'],
            ['t/link.py', 't/dangling.py', 't/fifo.py', 't/linkdir'],
            ['missing'], ['missing.py'], ['-q', 'missing'], ['-qq', 'missing'],
            ['t/a.py', 'missing/', 'src'],
            ['t/sub', 't'],
            ['-f', 't', './t'],                             # the last co_filename wins
            ['t/a.py', 't/a.py'],
            ['src/pkg/mod.py', 'src'],
            ['', 't/a.py'],                                 # an empty argument
            ['t/emptydir', 't/a.py/', 't/.'],
            # one directory, two spellings: the second pass finds fresh pycs
            ['t', 't/../t'],
            ['t/a.py', 't/sub/../a.py'],
            ['t/sub', 't/linkdir'],                         # a symlink given as argument
        ])

    def test_unwritable_pyc_targets(self):
        # py_compile refuses: __pycache__ is a file; the pyc is a symlink or a
        # directory (legacy too); compileall prints the OSError and goes on
        support.skip_if_pyodide(self, self.py, 'its errno numbers are WASI\'s (ENOTDIR is 54), '
                                'prepyc prints the OSError with the host\'s (20)')
        tag = self.py.pyc_name

        def b(w):
            build_spec(w, {
                'u/u1/a.py': 'A = 1\n', 'u/u1/__pycache__': 'not a directory\n',
                'u/u2/b.py': 'B = 1\n', 'u/u2/__pycache__/' + tag('b'): LINK('gone.pyc'),
                'u/u3/c.py': 'C = 1\n', 'u/u3/__pycache__/' + tag('c') + '/x': 'x\n',
                'u/u4/d.py': 'D = 1\n', 'u/u4/d.pyc': LINK('d.py'),
                'u/ok.py': 'OK = 1\n'})
        self.cases(b, [['u'], ['-q', 'u']], extra=[['-b', 'u'], ['-qq', 'u']])

    def test_legacy_b(self):
        self.cases(builder(BASIC, NESTED), [['-b', 't'], ['-b', '-q', 'src/pkg/mod.py', 't/sub']],
                   extra=[(['-b', 't'], {'pre': [['-q', 't']]}),      # __pycache__ ones exist
                          (['t'], {'pre': [['-b', '-q', 't']]}),      # legacy ones exist
                          (['-b', 't'], {'pre': [['-b', '-q', 't']]})])

    # -- co_filename: -d, -s, -p -------------------------------------------------

    def test_ddir(self):
        self.cases(builder(NESTED), [
            ['-d', '/dest', 'src'],
            ['-d', '/dest', 'src/pkg/mod.py', 'src/pkg/bad.py'],   # file arguments
            ['-d', '/dest/', './src/'],
        ], extra=[
            ['-d', 'rel/dest', 'src/pkg'],
            ['-d', '/dest', lambda w: os.path.join(w, 'src')],
            ['-d', '', 'src'],
            ['-q', '-d', '/dest', 'src', 'src/pkg/sub/deep.py'],
            ['-d', '/dest', '-l', 'src'],
            ['-b', '-d', '/dest', 'src'],
        ])

    def test_stripdir_prependdir(self):
        self.need((3, 9), '-s/-p')
        self.cases(builder(NESTED), [
            ['-s', 'src', 'src'],
            ['-p', '/app', 'src'],
            ['-s', 'src', '-p', '/app', 'src'],
            ['-s', 'other', 'src'],                         # not a prefix
            ['-s', 'src/', './src/'],
            ['-s', 'src', '-p', '/app', 'src/pkg/sub/deep.py'],
        ], extra=[
            ['-s', 'src', 'src/'],
            ['-s', 'src/pkg', 'src'],                       # a prefix of some files only
            ['-s', lambda w: w, '-p', '/', lambda w: os.path.join(w, 'src')],
            ['-p', 'rel', 'src/pkg/bad.py'],
            ['-s', './src', 'src'],                         # not a prefix as given
            ['-s', 'other/pkg', 'src'],                     # 3.9-3.12 strip equal parts
            ['-q', '-s', 'other', '-p', '/app', 'src'],
            ['-s', '', 'src'],
        ])

    # -- -e, -x, -i ----------------------------------------------------------------

    def test_limit_symlink_dest_e(self):
        self.need((3, 9), '-e')
        self.cases(builder(ESYM), [
            ['-e', 'e', 'e'],
            ['-e', lambda w: os.path.join(w, 'e'), 'e'],
            ['-e', 'e/sub', 'e'],
            ['-e', 'e', 'e/out_link.py', 'e/in_link.py'],
        ], extra=[
            ['e'],                                           # without -e: all compiled
            ['-e', 'e/', './e'],
            ['-e', '.', 'e'],
            ['-e', 'outside', 'e'],
            ['-e', '', 'e'],
        ])

    def test_exclude_regex_x(self):
        self.cases(builder(EX), [
            ['-x', '(?<!foo)bar', 'x'],
            ['-x', r'\d\.py$', 'x', 'x/m1.py'],
            ['-x', '(?i)m2|SUB/', 'x'],
        ], extra=[
            ['-x', 'x/sub/', 'x'],
            ['-x', '^x/', 'x'],
            ['-x', '^x/', './x'],
            ['-x', 'foo', 'x/foobar.py', 'x/keep.py'],
            ['-x', r'(?P<n>o)(?P=n)', 'x'],
            ['-x', '', 'x'],                # '' is not compiled: compile_file calls ''.search
            ['-q', '-x', 'keep', 'x', 'x/sub/keep.py'],
        ])

    def test_exclude_regex_invalid(self):
        # re.compile fails in compileall's main(): a traceback, exit 1, nothing compiled
        self.cases(builder(EX), [], extra=[['-x', '(unclosed', 'x']])

    def test_file_list_i(self):
        def b(w):
            build_spec(w, ILIST)
            for name, text in (('list.txt', ILIST_TEXT), ('dup.txt', ILIST_TEXT_DUP)):
                with open(os.path.join(w, name), 'w', encoding='utf-8') as f:
                    f.write(text)
            with open(os.path.join(w, 'crlf.txt'), 'wb') as f:
                f.write(b'i/a.py\r\ni/sub\r\n')
        self.cases(b, [
            ['-i', 'list.txt', 'i/b.py'],                    # blank lines: Listing ''
            (['-i', '-'], {'stdin': ILIST_TEXT}),
            ['-i', 'nofile.txt'],                            # "Error reading file list", exit 1
        ], extra=[
            ['-i', 'list.txt'],
            ['-q', '-i', 'list.txt', 'i'],
            (['-i', '-', 'i/b.py'], {'stdin': ILIST_TEXT}),
            (['-qq', '-i', '-'], {'stdin': ILIST_TEXT}),
            (['-i', '-'], {'stdin': 'i/a.py'}),              # no final newline
            ['-i', 'dup.txt'],
            ['-i', 'crlf.txt'],
            ['-i', 'nofile.txt', 'i'],
            ['-q', '-i', 'nofile.txt'],
            ['-qq', '-i', 'nofile.txt'],
            ['-i', 'i'],                                     # a directory: cannot be read
        ])

    # -- -o, --hardlink-dupes --------------------------------------------------------

    def test_optimization_levels(self):
        self.need((3, 9), '-o')
        res = self.cases(builder(OPT), [
            ['-o', '0', '-o', '1', '-o', '2', 'op'],
            ['-o', '0', '-o', '1', '-o', '2', '--hardlink-dupes', 'op'],
            ['-o', '2', '-o', '0', '-o', '2', '-o', '1', '--hardlink-dupes', 'op/doc.py', 'op/sub'],
        ], extra=[
            ['-o', '1', '-o', '2', '--hardlink-dupes', 'op'],
            ['-o', '1', 'op'],
            ['-o', '2', '-q', 'op'],
            ['-o', '-1', 'op'],
            ['-o', '-1', '-o', '1', '--hardlink-dupes', 'op'],
            ['-o0', '-o2', 'op'],
            ['-o', '1', '-o', '1', 'op'],
            ['-b', '-o', '0', '-o', '2', 'op'],
            (['-o', '0', '-o', '1', '-o', '2', '--hardlink-dupes', 'op'],
             {'pre': [['-o', '0', '-q', 'op']]}),
            (['-f', '-o', '0', '-o', '1', '--hardlink-dupes', 'op'],
             {'pre': [['-o', '0', '-o', '1', '--hardlink-dupes', '-q', 'op']]}),
            (['-o', '0', '-o', '-1', 'op'], {'env': {'PYTHONOPTIMIZE': '2'}}),
        ])
        if res[1] is not None:
            # sanity: the case really has levels that compileall hard-links
            groups = link_groups(res[1].ca_state['pycs'])
            self.assertIn(sorted(['op/__pycache__/' + self.py.pyc_name('plain', n)
                                  for n in (0, 1, 2)]), groups)
            self.assertEqual(len(groups), 3, groups)   # plain (3 links), doc, asrt

    def test_pythonoptimize_env(self):
        self.cases(builder(OPT), [(['op'], {'env': {'PYTHONOPTIMIZE': '1'}})],
                   extra=[(['-q', 'op'], {'env': {'PYTHONOPTIMIZE': '2'}})])

    # -- invalidation modes -----------------------------------------------------------

    def test_invalidation_modes(self):
        self.need((3, 7), '--invalidation-mode')
        self.cases(builder(BASIC), [
            ['--invalidation-mode', 'timestamp', 't'],
            ['--invalidation-mode', 'checked-hash', 't'],
            ['--invalidation-mode', 'unchecked-hash', 't'],
            (['t'], {'env': {'SOURCE_DATE_EPOCH': '1'}}),
        ], extra=[
            ['--invalidation-mode=checked-hash', '-q', 't'],
            ['--inv', 'unchecked-hash', 't'],
            (['--invalidation-mode', 'timestamp', 't'], {'env': {'SOURCE_DATE_EPOCH': '1'}}),
            (['t'], {'env': {'SOURCE_DATE_EPOCH': ''}}),
            ['-b', '--invalidation-mode', 'checked-hash', 't'],
        ])

    # -- the environment ------------------------------------------------------------------

    def test_warnings_filters_from_environment(self):
        # PYTHONWARNINGS=error (like python -We -m compileall, a common CI check):
        # compile-time warnings become errors, the file fails
        self.cases(builder(BASIC), [
            (['t'], {'env': {'PYTHONWARNINGS': 'error'}}),
            (['-q', 't'], {'env': {'PYTHONWARNINGS': 'ignore'}}),
        ], extra=[
            (['-q', 't'], {'env': {'PYTHONWARNINGS': 'error::SyntaxWarning'}}),
            (['t'], {'env': {'PYTHONWARNINGS': 'error::DeprecationWarning'}}),
            (['t/sub'], {'env': {'PYTHONWARNINGS': 'always'}}),
        ])

    def prefix_scope(self, *prefixes):
        """A scope for trees with pycache prefixes inside w: compare what is
        outside the prefixes, and the prefixes' mirror of w.  (compileall's own
        imports write the pycs of stdlib modules into a prefix; prepyc's
        workers run with -B.)"""
        mirrors = [os.path.join(p, self.w.lstrip(os.sep)) for p in prefixes]

        def scope(rel):
            for p, m in zip(prefixes, mirrors):
                if rel == p or rel.startswith(p + os.sep):
                    return rel == m or rel.startswith(m + os.sep)
            return True
        return scope

    def test_pycache_prefix_env(self):
        self.need((3, 8), 'PYTHONPYCACHEPREFIX')
        self.cases(builder(BASIC, NESTED), scope=self.prefix_scope('pfx', 'relpfx'), cases=[
            (['t'], {'env': {'PYTHONPYCACHEPREFIX': os.path.join(self.w, 'pfx')}}),
            (['-d', '/dest', 'src'], {'env': {'PYTHONPYCACHEPREFIX': 'relpfx'}}),
        ], extra=[
            (['-b', 'src'], {'env': {'PYTHONPYCACHEPREFIX': 'pfx'}}),   # -b ignores it
            (['-q', 't'], {'env': {'PYTHONPYCACHEPREFIX': 'pfx'},
                           'pre': [['-q', 't/sub']]}),
        ])

    def test_source_date_epoch_old_versions(self):
        # 3.6 knows nothing of it: timestamp pycs there
        if self.has_inval:
            self.skipTest('covered by test_invalidation_modes')
        self.cases(builder(BASIC), [(['t'], {'env': {'SOURCE_DATE_EPOCH': '1'}})])

    def test_hash_pycs_prepyc_freshness(self):
        """prepyc's deliberate difference: a hash pyc whose hash matches is
        up to date; a same-size, same-mtime edit is noticed."""
        self.need((3, 7), 'hash-based pycs')
        for mode, flags in (('checked-hash', 3), ('unchecked-hash', 1)):
            with self.subTest(mode=mode):
                if os.path.lexists(self.w):
                    shutil.rmtree(self.w)
                build_spec(self.w, IMP)
                r1 = self.pp(['--invalidation-mode', mode, 't'])
                self.assertEqual(r1.rc, 0, r1)
                self.assertEqual(len(compiling_lines(r1.out)), len(IMP), r1)
                pycs = support.pyc_files(self.w)
                before = support.snapshot(self.w, pycs)
                for rel in pycs:
                    self.assertEqual(self.header(rel)[1], flags, rel)
                r2 = self.pp(['--invalidation-mode', mode, 't'])
                self.assertEqual(r2.rc, 0, r2)
                self.assertEqual(compiling_lines(r2.out), [],
                                 'second %s run recompiled up-to-date hash pycs\n%s' % (mode, r2))
                self.assertEqual(r2.out, ''.join(l + '\n' for l in r1.out.splitlines()
                                                 if l.startswith('Listing ')), r2)
                self.assertEqual(support.snapshot(self.w, pycs), before,
                                 'an up-to-date hash pyc was rewritten')
                # same size, same mtime, other content: the hash says stale
                src = os.path.join(self.w, 't', 'pcall_pkg', 'mod.py')
                st = os.stat(src)
                with open(src, 'rb') as f:
                    data = f.read()
                new = data.replace(b'"beta"', b'"BETA"')
                self.assertEqual(len(new), len(data))
                with open(src, 'wb') as f:
                    f.write(new)
                os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))
                r3 = self.pp(['--invalidation-mode', mode, 't'])
                self.assertEqual(r3.rc, 0, r3)
                self.assertEqual(compiling_lines(r3.out), ["Compiling 't/pcall_pkg/mod.py'..."], r3)
                pyc = os.path.join('t', 'pcall_pkg', '__pycache__', self.py.pyc_name('mod'))
                self.assertEqual(self.header(pyc)[2], self.source_hash(new))
                if mode == 'checked-hash':
                    compiled, errors = support.import_compiled(self.py, os.path.join(self.w, 't'),
                                                               IMP_MODULES)
                    self.assertEqual((compiled, errors), ([], {}))

    def test_mode_change_recompiles_prepyc(self):
        """prepyc's deliberate difference: a pyc of another invalidation mode
        than the one requested is recompiled (compileall keeps a timestamp pyc)."""
        self.need((3, 7), '--invalidation-mode')
        build_spec(self.w, IMP)
        steps = [(['t'], {}, 0),
                 (['--invalidation-mode', 'checked-hash', 't'], {}, 3),
                 (['--invalidation-mode', 'unchecked-hash', 't'], {}, 1),
                 (['--invalidation-mode', 'timestamp', 't'], {}, 0),
                 (['t'], {'SOURCE_DATE_EPOCH': '1'}, 3),
                 (['t'], {}, 0)]
        for args, env, flags in steps:
            r = self.pp(args, env_extra=env)
            self.assertEqual(r.rc, 0, r)
            self.assertEqual(len(compiling_lines(r.out)), len(IMP),
                             '%s %s: not everything recompiled\n%s' % (args, env, r))
            for rel in support.pyc_files(self.w):
                self.assertEqual(self.header(rel)[1], flags, '%s %s %s' % (args, env, rel))
        compiled, errors = support.import_compiled(self.py, os.path.join(self.w, 't'), IMP_MODULES)
        self.assertEqual((compiled, errors), ([], {}))

    def test_size_change_recompiles_prepyc(self):
        """prepyc's deliberate difference: the source size is compared too."""
        build_spec(self.w, IMP)
        self.assertEqual(self.pp(['-q', 't']).rc, 0)
        src = os.path.join(self.w, 't', 'pcall_pkg', 'mod.py')
        st = os.stat(src)
        with open(src, 'a') as f:
            f.write('# grown\n')
        os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))
        r = self.pp(['t'])
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(compiling_lines(r.out), ["Compiling 't/pcall_pkg/mod.py'..."], r)
        compiled, errors = support.import_compiled(self.py, os.path.join(self.w, 't'), IMP_MODULES)
        self.assertEqual((compiled, errors), ([], {}))

    def header(self, rel):
        """(magic, flags, 8 bytes after flags) of the pyc at w/rel."""
        with open(os.path.join(self.w, rel), 'rb') as f:
            data = f.read(self.py.header_size)
        if self.py.header_size == 12:
            return data[:4], 0, data[4:12]
        return data[:4], int.from_bytes(data[4:8], 'little'), data[8:16]

    def source_hash(self, data):
        r = support.run([self.py.path, '-S', '-s', '-B', '-c',
                         'import sys, importlib.util; '
                         'sys.stdout.write(importlib.util.source_hash(sys.stdin.buffer.read()).hex())'],
                        env=support.base_env(), stdin_data=data)
        self.assertEqual(r.rc, 0, r)
        return bytes.fromhex(r.out.strip())

    # -- imports -------------------------------------------------------------------

    def test_pycs_import_without_compiling(self):
        variants = [(['t'], {})]
        if self.has_inval:
            variants += [(['--invalidation-mode', 'checked-hash', 't'], {}),
                         (['t'], {'SOURCE_DATE_EPOCH': '1'})]
        for args, env in variants:
            with self.subTest(args=args, env=env):
                if os.path.lexists(self.w):
                    shutil.rmtree(self.w)
                build_spec(self.w, IMP)
                tree = os.path.join(self.w, 't')
                r = self.pp(args, env_extra=env)
                self.assertEqual(r.rc, 0, r)
                self.assertEqual(len(support.pyc_files(tree)), len(IMP))
                compiled, errors = support.import_compiled(self.py, tree, IMP_MODULES)
                self.assertEqual(errors, {})
                self.assertEqual(compiled, [], 'import compiled these despite prepyc\'s pycs')

    # -- -j ------------------------------------------------------------------------------

    def test_jobs_output_is_serial_order(self):
        # compileall -j N prints in completion order: compare with a serial run
        self.cases(builder(BASIC, DEEP, MANY), [
            (['-j', '0', 't', 'd'], {'ca_args': ['t', 'd']}),
            (['-j', '2', 't', 'd'], {'ca_args': ['t', 'd']}),
        ], extra=[
            (['-j', '2', 'many'], {'ca_args': ['many']}),
            (['-j2', '-q', 't'], {'ca_args': ['-q', 't']}),
            (['--workers', '2', 't'], {'ca_args': ['t']}),
            (['--workers=1', 't'], {'ca_args': ['t']}),
            (['--w', '2', 't'], {'ca_args': ['t']}),
            (['-j', '1', 't'], {}),
        ])

    # -- argument forms -----------------------------------------------------------------

    def test_argument_forms(self):
        self.cases(builder(BASIC, DEEP), [], extra=[
            ['-lfq', 't'], ['-fl', 't'], ['--', 't'], ['t', '-l'], ['-r3', 'd'], ['-r=2', 'd'],
            ['-l', '--', '-dash.py', 't'], ['-ql', 'd', 't/sub']])

    # -- no path arguments: sys.path -----------------------------------------------------

    def test_no_arguments_compiles_sys_path(self):
        # compile_path(): every sys.path entry, maxlevels 0.  Only where the
        # writes can be confined to a temporary directory: PYTHONPYCACHEPREFIX
        # (3.8+); a guard checks that nothing was written beside the real
        # sys.path entries.  Never with -b (legacy pycs go beside the sources).
        self.need((3, 8), 'confining compile_path() with PYTHONPYCACHEPREFIX')
        since = time.time() - 1
        pfx = os.path.join(self.w, 'pfx')
        env = {'PYTHONPATH': os.path.join(self.w, 'pp'), 'PYTHONPYCACHEPREFIX': pfx}
        spec = {'cwd/cwdmod.py': 'A = 1\n', 'cwd/cwdwarn.py': WARN_SRC,
                'cwd/cwdpkg/__init__.py': '', 'cwd/cwdpkg/inner.py': 'B = 2\n',
                'pp/ppmod.py': 'C = 3\n', 'pp/pp2.py': 'D = {1, 2}\n',
                'pp/pppkg/__init__.py': '', 'empty.txt': ''}

        def guard(tool, r):
            # nothing may have been written outside the temporary tree
            dirs = set(ast.literal_eval(m)
                       for m in re.findall(r"^Listing ('.*')\.\.\.$", r.out, re.M))
            leaks = []
            for d in dirs:
                if os.path.abspath(d).startswith(self.tmp + os.sep):
                    continue
                for sub in (d, os.path.join(d, '__pycache__')):
                    try:
                        names = os.listdir(sub)
                    except OSError:
                        continue
                    for n in names:
                        p = os.path.join(sub, n)
                        try:
                            if n.endswith('.pyc') and os.lstat(p).st_mtime > since:
                                leaks.append(p)
                        except OSError:
                            pass
            self.assertEqual(leaks, [], '%s wrote outside the temporary directories' % tool)

        snap = os.path.join(self.tmp, 'snapshot-pfx')
        if self.representative or os.environ.get('PREPYC_TEST_ALL_CASES') == '1':
            # Cold: the whole top level of the stdlib is compiled into the prefix.
            # PYTHONDONTWRITEBYTECODE=1 keeps compileall's own imports from
            # writing pycs there (see the 'self-import' case below).
            with self.subTest(cold=True):
                res = self.differential(builder(spec), [], cwd='cwd', guard=guard,
                                        env=dict(env, PYTHONDONTWRITEBYTECODE='1'))
                self.assertIn("Compiling '%s'..." % os.path.join(self.w, 'cwd', 'cwdmod.py'),
                              res.ca.out)
                self.assertIn("Compiling '%s'..." % os.path.join(self.w, 'pp', 'ppmod.py'),
                              res.ca.out)
                self.assertGreater(len(compiling_lines(res.ca.out)), 20,
                                   'the stdlib was not compiled?')
                if res.problems:
                    self.fail('prepyc compileall differs from compileall\n' + self.describe(res))
            skip = os.path.join(self.ref, 'pfx', self.w.lstrip(os.sep))
            shutil.copytree(os.path.join(self.ref, 'pfx'), snap, symlinks=True,
                            ignore=lambda d, names: [n for n in names
                                                     if os.path.join(d, n) == skip])
        else:
            empty = os.path.join(self.tmp, 'empty-cwd')
            os.makedirs(empty)
            r = support.run([self.py.path, '-m', 'compileall', '-j0'], cwd=empty,
                            env=self.env({'PYTHONPYCACHEPREFIX': snap}))
            self.assertFalse(r.timed_out, r)
            guard('compileall (snapshot)', r)

        # Warm: the stdlib's pycs are already in the prefix, so only the
        # temporary modules are compiled; compared: stdout, and the pycs of
        # the temporary directories (compileall's own imports may write pycs
        # of the stdlib's packages into the prefix).
        tmp_in_pfx = os.path.join('pfx', self.w.lstrip(os.sep)) + os.sep

        def scope(rel):
            return not rel.startswith('pfx' + os.sep) or (rel + os.sep).startswith(tmp_in_pfx)

        def warm(w):
            build_spec(w, spec)
            if os.path.isdir(snap):    # hard links: both tools replace pycs, never rewrite them
                shutil.copytree(snap, pfx, symlinks=True, copy_function=os.link)

        def warm_bad(w):
            warm(w)
            build_spec(w, {'pp/pp1bad.py': 'def f(:\n'})

        def warm_no_argparse(w):
            # compileall imports argparse, which writes its pyc into the prefix
            # before the walk: compileall then finds it up to date
            warm(w)
            pyc = os.path.join(pfx, self.py.stdlib.lstrip(os.sep), self.py.pyc_name('argparse'))
            self.assertTrue(os.path.isfile(pyc), pyc)
            os.unlink(pyc)

        variants = [([], {}),
                    (['-q', '-i', '../empty.txt'], {}),              # an empty list: sys.path
                    (['-l', '-r', '3', '-x', 'cwdmod', '-d', '/dest', '-j', '2'],
                     {'ca_args': ['-l', '-r', '3', '-x', 'cwdmod', '-d', '/dest']}),
                    ([], {'build': warm_bad}),          # a failure stops compile_path()
                    ([], {'build': warm_no_argparse})]
        if self.has_39:
            variants.append((['-o', '2', '-e', '/nonexistent'], {}))
        if self.v >= (3, 11):
            variants.append(([], {'env': dict(env, PYTHONSAFEPATH='1')}))
        for args, kw in variants:
            kws = dict(env=env, cwd='cwd', guard=guard, scope=scope)
            kws.update(kw)
            build = kws.pop('build', warm)
            with self.subTest(warm=args, env=kws['env'], build=build.__name__):
                self.assertSame(build, args, **kws)

    # -- version refusals and argparse fallbacks -----------------------------------------

    REFUSALS = [
        ((3, 9), r'-s\b', ['-s', 'x', 't']),
        ((3, 9), r'-p\b', ['-p', '/x', 't']),
        ((3, 9), r'-o\b', ['-o', '1', 't']),
        ((3, 9), r'-o\b', ['-o1', 't']),
        ((3, 9), r'-e\b', ['-e', 't', 't']),
        ((3, 9), r'-o\b|--hardlink-dupes', ['-o', '0', '-o', '1', '--hardlink-dupes', 't']),
        ((3, 7), r'--invalidation-mode', ['--invalidation-mode', 'checked-hash', 't']),
        ((3, 7), r'--invalidation-mode', ['--invalidation-mode=timestamp', 't']),
    ]

    def test_refuses_options_the_version_lacks(self):
        lacking = [r for r in self.REFUSALS if self.v < r[0]]
        if not lacking:
            self.skipTest('%s has every option' % self.py.version_str)
        for minv, needle, args in lacking:
            with self.subTest(args=args):
                if os.path.lexists(self.w):
                    shutil.rmtree(self.w)
                build_spec(self.w, BASIC)
                ca = self.ca(args)
                self.assertEqual(ca.rc, 2, 'sanity: compileall %s has %s?\n%s' % (
                    self.py.version_str, args, ca))
                self.assertIn('unrecognized arguments', ca.err)
                r = self.pp(args)
                self.assertEqual(r.rc, 2, r)
                self.assertRegex(r.err, needle)
                self.assertRegex(r.err, r'(?<![\d.])%s(?![\d])' % re.escape(self.vxy))
                self.assertEqual(support.pyc_files(self.w), set(), 'files were written')
        if self.v < (3, 9):
            # alone, --hardlink-dupes is an error in any version: exit 2, named
            r = self.pp(['--hardlink-dupes', 't'])
            self.assertEqual(r.rc, 2, r)
            self.assertIn('--hardlink-dupes', r.err)

    def test_usage_errors_are_compileall_own(self):
        # exact stdout, stderr and exit status: the target's own argparse answers
        fallbacks = [['--bogus', 't'], ['-r', 'notanumber', 't'], ['-h']]
        extra = [['--help'], ['-j', 'x', 't'], ['-r'], ['-j', '-1', 't'], ['--h'],
                 ['-x', '-foo', 't'], ['-qz', 't'], ['-l=1', 't']]
        if self.has_inval:
            extra += [['--invalidation-mode', 'bogus', 't']]
        if self.has_39:
            fallbacks += [['-d', '/x', '-s', 't', 't'], ['-o', '1', '--hardlink-dupes', 't']]
            extra += [['-o', 'x', 't'], ['--hardlink-dupes', 't'],
                      ['-o', '1', '-o', '1', '--hardlink-dupes', 't']]
        self.cases(builder(BASIC), fallbacks, extra=extra, exact_stderr=True)


# ---------------------------------------------------------------------------
# Generated per-interpreter classes
# ---------------------------------------------------------------------------

def _version_group(interp):
    v = interp.version[:2]
    for bound, name in (((3, 7), '3.6'), ((3, 9), '3.7-3.8'), ((3, 13), '3.9-3.12')):
        if v < bound:
            return name
    return '3.13+'


def _generate():
    """One class per candidate.  The 'extra' cases run on one interpreter of
    each version group (the first found), to keep the suite fast; set
    PREPYC_TEST_ALL_CASES=1 to run them everywhere."""
    made = []
    groups = set()
    for cand in support.candidates():
        name = 'TestCompileall_' + cand.ident
        representative = False
        if cand.interp is not None and cand.interp.impl == 'cpython':
            # (PyPy runs compileall 3.9's code, slowly: only the core cases)
            g = _version_group(cand.interp)
            representative = g not in groups
            groups.add(g)
        cls = type(name, (CompileallTests,), {
            'candidate': cand, '__module__': __name__, 'representative': representative,
            '__doc__': 'prepyc compileall with %s (%s)' % (cand.label, cand.path)})
        globals()[name] = cls
        made.append(cls)
    return made


_GENERATED = _generate()


class CompileallInterruptTests(unittest.TestCase):
    """Ctrl-C: compileall prints "[interrupted]" and exits 1; prepyc
    compileall exits 130 (a deliberate difference), leaving no temporary
    files and no workers."""

    def setUp(self):
        support.require_prepyc()
        self.tmp = tempfile.mkdtemp(prefix='prepyc-e2e-ca-int-')
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def test_sigint_exits_130(self):
        interps = [i for i in support.interpreters() if i.impl == 'cpython' and not i.pyodide]
        if not interps:
            self.skipTest('no CPython interpreter')
        py = interps[-1]
        body = 'def f(x):\n' + ''.join('    if x == %d: return "%d"\n' % (i, i) for i in range(2500))
        support.write_tree(os.path.join(self.tmp, 't'), {'big/m%03d.py' % i: body for i in range(120)})
        cache = os.path.join(self.tmp, 't', 'big', '__pycache__')
        proc = subprocess.Popen([support.PREPYC, 'compileall', '--python', py.path, '-j', '2', 't'],
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
            os.killpg(proc.pid, signal.SIGINT)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.assertEqual(proc.returncode, 130, 'stderr %r' % err[-2000:])
        deadline = time.monotonic() + 5
        while support.session_processes(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = support.session_processes(proc.pid)
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        self.assertEqual(left, [], 'processes left behind')
        self.assertEqual(support.pycache_junk(os.path.join(self.tmp, 't')), [])
        pycs = sorted(os.path.join(cache, n) for n in os.listdir(cache))
        self.assertTrue(pycs)
        support.pyc_info(py, pycs)    # every pyc that exists is complete
        self.assertLess(len(pycs), 120)


def load_tests(loader, standard_tests, pattern):
    suite = unittest.TestSuite()
    for cls in _GENERATED + [CompileallInterruptTests]:
        suite.addTests(loader.loadTestsFromTestCase(cls))
    return suite


if __name__ == '__main__':
    unittest.main()
