"""Canonical pycs import and run: a stdlib package's own test suite, run from
pycs prepyc wrote (one generated class per interpreter, ``TestStdlibRun_<label>``).

prepyc compiles the interpreter's own ``json`` package and its tests
(``test/test_json``) into a temporary ``--pycache-prefix`` (so the
installed stdlib is left alone and co_filename is the real path); the
interpreter then runs ``python -X pycache_prefix=PREFIX -m unittest
test.test_json``-equivalent with the import system watched: no source of
``json`` or ``test_json`` may be compiled (every one is loaded from
prepyc's pycs), every module's ``__cached__`` must be under the prefix, and
the suite must pass.  Needs 3.8+ (sys.pycache_prefix) and the interpreter's
``test`` package; skipped otherwise.
"""

import json
import os
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402

# Runs in the target.  argv: the directories whose sources must not be compiled.
RUN = r'''
import sys, os, io, unittest
import importlib._bootstrap_external as be
watched = [os.path.realpath(d) + os.sep for d in sys.argv[1:]]
compiled = []
orig = be.SourceLoader.source_to_code
def source_to_code(self, data, path, *args, **kwargs):
    if any(os.path.realpath(path).startswith(w) for w in watched):
        compiled.append(path)
    return orig(self, data, path, *args, **kwargs)
be.SourceLoader.source_to_code = source_to_code
preloaded = sorted(m for m in sys.modules if m == 'json' or m.startswith('json.'))
stream = io.StringIO()
suite = unittest.defaultTestLoader.loadTestsFromName('test.test_json')
result = unittest.TextTestRunner(stream=stream, verbosity=0).run(suite)
mods = {}
for name, m in sorted(sys.modules.items()):
    f = getattr(m, '__file__', None) or ''
    if f and any(os.path.realpath(f).startswith(w) for w in watched):
        mods[name] = getattr(m, '__cached__', None)
import json  # only now: the suite imports it first, from the pycs
sys.__stdout__.write(json.dumps({
    'run': result.testsRun, 'failures': len(result.failures), 'errors': len(result.errors),
    'skipped': len(result.skipped), 'compiled': compiled, 'modules': mods,
    'preloaded': preloaded, 'prefix': sys.pycache_prefix,
    'log': stream.getvalue()[-3000:]}))
'''


class StdlibRunTests(support.InterpreterCase):
    tmp_prefix = 'prepyc-e2e-stdlib-'

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if cls.py.version < (3, 8):
            raise unittest.SkipTest('sys.pycache_prefix needs 3.8')
        cls.json_dir = os.path.join(cls.py.stdlib, 'json')
        cls.test_dir = os.path.join(cls.py.stdlib, 'test', 'test_json')
        if not os.path.isfile(os.path.join(cls.test_dir, '__init__.py')):
            raise unittest.SkipTest('%s has no test.test_json' % cls.py.label)

    def test_json_suite_runs_from_canonical_pycs(self):
        prefix = os.path.join(self.tmp, 'prefix')
        r = support.run_prepyc(['--python', self.py.path, '--no-cache', '--pycache-prefix', prefix,
                                self.json_dir, self.test_dir], env=support.base_env())
        self.assertEqual(r.rc, 0, str(r))
        pycs = [os.path.join(d, n) for d, _, names in os.walk(prefix) for n in names]
        self.assertGreaterEqual(len(pycs), 10, pycs)
        check = support.run_prepyc(['canon', '--check'] + pycs, env=support.base_env())
        self.assertEqual(check.rc, 0, 'prepyc wrote pycs that are not canonical:\n%s' % check)

        env = support.base_env(PYTHONHASHSEED=None)
        r = support.run([self.py.path, '-S', '-s', '-X', 'pycache_prefix=' + prefix, '-c', RUN,
                         self.json_dir, self.test_dir], env=env, cwd=self.tmp, timeout=600)
        self.assertEqual(r.rc, 0, str(r))
        got = json.loads(r.out)
        self.assertEqual(got['prefix'], prefix)
        self.assertEqual(got['preloaded'], [], 'json was imported before the test could watch it')
        self.assertGreater(got['run'], 50, got['log'])
        self.assertEqual((got['failures'], got['errors']), (0, 0), got['log'])
        self.assertEqual(got['compiled'], [], 'sources compiled although prepyc wrote their pycs')
        self.assertIn('json.decoder', got['modules'])
        self.assertIn('test.test_json', got['modules'])
        elsewhere = {m: c for m, c in got['modules'].items()
                     if not (c or '').startswith(prefix + os.sep)}
        self.assertEqual(elsewhere, {})


_GENERATED = support.per_interpreter(StdlibRunTests, 'TestStdlibRun_',
                                     'test.test_json from prepyc pycs with %s (%s)', globals())


def load_tests(loader, standard_tests, pattern):
    return support.load_generated(loader, _GENERATED)


if __name__ == '__main__':
    unittest.main()
