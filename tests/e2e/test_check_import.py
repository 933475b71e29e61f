"""End-to-end tests of ``prepyc check --import`` reporting (issue 14), lazy
imports (issue 15) and the ``-z`` listings of ``check`` and ``clean``
(issue 17).

``TestCheckImport_<label>``, one class per interpreter: ``--json --import``
carries per imported module what was compiled, written and loaded, with
``ok`` equal to the exit status; the summary line has the real counts; a
module loaded from outside the checked paths is a warning naming its file
(an error with ``--strict``), and ``-v`` lists every module's file;
``check -z`` and ``clean -z`` write NUL-terminated paths only.
``CheckImportLazyTests`` runs Python 3.15 (Pyodide, when installed) on a
``lazy import``.
"""

import json
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402

PYODIDE_315 = os.path.join(os.environ.get('PREPYC_TEST_CACHE')
                           or os.path.expanduser('~/.cache/prepyc-tests'),
                           'pyodide', '315', 'python3.15')

TEN_S = 10 * 10**9


def touch_forward(path, ns=TEN_S):
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + ns))


_SUMMARY = re.compile(
    r'^prepyc: check --import: (?:(?P<imported>\d+) of )?(?P<n>\d+) modules? imported'
    r'(?: \((?P<failed>\d+) failed\))?, (?P<loaded>\d+) loaded, (?P<compiled>\d+) sources? '
    r'compiled at import, (?P<written>\d+) bytecode writes? attempted'
    r'(?:, (?P<lazy>\d+) lazy imports? made eager)?'
    r'(?:, (?P<outside>\d+) from outside the (?:checked paths|working directory))?'
    r'(?P<unfinished>, did not finish)? \((?P<t>.*)\)$', re.M)


class ImportBase(support.InterpreterCase):
    tmp_prefix = 'prepyc-e2e-ci-'

    def run_check(self, args, cwd=None, env=None, python=None, timeout=120):
        return support.run_prepyc(['check', '--python', python or self.py.path] + list(args),
                                  cwd=cwd or self.tmp, env=env, timeout=timeout)

    def compile(self, args, cwd=None):
        res = support.run_prepyc(['compile', '--python', self.py.path, '-q'] + list(args),
                                 cwd=cwd or self.tmp, timeout=120)
        self.assertEqual(res.rc, 0, res)

    def need_import(self):
        if self.py.version < (3, 8):
            self.skipTest('check --import needs audit hooks (3.8+)')


class ImportTests(ImportBase):

    FILES = {
        'app/e2e_ci_app/__init__.py': 'from . import mod\nimport json\n',
        'app/e2e_ci_app/mod.py': 'M = 1\n',
        'app/e2e_ci_app/noisy.py': 'print("noise on stdout")\n',
        'far/e2e_ci_far.py': 'F = 1\n',
        'far/e2e_ci_farpkg/__init__.py': 'from . import sub\n',
        'far/e2e_ci_farpkg/sub.py': 'S = 1\n',
    }

    def build(self):
        self.need_import()
        support.write_tree(self.tmp, self.FILES)
        self.compile(['app', 'far'])
        return self.path('app'), self.path('far')

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def test_check_import_json_per_module(self):
        """--json --import: the JSON carries what each import compiled and
        wrote, and "ok" is the exit status (issue 14.2)."""
        app, far = self.build()
        mod = os.path.join(app, 'e2e_ci_app', 'mod.py')
        touch_forward(mod)
        res = self.run_check(['--json', '--import', 'e2e_ci_app.noisy', '--import', 'e2e_ci_app',
                              '--import', 'e2e_ci_nosuch'], cwd=app)
        self.assertEqual(res.rc, 1, res)
        doc = json.loads(res.out)   # the application's output went to stderr
        self.assertIn('noise on stdout', res.err)
        self.assertIs(doc['ok'], False, res)
        [imp] = doc['imports']
        self.assertEqual(imp['python'], self.py.path)
        self.assertIs(imp['finished'], True)
        self.assertEqual([m['module'] for m in imp['modules']],
                         ['e2e_ci_app.noisy', 'e2e_ci_app', 'e2e_ci_nosuch'])
        noisy, pkg, nosuch = imp['modules']
        # importing e2e_ci_app.noisy imported the package, hence mod, first
        self.assertEqual([os.path.realpath(c['source']) for c in noisy['compiled']],
                         [os.path.realpath(mod)], res)
        self.assertTrue(noisy['written'], 'the import wrote the new pyc\n%s' % res)
        self.assertTrue(all('__pycache__' in w for w in noisy['written']), res)
        self.assertEqual((pkg['compiled'], pkg['written'], pkg['imported']), ([], [], True))
        self.assertEqual((nosuch['imported'], nosuch['error'].split(':')[0]),
                         (False, 'ModuleNotFoundError'))
        loaded = {m['module']: m for m in noisy['loaded']}
        self.assertEqual(loaded['e2e_ci_app.mod']['where'], 'tree')
        self.assertEqual(os.path.realpath(loaded['e2e_ci_app.mod']['file']),
                         os.path.realpath(mod))
        self.assertEqual(loaded['json']['where'], 'stdlib', loaded['json'])
        self.assertEqual((imp['counts']['imported'], imp['counts']['failed'],
                          imp['counts']['compiled'], imp['counts']['outside']), (2, 1, 1, 0))
        # passing: ok true, exit 0
        res = self.run_check(['--json', '--import', 'e2e_ci_app'], cwd=app)
        self.assertEqual(res.rc, 0, res)
        doc = json.loads(res.out)
        self.assertIs(doc['ok'], True)
        self.assertEqual(doc['imports'][0]['counts']['compiled'], 0)

    def test_check_import_outside_modules(self):
        """Every module's file is known; one loaded from outside the PATHs
        (the working directory without PATH) is a warning naming its file,
        an error with --strict (issue 14.3)."""
        app, far = self.build()
        env = support.base_env(PYTHONPATH=far)
        args = ['--import', 'e2e_ci_app', '--import', 'e2e_ci_far', '--import', 'e2e_ci_farpkg']
        res = self.run_check(args, cwd=app, env=env)
        self.assertEqual(res.rc, 0, res)
        warned = re.findall(r"(?m)^prepyc: warning: check --import: '([\w.]+)'(.*) was loaded "
                            r"from '(.*)', outside the working directory", res.err)
        self.assertEqual(sorted((m, os.path.realpath(f)) for m, _, f in warned),
                         [('e2e_ci_far', os.path.realpath(os.path.join(far, 'e2e_ci_far.py'))),
                          ('e2e_ci_farpkg', os.path.realpath(
                              os.path.join(far, 'e2e_ci_farpkg', '__init__.py')))], res)
        self.assertIn('(and 1 submodule)', dict((m, x) for m, x, _ in warned)
                      ['e2e_ci_farpkg'])
        m = _SUMMARY.search(res.out)
        self.assertEqual(m.group('outside'), '3', res)
        self.assertNotIn('json', res.err, 'the standard library is not outside')
        # --strict: errors, exit 1
        res = self.run_check(['--strict'] + args, cwd=app, env=env)
        self.assertEqual(res.rc, 1, res)
        self.assertRegex(res.err, r"(?m)^prepyc: error: check --import: 'e2e_ci_far' was loaded")
        # the far tree given as a PATH too: checked, so not outside
        res = self.run_check(['--strict', far, '.'] + args, cwd=app, env=env)
        self.assertEqual(res.rc, 0, res)
        self.assertNotIn('outside', res.err)
        # -v lists every module loaded with its file
        res = self.run_check(['-v'] + args, cwd=app, env=env)
        # "NAME: loaded from FILE (TARGET)", TARGET possibly with parentheses of its own (PyPy)
        listed = dict(re.findall(r'(?m)^([\w.]+): loaded from (.*?\.py) \(.*\)$', res.out))
        for name, rel in (('e2e_ci_app', 'app/e2e_ci_app/__init__.py'),
                          ('e2e_ci_app.mod', 'app/e2e_ci_app/mod.py'),
                          ('e2e_ci_farpkg.sub', 'far/e2e_ci_farpkg/sub.py')):
            self.assertEqual(os.path.realpath(listed.get(name, '?')),
                             os.path.realpath(self.path(rel)), res)
        self.assertIn('json', listed)

    def test_check_null_lists_sources(self):
        """check -z: the sources with a problem, NUL-terminated, nothing else
        (a name may hold a newline); --strict adds orphans (issue 17)."""
        files = {'z/ok.py': 'A = 1\n', 'z/stale.py': 'B = 1\n', 'z/new\nline.py': 'C = 1\n',
                 'z/sub/missing.py': 'D = 1\n'}
        support.write_tree(self.tmp, files)
        self.compile(['z'])
        touch_forward(self.path('z/stale.py'))
        os.unlink(self.path('z/__pycache__', self.py.pyc_name('new\nline')))
        os.unlink(self.path('z/sub/__pycache__', self.py.pyc_name('missing')))
        with open(self.path('z/__pycache__', self.py.pyc_name('gone')), 'wb') as f:
            f.write(b'x')
        res = self.run_check(['-z', '-o', '0', '-o', '1', 'z'])
        self.assertEqual(res.rc, 1, res)
        self.assertEqual(res.out.split('\0'),
                         ['z/new\nline.py', 'z/ok.py', 'z/stale.py', 'z/sub/missing.py', ''], res)
        res = self.run_check(['-z', '--strict', 'z'])
        self.assertEqual(res.out.split('\0'),
                         ['z/new\nline.py', 'z/stale.py', 'z/sub/missing.py',
                          'z/__pycache__/' + self.py.pyc_name('gone'), ''], res)
        res = self.run_check(['-z', '--json', 'z'])
        self.assertEqual(res.rc, 2, res)
        if self.py.version >= (3, 8):
            # with --import: the sources compiled at import too
            res = self.run_check(['-z', '--import', 'stale'], cwd=self.path('z'),
                                 env=support.base_env(PYTHONDONTWRITEBYTECODE='1'))
            self.assertEqual(res.rc, 1, res)
            self.assertEqual([os.path.realpath(p) for p in res.out.split('\0')[:-1]],
                             [os.path.realpath(self.path('z/stale.py'))], res)

    def test_clean_null_lists_removed(self):
        """clean -z: the paths removed (-n: to be removed), NUL-terminated,
        directories with a final '/' (issue 17)."""
        support.write_tree(self.tmp, {'c/a.py': 'A = 1\n', 'c/new\nline.py': 'B = 1\n',
                                      'c/sub/b.py': 'C = 1\n'})
        self.compile(['c'])
        os.unlink(self.path('c/new\nline.py'))
        os.unlink(self.path('c/sub/b.py'))
        orphans = ['c/__pycache__/' + self.py.pyc_name('new\nline'),
                   'c/sub/__pycache__/' + self.py.pyc_name('b')]
        res = support.run_prepyc(['clean', '--python', self.py.path, '-n', '-z', 'c'],
                                 cwd=self.tmp)
        self.assertEqual(res.rc, 0, res)
        self.assertEqual(res.out.split('\0'), orphans + [''], res)
        res = support.run_prepyc(['clean', '--python', self.py.path, '-z', 'c'], cwd=self.tmp)
        self.assertEqual(res.rc, 0, res)
        self.assertEqual(res.out.split('\0'), orphans + ['c/sub/__pycache__/', ''], res)
        self.assertFalse(os.path.exists(self.path('c/sub/__pycache__')))
        self.assertTrue(os.path.exists(self.path('c/__pycache__', self.py.pyc_name('a'))))


_GENERATED = support.per_interpreter(
    ImportTests, 'TestCheckImport_', 'check --import reports, -z listings with %s (%s)',
    globals())


class CheckImportLazyTests(unittest.TestCase):
    """Python 3.15's lazy imports (PEP 810) load nothing at import: the
    check makes them eager (issue 15).  Runs with the Pyodide build of 3.15
    that tests/pyodide installs; skipped without it."""

    def setUp(self):
        if not os.path.exists(PYODIDE_315):
            self.skipTest('no Python 3.15 (Pyodide) at %s' % PYODIDE_315)
        support.require_prepyc()
        import tempfile
        import shutil
        self.tmp = tempfile.mkdtemp(prefix='prepyc-e2e-lazy-')
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def test_check_import_lazy(self):
        support.write_tree(self.tmp, {'app/__init__.py': 'lazy import helper\nX = 1\n',
                                      'helper.py': 'H = 1\n'})
        res = support.run_prepyc(['compile', '--python', PYODIDE_315, '-q', 'app'], cwd=self.tmp,
                                 timeout=300)
        self.assertEqual(res.rc, 0, res)
        env = support.base_env(PYTHONDONTWRITEBYTECODE='1')
        res = support.run_prepyc(['check', '--python', PYODIDE_315, '--import', 'app'],
                                 cwd=self.tmp, env=env, timeout=300)
        if 'needs Python 3.8' in res.err or 'did not finish' in res.err:
            self.skipTest('the import check cannot run in Pyodide\n%s' % res)
        self.assertEqual(res.rc, 1, res)
        helper = os.path.join(self.tmp, 'helper.py')
        self.assertIn('%s: compiled at import (lazy import of app)' % helper, res.out)
        m = _SUMMARY.search(res.out)
        self.assertEqual((m.group('compiled'), m.group('lazy')), ('1', '1'), res)
        res = support.run_prepyc(['check', '--python', PYODIDE_315, '--json', '--import', 'app'],
                                 cwd=self.tmp, env=env, timeout=300)
        self.assertEqual(res.rc, 1, res)
        [mod] = json.loads(res.out)['imports'][0]['modules']
        self.assertEqual(mod['compiled'], [{'source': helper, 'lazy_import_of': 'app'}])


def load_tests(loader, standard_tests, pattern):
    suite = support.load_generated(loader, _GENERATED)
    suite.addTests(loader.loadTestsFromTestCase(CheckImportLazyTests))
    return suite


if __name__ == '__main__':
    unittest.main()
