"""Python 3.15 specifics: frozendict constants (marshal version 6, PEP 814).

A 3.15 pyc whose code holds frozendict constants -- nested in tuples,
several of them, one shared (so that marshal.dumps writes a back-reference
to it) -- is read by prepyc (check calls it ok), canonicalised by `prepyc
canon` with no back-reference to a frozendict (3.15's betas and release
candidates cannot load one: gh-155315), and loads equal afterwards.

Runs for every interpreter of 3.15 or later that the suite finds (on these
machines: CPython 3.15 through Pyodide); skipped for the others.
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402

# In the target: add frozendict constants to a compiled module's code and
# write it back with the pyc's own header; then (argv[2] == "load") load it
# and print whether the constants are the ones put in.
MAKE_SCRIPT = r'''
import marshal, sys
path, what = sys.argv[1], sys.argv[2]
fd = frozendict({"a": 1, "b": (2, 3)})
fd2 = frozendict(k=frozendict(x=fd))
extra = (fd, (fd, fd2), frozendict(), frozenset([fd]))
with open(path, "rb") as f:
    data = f.read()
if what == "make":
    code = marshal.loads(data[16:])
    code = code.replace(co_consts=code.co_consts + extra)
    with open(path, "wb") as f:
        f.write(data[:16] + marshal.dumps(code))
    print("made")
else:
    code = marshal.loads(data[16:])
    print("equal" if code.co_consts[-len(extra):] == extra else "DIFFERENT")
'''


class Py315(support.InterpreterCase):
    tmp_prefix = 'prepyc-e2e-py315-'

    def setUp(self):
        super().setUp()
        if self.py.version < (3, 15):
            self.skipTest('frozendict is 3.15+')

    def pp(self, args):
        return support.run_prepyc(args, cwd=self.tmp, env=support.base_env())

    def test_frozendict_constants(self):
        support.write_tree(os.path.join(self.tmp, 't'), {'m.py': 'X = 1\n'})
        r = self.pp(['--python', self.py.path, '--no-cache', 't'])
        self.assertEqual(r.rc, 0, str(r))
        pyc = os.path.join(self.tmp, 't', '__pycache__', self.py.pyc_name('m'))
        r = support.run([self.py.path, '-c', MAKE_SCRIPT, pyc, 'make'], env=support.base_env())
        self.assertEqual((r.rc, r.out.strip()), (0, 'made'), str(r))
        # the header still matches the source: check judges the body too
        r = self.pp(['check', '--python', self.py.path, 't'])
        self.assertEqual(r.rc, 0, str(r))
        r = self.pp(['canon', '--python', self.py.path, pyc])
        self.assertEqual(r.rc, 0, str(r))
        r = self.pp(['canon', '--check', '--python', self.py.path, pyc])
        self.assertEqual(r.rc, 0, str(r))
        # loads (a 3.15 release candidate refuses an 'r' to a frozendict), and equal
        r = support.run([self.py.path, '-c', MAKE_SCRIPT, pyc, 'load'], env=support.base_env())
        self.assertEqual((r.rc, r.out.strip()), (0, 'equal'), str(r))
        r = self.pp(['check', '--python', self.py.path, 't'])
        self.assertEqual(r.rc, 0, str(r))


_GENERATED = support.per_interpreter(Py315, 'TestPy315_', '3.15 specifics with %s (%s)',
                                     globals())


def load_tests(loader, standard_tests, pattern):
    return support.load_generated(loader, _GENERATED)


if __name__ == '__main__':
    unittest.main()
