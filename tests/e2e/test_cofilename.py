"""The co_filename that `prepyc compile` writes is compileall's, always.

A differential test: for every interpreter, every option that shapes
co_filename (-d, -s, -p and their combinations), every way of writing a
PATH (relative, absolute, with ./, with a trailing slash, a file) and a tree
three levels deep, the co_filename of every code object in every pyc that
`prepyc compile` writes equals the one `python -m compileall` writes with
the same arguments.  A traceback in production names the file co_filename
says: a difference is a file that does not exist.

This is how `prepyc compile` and `prepyc compileall` stay one: both take
co_filename from the same rules (src/engine/cofilename.c), and this test
compares the concise command with the target's own compileall.
"""

import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402

SOURCE = ('def f():\n'
          '    def g():\n'
          '        return lambda: 1\n'
          '    return g\n'
          'class C:\n'
          '    def m(self):\n'
          '        return [x for x in ()]\n')

TREE = {'t/a.py': SOURCE, 't/p/b.py': SOURCE, 't/p/q/c.py': SOURCE, 't/p/q/__init__.py': ''}

# Every code object's co_filename, per pyc, as JSON (runs in the target, 3.6+).
READ_SCRIPT = r'''
import json, marshal, os, sys
root, hlen = sys.argv[1], int(sys.argv[2])
def names(code, out):
    out.append(code.co_filename)
    for c in code.co_consts:
        if hasattr(c, "co_filename"):
            names(c, out)
    return out
res = {}
for dirpath, dirnames, filenames in os.walk(root):
    for n in filenames:
        if n.endswith(".pyc"):
            p = os.path.join(dirpath, n)
            with open(p, "rb") as f:
                data = f.read()
            res[os.path.relpath(p, root)] = names(marshal.loads(data[hlen:]), [])
print(json.dumps(res, sort_keys=True))
'''


# compileall's main() for each combination, in one process of the target
# (3.6+): sys.argv as the command line would set it; the pycs written are
# moved to STORE/I-c before the next one.
COMPILEALL_SCRIPT = r'''
import compileall, json, os, sys
combos, stores = json.loads(sys.argv[1]), sys.argv[2]
rcs = []
for i, (opts, path) in enumerate(combos):
    sys.argv = ["compileall", "-q"] + opts + [path]
    try:
        ok = compileall.main()
        rc = int(not ok)
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) else 1
    rcs.append(rc)
    for dirpath, dirnames, filenames in os.walk("t"):
        for n in filenames:
            if n.endswith(".pyc"):
                p = os.path.join(dirpath, n)
                os.renames(p, os.path.join(stores, "%d-c" % i, os.path.relpath(p, "t")))
print(json.dumps(rcs))
'''


def path_forms(tmp):
    """The PATH arguments, as a user may write them (cwd is tmp)."""
    return ['t', './t/', os.path.join(tmp, 't'), 't/p/q/c.py', os.path.join(tmp, 't', 'a.py')]


def option_sets(py, tmp, path):
    """The co_filename options, those the target's compileall has."""
    sets = [[], ['-d', '/deploy/app'], ['-d', 'rel/dir/']]
    if py.version >= (3, 9):
        given = path.rstrip('/') if not path.endswith('.py') else os.path.dirname(path)
        sets += [['-s', given], ['-s', tmp + '/'], ['-s', '/not/a/prefix'], ['-p', 'rel'],
                 ['-s', os.path.join(tmp, 't', 'p'), '-p', '/srv/']]
    return sets


class CoFilename(support.InterpreterCase):
    tmp_prefix = 'prepyc-e2e-cofilename-'


    def test_co_filename_is_compileall_s(self):
        support.write_tree(self.tmp, TREE)
        combos = []
        for path in path_forms(self.tmp):
            for opts in option_sets(self.py, self.tmp, path):
                combos.append((path, opts))
        stores = os.path.join(self.tmp, 'stores')
        r = support.run([self.py.path, '-c', COMPILEALL_SCRIPT,
                         json.dumps([(o, p) for p, o in combos]), stores],
                        cwd=self.tmp, env=support.base_env())
        self.assertEqual(r.rc, 0, str(r))
        rcs = json.loads(r.out.splitlines()[-1])
        ran = []
        for i, (path, opts) in enumerate(combos):
            if rcs[i] != 0:
                continue  # an option this compileall refuses: nothing to compare
            b = support.run_prepyc(['compile', '--python', self.py.path, '--no-cache', '-q',
                                    '-j1'] + opts + [path], cwd=self.tmp, env=support.base_env())
            self.assertEqual(b.rc, 0, 'prepyc %s %s\n%s' % (' '.join(opts), path, b))
            support.move_pycs(os.path.join(self.tmp, 't'), os.path.join(stores, '%d-p' % i))
            ran.append(i)
        self.assertEqual(len(ran), len(combos), rcs)
        r = support.run([self.py.path, '-S', '-s', '-B', '-c', READ_SCRIPT, stores,
                         str(self.py.header_size)], env=support.base_env())
        self.assertEqual(r.rc, 0, str(r))
        found = json.loads(r.out)
        diffs = []
        for i in ran:
            path, opts = combos[i]
            want = {k[len('%d-c/' % i):]: v for k, v in found.items()
                    if k.startswith('%d-c/' % i)}
            got = {k[len('%d-p/' % i):]: v for k, v in found.items()
                   if k.startswith('%d-p/' % i)}
            self.assertTrue(want, 'compileall wrote nothing for %s %s' % (opts, path))
            if want != got:
                diffs.append('%s %s:\n  compileall %s\n  prepyc     %s'
                             % (' '.join(opts), path, want, got))
        self.assertEqual(diffs, [], '\n'.join(diffs))


_GENERATED = support.per_interpreter(CoFilename, 'TestCoFilename_',
                                     'co_filename of prepyc compile vs compileall with %s (%s)',
                                     globals())


def load_tests(loader, standard_tests, pattern):
    return support.load_generated(loader, _GENERATED)


if __name__ == '__main__':
    unittest.main()
