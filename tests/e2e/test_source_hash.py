"""End-to-end tests of prepyc's SipHash (src/siphash.c) against each target
interpreter's own ``_imp.source_hash``, the hash a hash-based pyc stores.

One generated TestCase class per interpreter candidate
(``TestSourceHash_<label>``).  The C side is reached through
``test-tool`` (tests/tools/test-tool.c), named by ``PREPYC_TEST_TOOL``; the
classes skip when it is not set or not built, when the interpreter is
missing, is CPython < 3.7, or has no ``_imp.source_hash``.
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

# The inputs of the table in PYC-FACTS ("Source hash").
FACTS_INPUTS = [b'', b'abc', b'print("hello")\n']

# Runs in the target (3.7+, but parses on 3.6: no f-strings).  Reads a JSON
# list of paths on stdin; writes the magic, the key importlib uses, and the
# hash of b'abc' and of each file, all as the target's own bytes in hex.
HASH_SCRIPT = r'''
import sys, json
try:
    import _imp
    import importlib.util as iu
    source_hash = _imp.source_hash
except (ImportError, AttributeError) as e:
    sys.stdout.write(json.dumps({'missing': repr(e)}))
    sys.exit(0)
magic = iu.MAGIC_NUMBER
# 3.7-3.13 name the key _RAW_MAGIC_NUMBER, 3.14 _imp.pyc_magic_number_token
raw = getattr(iu, '_RAW_MAGIC_NUMBER', None)
if raw is None:
    raw = getattr(_imp, 'pyc_magic_number_token', None)
out = {
    'magic': magic.hex(),
    'raw': raw,
    'abc': source_hash(int.from_bytes(magic, 'little'), b'abc').hex(),
    'abc_importlib': iu.source_hash(b'abc').hex() if hasattr(iu, 'source_hash') else None,
    'hashes': [],
}
for p in json.loads(sys.stdin.read()):
    with open(p, 'rb') as f:
        out['hashes'].append(iu.source_hash(f.read()).hex())
sys.stdout.write(json.dumps(out))
'''


def sample_inputs():
    """About 200 deterministic byte strings: every length 0..17, the
    multiples of 8 up to 512, the lengths around 256 (the final word keeps
    len mod 256), then random lengths up to 5000; plus the PYC-FACTS inputs."""
    rng = random.Random(552)
    lengths = list(range(18)) + list(range(24, 513, 8)) + [255, 257, 511, 4096, 5000]
    while len(lengths) < 200:
        lengths.append(rng.randrange(5001))
    inputs = []
    for n in lengths:
        inputs.append(rng.getrandbits(8 * n).to_bytes(n, 'little') if n else b'')
    inputs.append(b'\xff' * 64)
    inputs.append(b'\x00' * 63)
    return inputs + FACTS_INPUTS


class SourceHashTests(unittest.TestCase):
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
        py = cls.candidate.interp
        if py.impl == 'cpython' and py.version < (3, 7):
            raise unittest.SkipTest('hash-based pycs are 3.7+')
        cls.py = py
        cls.tmp = tempfile.mkdtemp(prefix='prepyc-e2e-hash-')
        cls.inputs = sample_inputs()
        cls.files = []
        for i, data in enumerate(cls.inputs):
            p = os.path.join(cls.tmp, 'in%03d.bin' % i)
            with open(p, 'wb') as f:
                f.write(data)
            cls.files.append(p)
        r = support.run([py.path, '-S', '-s', '-B', '-c', HASH_SCRIPT], env=support.base_env(),
                        stdin_data=json.dumps(cls.files))
        if r.rc != 0:
            shutil.rmtree(cls.tmp, True)
            raise AssertionError('hash script failed in %s:\n%s' % (py, r))
        cls.target = json.loads(r.out)
        if 'missing' in cls.target:
            shutil.rmtree(cls.tmp, True)
            raise unittest.SkipTest('%s has no _imp.source_hash: %s'
                                    % (py.label, cls.target['missing']))

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, 'tmp', None):
            shutil.rmtree(cls.tmp, True)

    def tool(self, *args):
        r = support.run([TEST_TOOL] + list(args), env=support.base_env(), timeout=120)
        self.assertFalse(r.timed_out, str(r))
        return r

    def kind(self):
        r = self.tool('source-hash-kind', self.target['magic'], self.target['abc'])
        self.assertEqual(r.rc, 0, 'prepyc recognises no SipHash variant of %s\n%s'
                         % (self.py, r))
        return r.out.strip()

    def test_key_is_magic_read_little_endian(self):
        # prepyc keys the hash with the pyc's first 4 bytes; importlib keys
        # it with _RAW_MAGIC_NUMBER: they must be the same number.
        self.assertEqual(self.target['magic'], self.py.magic.hex())
        key = int.from_bytes(bytes.fromhex(self.target['magic']), 'little')
        if self.target['raw'] is not None:
            self.assertEqual(self.target['raw'], key)
        if self.target['abc_importlib'] is not None:
            self.assertEqual(self.target['abc_importlib'], self.target['abc'])

    def test_variant_is_the_documented_one(self):
        # PYC-FACTS: CPython 3.7-3.10 and PyPy SipHash-2-4, CPython 3.11+ SipHash-1-3
        want = '13' if self.py.impl == 'cpython' and self.py.version >= (3, 11) else '24'
        self.assertEqual(self.kind(), want)

    def test_every_input_hashes_like_the_target(self):
        kind = self.kind()
        r = self.tool('source-hash', kind, self.target['magic'], *self.files)
        self.assertEqual(r.rc, 0, str(r))
        got = r.out.split()
        want = self.target['hashes']
        self.assertEqual(len(got), len(self.files), str(r))
        bad = ['%s (%d bytes): prepyc %s, %s %s'
               % (os.path.basename(p), len(data), g, self.py.label, w)
               for p, data, g, w in zip(self.files, self.inputs, got, want) if g != w]
        self.assertEqual(bad, [], 'SipHash-%s differs from the target\'s on %d of %d inputs'
                         % (kind, len(bad), len(self.files)))

    def test_other_variant_differs(self):
        # guards the comparison itself: the wrong variant must not match
        other = '24' if self.kind() == '13' else '13'
        r = self.tool('source-hash', other, self.target['magic'], *self.files[-3:])
        self.assertEqual(r.rc, 0, str(r))
        self.assertNotEqual(r.out.split(), self.target['hashes'][-3:])


_GENERATED = support.per_interpreter(SourceHashTests, 'TestSourceHash_', '_imp.source_hash of %s (%s)', globals())


def load_tests(loader, standard_tests, pattern):
    return support.load_generated(loader, _GENERATED)


if __name__ == '__main__':
    unittest.main()
