"""End-to-end tests of the canonical marshal form (marshal_write_canonical()
in src/canon.c) on the pycs each target interpreter writes.

marshal.dumps sets FLAG_REF from reference counts, and from 3.12 interned
strings are immortal, so a pyc's bytes depend on what the same process
compiled before (gh-129724, gh-98819): `compileall -j0` and a serial
compileall disagree on 3.13 (argparse.py and weakref.py).  The canonical
form must not.

One generated TestCase class per interpreter candidate
(``TestCanon_<label>``).  In each, about 300 stdlib sources (every
top-level module, the json package, and an even sample of the rest under
``sample/``) are copied into a tree and compiled there three times
(PYTHONHASHSEED=0, pycs moved aside after each run, so all three have the
same paths and headers): by ``compileall -j0``, by a serial compileall, and
a few of them each in a fresh interpreter by ``py_compile``.  ``test-tool
canon`` rewrites every pyc; then:

- the canonical pycs of the -j0 and the serial run are identical, and so
  are the fresh-process ones;
- each canonical pyc loads, in the target, to a code object equal attribute
  by attribute to its original's (floats by repr), with the same header;
- none is larger than its original;
- canonicalizing again changes nothing (``test-tool canon-check``);
- with the canonical pycs in the tree's ``__pycache__``, the target imports
  and uses a few of the modules without compiling any source of the tree.

The C side is reached through ``test-tool`` (tests/tools/test-tool.c),
named by ``PREPYC_TEST_TOOL``; the classes skip when it is not set or not
built, or when the interpreter is missing.
"""

import json
import os
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402

TEST_TOOL = os.environ.get('PREPYC_TEST_TOOL')
SAMPLE = 300
# compiled again, each in a fresh interpreter (the top-level ones that exist)
FRESH = ['argparse.py', 'weakref.py', 'typing.py', 'enum.py', 'inspect.py', 'functools.py',
         'dataclasses.py', 'string.py', 'textwrap.py', 'json/decoder.py']
# imported from the canonical pycs, each with a small use of it
IMPORTS = ['argparse', 'weakref', 'json', 'textwrap', 'difflib', 'string', 'fractions',
           'enum', 'ipaddress', 'calendar', 'shlex']

# Runs in the target (3.6+: no f-strings).  argv: tree, modules.  Like
# support.IMPORT_SCRIPT, records every source the import system has to
# compile; then uses each module and says where it was loaded from.
RUN_SCRIPT = r'''
import sys, os, importlib
import importlib._bootstrap_external as be
preloaded = set(sys.modules)
tree = os.path.realpath(sys.argv[1])
mods = sys.argv[2:]
calls = []
orig = be.SourceLoader.source_to_code
def source_to_code(self, data, path, *args, **kwargs):
    calls.append(os.path.realpath(path))
    return orig(self, data, path, *args, **kwargs)
be.SourceLoader.source_to_code = source_to_code
sys.dont_write_bytecode = True
sys.path.insert(0, tree)

def use(name, m):
    if name == 'argparse':
        p = m.ArgumentParser(prog='x')
        p.add_argument('--n', type=int, default=1)
        p.add_argument('words', nargs='*')
        a = p.parse_args(['--n', '3', 'a', 'b'])
        return [a.n, a.words, p.format_help().splitlines()[0]]
    if name == 'weakref':
        class K(object):
            pass
        k = K()
        d = m.WeakValueDictionary({'k': k})
        n = len(d)
        del k
        import gc
        gc.collect()
        return [n, len(d)]
    if name == 'json':
        return m.loads(m.dumps({'a': [1, 2.5, None, 'x\u00e9']}, sort_keys=True))
    if name == 'textwrap':
        return m.fill('alpha beta gamma delta', 11)
    if name == 'difflib':
        return list(m.unified_diff(['a\n', 'b\n'], ['a\n', 'c\n'], lineterm=''))
    if name == 'string':
        return m.Template('$x-$y').substitute(x=1, y='z')
    if name == 'fractions':
        return str(m.Fraction(1, 3) + m.Fraction('0.5'))
    if name == 'enum':
        E = m.Enum('E', 'A B')
        return [E.B.value, repr(E.A)]
    if name == 'ipaddress':
        return [str(m.ip_address('10.0.0.1') + 1), str(m.ip_network('10.0.0.0/30').broadcast_address)]
    if name == 'calendar':
        return [m.isleap(2024), m.monthrange(2024, 2)]
    if name == 'shlex':
        return m.split('a "b c" d')
    return None

out = {'compiled': [], 'errors': {}, 'where': {}, 'results': {},
       'preloaded': sorted(m for m in mods if m in preloaded)}
for name in mods:
    if name in preloaded:
        continue
    try:
        m = importlib.import_module(name)
        cached = getattr(m.__spec__, 'cached', None)
        out['where'][name] = [os.path.realpath(m.__file__), bool(cached and os.path.isfile(cached))]
        out['results'][name] = use(name, m)
    except BaseException as e:
        out['errors'][name] = '%s: %s' % (type(e).__name__, e)
import json
out['compiled'] = sorted(set(p for p in calls if p.startswith(tree + os.sep)))
sys.stdout.write(json.dumps(out))
'''

# The same uses with the interpreter's own stdlib, for the expected results.
REFERENCE_SCRIPT = RUN_SCRIPT.replace("sys.path.insert(0, tree)", "")

# Runs in the target, cwd = the work directory: compile each source in its
# own fresh interpreter, as py_compile does (same dfile as compileall's).
# Compiles one source (argv[1]) into one pyc (argv[2]), in a fresh interpreter
# (started by the tests, not by the target: Pyodide cannot start processes).
FRESH_ONE = 'import sys, py_compile; py_compile.compile(sys.argv[1], cfile=sys.argv[2], doraise=True)'


# prepyc's runs: (name, options, environment); every one must write the same bytes
PREPYC_RUNS = [
    ('pp-j1', ['-j1', '--no-cache'], {}),
    ('pp-j2', ['-j2', '--no-cache'], {}),
    ('pp-j7', ['-j7', '--no-cache'], {}),
    ('pp-shuffled-1', ['-j2', '--no-cache'], {'PREPYC_TEST_SHUFFLE': '1'}),
    ('pp-shuffled-2', ['-j7', '--no-cache'], {'PREPYC_TEST_SHUFFLE': '2'}),
    ('pp-cache-miss', ['-j2'], {'PREPYC_TEST_SHUFFLE': '3'}),
    ('pp-cache-hit', ['-j2'], {}),
]


def version_arg(py):
    return '%d.%d%s' % (py.version[0], py.version[1], 'pypy' if py.impl == 'pypy' else '')


def read(path):
    with open(path, 'rb') as f:
        return f.read()


class CanonTests(unittest.TestCase):
    candidate = None   # set on the generated subclasses

    @classmethod
    def setUpClass(cls):
        if cls.candidate is None:
            raise unittest.SkipTest('abstract base')
        if not TEST_TOOL:
            raise unittest.SkipTest('PREPYC_TEST_TOOL is not set (make test sets it)')
        if not (os.path.isfile(TEST_TOOL) and os.access(TEST_TOOL, os.X_OK)):
            raise unittest.SkipTest('PREPYC_TEST_TOOL %s is not built' % TEST_TOOL)
        if cls.candidate.interp is None:
            raise unittest.SkipTest(cls.candidate.reason)
        cls.py = cls.candidate.interp
        cls.tmp = tempfile.mkdtemp(prefix='prepyc-e2e-canon-')
        try:
            cls.prepare()
        except BaseException:
            shutil.rmtree(cls.tmp, True)
            raise

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, 'tmp', None):
            shutil.rmtree(cls.tmp, True)

    @classmethod
    def prepare(cls):
        py, tmp = cls.py, cls.tmp
        tree = cls.tree = os.path.join(tmp, 'tree')
        rels = support.stdlib_py_files(py.stdlib)
        top = [r for r in rels if '/' not in r]
        pkg = [r for r in rels if r.startswith('json/')]
        rest = [r for r in rels if r not in top and r not in pkg]
        need = max(0, SAMPLE - len(top) - len(pkg))
        step = max(1, len(rest) // need) if need else len(rest) + 1
        sample = rest[::step][:need]
        for rel in top + pkg:
            dst = os.path.join(tree, rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy2(os.path.join(py.stdlib, rel), dst)
        for rel in sample:
            dst = os.path.join(tree, 'sample', rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy2(os.path.join(py.stdlib, rel), dst)
        cls.nsources = len(top) + len(pkg) + len(sample)

        env = support.base_env(PYTHONHASHSEED=0)
        runs = {}
        for name, args in (('par', ('-j0', '-q')), ('ser', ('-q',))):
            r = support.run_compileall(py, 'tree', cwd=tmp, env=env, args=args)
            if r.timed_out:
                raise AssertionError('compileall timed out:\n%s' % r)
            runs[name] = support.move_pycs(tree, os.path.join(tmp, name))
        cls.common = sorted(runs['par'] & runs['ser'])
        cls.only_one = sorted(runs['par'] ^ runs['ser'])

        # a few sources again, each compiled by a fresh interpreter
        fresh = []
        for rel in FRESH:
            if not os.path.isfile(os.path.join(tree, rel)):
                continue
            head, base = os.path.split(rel)
            pyc = os.path.join(head, '__pycache__', py.pyc_name(base[:-3]))
            if pyc in runs['ser']:
                fresh.append((os.path.join('tree', rel), os.path.join('fresh', pyc)))
        for _, pyc in fresh:
            os.makedirs(os.path.join(tmp, os.path.dirname(pyc)), exist_ok=True)
        for src, pyc in fresh:
            r = support.run([py.path, '-S', '-s', '-c', FRESH_ONE, src, pyc], cwd=tmp, env=env)
            if r.rc != 0:
                raise AssertionError('fresh compiles failed in %s:\n%s' % (py, r))
        cls.fresh = [os.path.relpath(pyc, 'fresh') for _, pyc in fresh]

        # prepyc itself (canonical by default), in the same tree: several
        # worker counts and shuffled feeding orders (PREPYC_TEST_SHUFFLE), so
        # that each file is compiled after different others; then from a
        # cold cache, and again with every file a cache hit
        cls.pp_runs = []
        cache = os.path.join(tmp, 'cache')
        for name, args, extra in PREPYC_RUNS:
            env = support.base_env(PREPYC_CACHE_DIR=cache, **extra)
            r = support.run_prepyc(['--python', py.path, '-q'] + list(args) + ['tree'],
                                   cwd=tmp, env=env, timeout=600)
            if r.timed_out or r.rc not in (0, 1):
                raise AssertionError('prepyc %s failed:\n%s' % (name, r))
            cls.pp_runs.append((name, support.move_pycs(tree, os.path.join(tmp, name))))

        # canonicalize every pyc of the three runs
        for name, rels_ in (('par', cls.common), ('ser', cls.common), ('fresh', cls.fresh)):
            args = []
            for rel in rels_:
                dst = os.path.join(tmp, name + '.canon', rel)
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                args += [os.path.join(tmp, name, rel), dst]
            r = support.run([TEST_TOOL, 'canon', version_arg(py)] + args,
                            env=support.base_env(), timeout=600)
            if r.rc != 0 or r.timed_out:
                raise AssertionError('test-tool canon failed:\n%s' % r)

    def path(self, run, rel):
        return os.path.join(self.tmp, run, rel)

    def test_every_source_compiled_in_both_runs(self):
        self.assertGreaterEqual(len(self.common), self.nsources * 2 // 3,
                                '%d pycs for %d sources' % (len(self.common), self.nsources))
        self.assertEqual(self.only_one, [])

    def test_parallel_and_serial_give_the_same_canonical_pycs(self):
        raw = [r for r in self.common if read(self.path('par', r)) != read(self.path('ser', r))]
        differ = [r for r in self.common
                  if read(self.path('par.canon', r)) != read(self.path('ser.canon', r))]
        self.assertEqual(differ, [], 'canonical pycs differ (raw pycs differed for %d: %s)'
                         % (len(raw), raw[:10]))

    def test_fresh_process_gives_the_same_canonical_pycs(self):
        self.assertGreaterEqual(len(self.fresh), 5, self.fresh)
        differ = [r for r in self.fresh
                  if read(self.path('fresh.canon', r)) != read(self.path('ser.canon', r))]
        self.assertEqual(differ, [])

    def test_the_problem_is_there_to_solve(self):
        """Not a check of prepyc: says whether this interpreter shows the
        problem at all (3.13: argparse and weakref), which is what gives
        the two tests above their meaning there."""
        raw = [r for r in self.common if read(self.path('par', r)) != read(self.path('ser', r))]
        raw += ['fresh:' + r for r in self.fresh
                if read(self.path('fresh', r)) != read(self.path('ser', r))]
        if not raw:
            self.skipTest('%s wrote identical pycs in every process: nothing to canonicalize away'
                          % self.py.label)

    def test_prepyc_writes_the_same_bytes_in_every_run(self):
        first, want = self.pp_runs[0]
        self.assertEqual(sorted(want), self.common, 'prepyc and compileall wrote different pycs')
        for name, rels in self.pp_runs[1:]:
            self.assertEqual(rels, want, '%s wrote other pycs than %s' % (name, first))
            differ = [r for r in sorted(rels) if read(self.path(name, r)) != read(self.path(first, r))]
            self.assertEqual(differ, [], '%s and %s differ' % (name, first))

    def test_prepyc_writes_the_canonical_form_of_compileall(self):
        # prepyc canon on compileall -j0's pycs gives exactly prepyc's bytes
        first, _ = self.pp_runs[0]
        args = []
        for rel in self.common:
            dst = os.path.join(self.tmp, 'par.prepyc-canon', rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy2(self.path('par', rel), dst)
            args.append(dst)
        r = support.run_prepyc(['canon'] + args, env=support.base_env(), timeout=600)
        self.assertEqual(r.rc, 0, str(r))
        differ = [r for r in self.common
                  if read(self.path('par.prepyc-canon', r)) != read(self.path(first, r))]
        self.assertEqual(differ, [])

    def test_prepyc_pycs_load_equal_to_compileall(self):
        first, _ = self.pp_runs[0]
        pairs = [(self.path('par', r), self.path(first, r)) for r in self.common]
        results = support.compare_pycs(self.py, pairs)
        bad = ['%s: %s' % (r, d) for r, (status, d) in zip(self.common, results)
               if status == 'mismatch']
        self.assertEqual(bad, [])

    def test_no_canonical_writes_the_interpreter_bytes(self):
        # marshal.dumps flags objects nothing refers back to, so the
        # interpreter's own bytes are not canonical; canonicalized, they are
        # exactly what prepyc writes by default
        rel = 'textwrap.py'
        pyc = os.path.join('__pycache__', self.py.pyc_name('textwrap'))
        self.assertIn(pyc, self.common)
        r = support.run_prepyc(['--python', self.py.path, '-q', '-f', '--no-canonical',
                                '--no-cache', os.path.join('tree', rel)],
                               cwd=self.tmp, env=support.base_env())
        self.assertEqual(r.rc, 0, str(r))
        raw = os.path.join(self.tmp, 'raw.pyc')
        os.rename(os.path.join(self.tree, pyc), raw)
        r = support.run_prepyc(['canon', '--check', raw])
        self.assertEqual(r.rc, 1, str(r))
        r = support.run_prepyc(['canon', raw])
        self.assertEqual(r.rc, 0, str(r))
        self.assertEqual(read(raw), read(self.path('pp-j1', pyc)))

    def test_canonical_pycs_load_equal_to_the_originals(self):
        pairs = [(self.path(run, r), self.path(run + '.canon', r))
                 for run in ('par', 'ser') for r in self.common]
        pairs += [(self.path('fresh', r), self.path('fresh.canon', r)) for r in self.fresh]
        results = support.compare_pycs(self.py, pairs)
        bad = ['%s: %s' % (os.path.relpath(b, self.tmp), d)
               for (a, b), (status, d) in zip(pairs, results) if status == 'mismatch']
        self.assertEqual(bad, [])

    def test_canonical_pycs_are_never_larger(self):
        larger = ['%s: %d > %d' % (r, os.path.getsize(self.path(run + '.canon', r)),
                                   os.path.getsize(self.path(run, r)))
                  for run in ('par', 'ser') for r in self.common
                  if os.path.getsize(self.path(run + '.canon', r)) >
                  os.path.getsize(self.path(run, r))]
        self.assertEqual(larger, [])

    def test_canonicalizing_again_changes_nothing(self):
        paths = [self.path('par.canon', r) for r in self.common]
        r = support.run([TEST_TOOL, 'canon-check', version_arg(self.py)] + paths,
                        env=support.base_env(), timeout=600)
        lines = r.out.splitlines()
        self.assertEqual(len(lines), len(paths), str(r))
        bad = ['%s: %s' % (p, line) for p, line in zip(paths, lines) if line != 'canonical']
        self.assertEqual(bad, [])
        self.assertEqual(r.rc, 0, str(r))

    def test_originals_are_not_canonical(self):
        # marshal.dumps flags objects nothing refers back to, and shares
        # small ones, so its pycs are (almost) never canonical: check-mode
        # must say so rather than "canonical" for everything
        paths = [self.path('ser', r) for r in self.common[:20]]
        r = support.run([TEST_TOOL, 'canon-check', version_arg(self.py)] + paths,
                        env=support.base_env())
        self.assertIn('not-canonical', r.out.splitlines(), str(r))
        self.assertEqual(r.rc, 1, str(r))

    def test_canonical_pycs_import_and_run(self):
        tree = self.tree
        mods = [m for m in IMPORTS
                if os.path.isfile(os.path.join(tree, m + '.py')) or
                os.path.isfile(os.path.join(tree, m, '__init__.py'))]
        self.assertIn('argparse', mods)
        for rel in support.pyc_files(tree):
            os.unlink(os.path.join(tree, rel))
        support.copy_files(os.path.join(self.tmp, 'par.canon'), self.common, tree)
        try:
            r = support.run([self.py.path, '-B', '-S', '-s', '-c', RUN_SCRIPT, tree] + mods,
                            env=support.base_env(PYTHONHASHSEED=0), cwd=self.tmp)
            self.assertEqual(r.rc, 0, str(r))
            got = json.loads(r.out)
            ref = support.run([self.py.path, '-B', '-S', '-s', '-c', REFERENCE_SCRIPT, tree] + mods,
                              env=support.base_env(PYTHONHASHSEED=0), cwd=self.tmp)
            self.assertEqual(ref.rc, 0, str(ref))
            want = json.loads(ref.out)
        finally:
            for rel in support.pyc_files(tree):
                os.unlink(os.path.join(tree, rel))
        self.assertEqual(got['errors'], {})
        # (3.6 imports weakref at startup, Pyodide about 200 modules for its
        # JavaScript bridge: such modules cannot be checked)
        self.assertNotIn('argparse', got['preloaded'])
        self.assertGreaterEqual(len(got['where']),
                                len(mods) - (len(got['preloaded']) if self.py.pyodide else 2),
                                got['preloaded'])
        self.assertEqual(got['compiled'], [], 'sources compiled although a canonical pyc was there')
        real = os.path.realpath(tree) + os.sep
        outside = [m for m, (f, has_pyc) in got['where'].items()
                   if not f.startswith(real) or not has_pyc]
        self.assertEqual(outside, [], 'not loaded from the tree and its pycs')
        self.assertEqual(got['results'], want['results'])


_GENERATED = support.per_interpreter(CanonTests, 'TestCanon_', 'canonical marshal form with %s (%s)', globals())


def load_tests(loader, standard_tests, pattern):
    return support.load_generated(loader, _GENERATED)


if __name__ == '__main__':
    unittest.main()
