"""End-to-end tests of prepyc's marshal reader and writer (src/marshal.c)
against the pycs each target interpreter writes.

One generated TestCase class per interpreter candidate
(``TestMarshal_<label>``).  In each, about 300 files sampled across the
target's stdlib (tests included) and a module of unusual constants are
compiled with the target's own ``py_compile``; ``test-tool
marshal-roundtrip`` must parse every body and write it back byte for byte.
Truncated and garbage pycs must be rejected, and on a few hundred mutated
pycs prepyc's verdict must be the target's own ``marshal.load`` verdict.

The C side is reached through ``test-tool`` (tests/tools/test-tool.c),
named by ``PREPYC_TEST_TOOL``; the classes skip when it is not set or not
built, or when the interpreter is missing.
"""

import json
import os
import random
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402

TEST_TOOL = os.environ.get('PREPYC_TEST_TOOL')
SAMPLE = 300

# Runs in the target (3.6+: no f-strings).  argv: output directory, count.
# Compiles `count` stdlib sources spread evenly over the sorted list, and the
# extra sources already in the output directory; prints [[source, pyc], ...].
COMPILE_SCRIPT = r'''
import json, os, py_compile, sys, sysconfig
out, count = sys.argv[1], int(sys.argv[2])
std = sysconfig.get_paths()['stdlib']
srcs = []
for root, dirs, files in os.walk(std):
    dirs[:] = sorted(d for d in dirs
                     if d not in ('site-packages', 'dist-packages', '__pycache__'))
    srcs.extend(os.path.join(root, f) for f in sorted(files) if f.endswith('.py'))
step = max(1, len(srcs) // count)
picked = srcs[::step][:count]
picked += sorted(os.path.join(out, f) for f in os.listdir(out) if f.endswith('.py'))
done = []
for i, src in enumerate(picked):
    pyc = os.path.join(out, '%04d.pyc' % i)
    try:
        py_compile.compile(src, cfile=pyc, doraise=True)
    except Exception:
        continue
    done.append([src, pyc])
sys.stdout.write(json.dumps(done))
'''

# Runs in the target: per pyc path on stdin, "ok" when marshal.load reads
# its body and stops exactly at its end, "short" when it stops before,
# "err TYPE" when it raises.  The address space is capped: a mutated size
# can ask CPython for gigabytes, which must be a MemoryError here.
VERDICT_SCRIPT = r'''
import io, marshal, sys
try:
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
except Exception:
    pass
header = int(sys.argv[1])
for line in sys.stdin:
    with open(line.rstrip('\n'), 'rb') as f:
        body = f.read()[header:]
    stream = io.BytesIO(body)
    try:
        marshal.load(stream)
        verdict = 'ok' if stream.tell() == len(body) else 'short'
    except Exception as e:
        verdict = 'err ' + type(e).__name__
    sys.stdout.write(verdict + '\n')
    sys.stdout.flush()
'''

# Constants of every type code a compiler writes (the stdlib has few floats,
# complex numbers, big ints or odd strings).  Any version parses it.
UNUSUAL = r'''
BIG = 10 ** 40
NEG = -(2 ** 100)
SMALL = -2147483648
F = (1.5e300, -0.0, 1e-300, 2.5)
C = (3 + 4j, -1j)
S = ('\ud800 lone surrogate', '\xe9t\xe9 \u2603 \U0001f600', 'x' * 300, '\xff' * 3)
B = (b'\xff\x00', b'', b'y' * 300)
T = ((1, (2, (3, (4, (5,))))), None, True, False, ..., (), ('a',) * 300)

def member(x):
    return x in {1, 2, 'a', 2.5, b'b', None, (1, 2)}

def outer(a, b=1, *args, c, **kw):
    def inner():
        return a + b + c
    return inner

lam = lambda: [i for i in range(3)] + list({j: j for j in 'ab'})

class K:
    def m(self):
        return __class__

def slices(x):
    return x[1:2], x[::2], x[-1:None:3]
'''

# Syntax of 3.8+ (positional-only parameters) and 3.6+ (async, f-strings).
UNUSUAL_38 = r'''
def posonly(a, b, /, c, *, d=1):
    return f'{a!r:>{b}}' + str(c) + str(d)

async def agen():
    async with posonly as p:
        yield [x async for x in p]
'''


def version_arg(py):
    return '%d.%d%s' % (py.version[0], py.version[1], 'pypy' if py.impl == 'pypy' else '')


class MarshalTests(unittest.TestCase):
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
        cls.py = py = cls.candidate.interp
        cls.tmp = tempfile.mkdtemp(prefix='prepyc-e2e-marshal-')
        support.write_tree(cls.tmp, {'zz_unusual.py': UNUSUAL, 'zz_unusual38.py': UNUSUAL_38})
        r = support.run([py.path, '-S', '-s', '-B', '-c', COMPILE_SCRIPT, cls.tmp, SAMPLE],
                        env=support.base_env(PYTHONHASHSEED=0))
        if r.rc != 0:
            shutil.rmtree(cls.tmp, True)
            raise AssertionError('compile script failed in %s:\n%s' % (py, r))
        cls.compiled = json.loads(r.out)
        cls.pycs = [pyc for _, pyc in cls.compiled]

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, 'tmp', None):
            shutil.rmtree(cls.tmp, True)

    def roundtrip(self, paths):
        r = support.run([TEST_TOOL, 'marshal-roundtrip', version_arg(self.py)] + list(paths),
                        env=support.base_env(), timeout=300)
        self.assertFalse(r.timed_out, str(r))
        self.assertIn(r.rc, (0, 1), str(r))
        lines = r.out.splitlines()
        self.assertEqual(len(lines), len(paths), str(r))
        return lines

    def write_variant(self, name, body):
        p = os.path.join(self.tmp, name)
        with open(p, 'wb') as f:
            f.write(b'\0' * self.py.header_size + body)
        return p

    def body(self, pyc):
        with open(pyc, 'rb') as f:
            return f.read()[self.py.header_size:]

    def test_stdlib_pycs_round_trip(self):
        self.assertGreaterEqual(len(self.pycs), SAMPLE * 2 // 3,
                                'only %d sources compiled' % len(self.pycs))
        lines = self.roundtrip(self.pycs)
        bad = ['%s: %s' % (src, line) for (src, _), line in zip(self.compiled, lines)
               if line != 'ok']
        self.assertEqual(bad, [], '%d of %d pycs of %s do not round-trip'
                         % (len(bad), len(lines), self.py.label))

    def test_unusual_constants_round_trip(self):
        mine = [pyc for src, pyc in self.compiled if os.path.basename(src).startswith('zz_')]
        want = 2 if self.py.version >= (3, 8) else 1
        self.assertEqual(len(mine), want, self.compiled[-2:])
        self.assertEqual(self.roundtrip(mine), ['ok'] * want)

    def test_truncated_and_garbage_are_rejected(self):
        rng = random.Random(7)
        paths = []
        for i, pyc in enumerate(self.pycs[:20]):
            body = self.body(pyc)
            for cut in sorted(set([0, 1, len(body) - 1] +
                                  [rng.randrange(len(body)) for _ in range(5)])):
                paths.append(self.write_variant('cut%02d-%d.pyc' % (i, cut), body[:cut]))
            paths.append(self.write_variant('trail%02d.pyc' % i, body + b'N'))
        for i in range(20):
            garbage = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
            # a lone valid one-byte object is not garbage
            if len(garbage) == 1 and garbage in (b'N', b'T', b'F', b'S', b'.'):
                continue
            paths.append(self.write_variant('garbage%02d.pyc' % i, garbage))
        lines = self.roundtrip(paths)
        accepted = [os.path.basename(p) for p, line in zip(paths, lines)
                    if not line.startswith('FAIL ')]
        self.assertEqual(accepted, [])

    def target_verdicts(self, paths):
        """The target's marshal.load verdict per path; 'crash' for the path
        that killed it (the run goes on after it)."""
        verdicts = []
        todo = list(paths)
        while todo:
            r = support.run([self.py.path, '-S', '-s', '-B', '-c', VERDICT_SCRIPT,
                             self.py.header_size], env=support.base_env(),
                            stdin_data='\n'.join(todo) + '\n', timeout=600)
            self.assertFalse(r.timed_out, str(r))
            lines = r.out.splitlines()[:len(todo)]
            verdicts += lines
            if len(lines) == len(todo):
                break
            verdicts.append('crash')
            todo = todo[len(lines) + 1:]
        return verdicts

    def test_mutants_judged_like_the_target(self):
        rng = random.Random(552)
        small = [p for p in self.pycs if os.path.getsize(p) < 20000] or self.pycs
        paths = []
        for i in range(300):
            body = bytearray(self.body(small[i % len(small)]))
            kind = rng.randrange(4)
            j = rng.randrange(len(body))
            if kind == 0:
                body[j] = rng.randrange(256)
            elif kind == 1:
                body[j] ^= 1 << rng.randrange(8)
            elif kind == 2:
                body[j:j] = bytes([rng.randrange(256)])
            else:
                del body[j]
            paths.append(self.write_variant('mutant%03d.pyc' % i, bytes(body)))
        theirs = self.target_verdicts(paths)
        ours = self.roundtrip(paths)
        self.assertNotIn('DIFF', ours)
        # a crash of the target (CPython 3.12 on some opcodes, PyPy on odd
        # signatures) says nothing either way
        disagree = ['%s: %s says %s, prepyc %s' % (os.path.basename(p), self.py.label, t, o)
                    for p, t, o in zip(paths, theirs, ours)
                    if t != 'crash' and (t == 'ok') != (o == 'ok')]
        judged = sum(1 for t in theirs if t != 'crash')
        self.assertGreaterEqual(judged, 250)
        self.assertEqual(disagree, [], 'disagreements on %d of %d mutants'
                         % (len(disagree), judged))


_GENERATED = support.per_interpreter(MarshalTests, 'TestMarshal_', 'marshal round trips with %s (%s)', globals())


def load_tests(loader, standard_tests, pattern):
    return support.load_generated(loader, _GENERATED)


if __name__ == '__main__':
    unittest.main()
