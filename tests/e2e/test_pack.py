"""The local cache's packs (src/cache/store-pack.h): a run's back-fills from a
remote cache stored in one file (past the first PACK_MIN_FILLS, stored loose),
read as loose entries are, trusted and looked after (stats, prune, clear,
eviction) as they are."""
import hashlib
import os
import shutil
import stat
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402
from test_remote import (MODULES, RemoteCase, _first_interpreter, local_entries,  # noqa: E402
                         packs, warnings_of)


LOOSE = 64  # PACK_MIN_FILLS
FILES = dict(MODULES, **{'gen/m%02d.py' % i: 'X = %d\nY = "m%02d"\n' % (i, i) + ''.join(
    'def f%d(x):\n    return x * %d + %d\n' % (j, j, i) for j in range(12)) for i in range(70)})
PACKED = len(FILES) - LOOSE
# a pack is kept when it holds a 256th of the bound (PACK_MIN_SHARE): 4 KiB of this one
BOUND = ['--cache-max-size', '1M']


class PackTests(RemoteCase):
    tmp_prefix = 'prepyc-e2e-pack-'

    def packed(self, name):
        """A checkout whose local cache holds one pack: the remote's hits."""
        kind = 'redis' if 'hiredis' in self.features else 'http'
        s = self.start(kind)
        a, _ = self.machine(name + '-a', FILES)
        self.assertEqual(self.pp(a, s.url).rc, 0)
        b, _ = self.machine(name + '-b', FILES)
        r = self.pp(b, s.url, BOUND)
        self.assertEqual(self.from_cache(r), len(FILES), str(r))
        cache = os.path.join(b, 'cache')
        self.assertEqual(len(packs(cache)), 1, str(r))
        self.assertEqual(len(local_entries(cache)), LOOSE + 1, 'the first back-fills loose')
        return cache, packs(cache)[0]

    def from_pack(self, name, cache):
        """A new checkout compiled with a copy of `cache` and no remote."""
        c, _ = self.machine(name, FILES)
        shutil.copytree(cache, os.path.join(c, 'cache'))
        return c, self.pp(c, None)

    def cache_cmd(self, *args):
        return support.run_prepyc(['cache'] + list(args), env=support.base_env())

    def test_an_entry_damaged_in_a_pack_is_a_miss(self):
        cache, pack = self.packed('damaged-entry')
        with open(pack, 'r+b') as f:
            f.seek(200)  # inside the first entry's code
            b = f.read(1)
            f.seek(200)
            f.write(bytes([b[0] ^ 0xff]))
        c, r = self.from_pack('damaged-entry-c', cache)
        self.assertEqual(self.from_cache(r), len(FILES) - 1, str(r))
        self.assert_complete(c, r, len(FILES))
        # prune reads every entry of every pack: this one goes, its entries counted
        r = self.cache_cmd('prune', '--cache-dir', cache)
        self.assertEqual(r.rc, 0, str(r))
        self.assertIn('removed %d damaged entries' % PACKED, r.out)
        self.assertEqual(packs(cache), [])

    def test_a_damaged_index_removes_the_pack(self):
        cache, pack = self.packed('damaged-index')
        with open(pack, 'r+b') as f:
            f.truncate(os.path.getsize(pack) - 1)
        c, r = self.from_pack('damaged-index-c', cache)
        self.assertEqual(self.from_cache(r), LOOSE, str(r))
        self.assert_complete(c, r, len(FILES))
        self.assertEqual(packs(os.path.join(c, 'cache')), [], 'removed by the lookup')
        self.assertEqual(len(local_entries(os.path.join(c, 'cache'))), len(FILES),
                         'the pack\'s compiled, stored loose')

    def test_a_pack_others_could_write_is_not_used(self):
        cache, pack = self.packed('not-ours')
        os.chmod(pack, 0o666)
        c, r = self.from_pack('not-ours-c', cache)
        self.assertEqual(self.from_cache(r), LOOSE, str(r))
        self.assert_complete(c, r, len(FILES))
        w = [x for x in warnings_of(r.err) if 'not using the cache pack' in x]
        self.assertEqual(len(w), 1, r.err)
        self.assertIn('can be written by', w[0])
        self.assertTrue(os.path.exists(os.path.join(c, 'cache', 'v1', 'pk',
                                                    os.path.basename(pack))),
                        'not ours to remove')

    def test_a_pack_directory_others_could_write_is_not_used(self):
        cache, pack = self.packed('dir-not-ours')
        os.chmod(os.path.dirname(pack), 0o777)
        c, r = self.from_pack('dir-not-ours-c', cache)
        self.assertEqual(self.from_cache(r), LOOSE, str(r))
        self.assert_complete(c, r, len(FILES))
        w = [x for x in warnings_of(r.err) if 'not using the cache packs' in x]
        self.assertEqual(len(w), 1, r.err)

    def test_stats_clear_and_eviction_count_the_entries_of_packs(self):
        cache, pack = self.packed('admin')
        r = self.cache_cmd('stats', '--cache-dir', cache)
        self.assertRegex(r.out, r'entries: +%d, .*; %d of them in 1 pack\n' % (len(FILES), PACKED))
        copy = cache + '-copy'
        shutil.copytree(cache, copy)
        # a bound below the pack's size: the pack goes whole, oldest first
        r = self.cache_cmd('prune', '--cache-dir', copy, '--cache-max-size', '1')
        self.assertEqual(r.rc, 0, str(r))
        self.assertIn('and %d least recently used' % len(FILES), r.out)
        self.assertEqual(packs(copy), [])
        r = self.cache_cmd('clear', '--cache-dir', cache)
        self.assertEqual(r.rc, 0, str(r))
        self.assertIn('removed %d entries' % len(FILES), r.out)
        self.assertFalse(os.path.exists(os.path.dirname(pack)))

    def test_a_pack_holds_at_most_a_16th_of_the_bound(self):
        # eviction removes a pack whole: it is kept small beside the cache's bound (the
        # constants are digests, so that the entries stay large once compressed)
        files = {'big/b%02d.py' % i: ''.join(
            'def f%d(x):\n    return x + %r\n'
            % (j, hashlib.sha512(b'%d-%d' % (i, j)).hexdigest()) for j in range(60))
            for i in range(LOOSE + 30)}
        kind = 'redis' if 'hiredis' in self.features else 'http'
        s = self.start(kind)
        a, _ = self.machine('bound-a', files)
        self.assertEqual(self.pp(a, s.url).rc, 0)
        b, _ = self.machine('bound-b', files)
        r = self.pp(b, s.url, ['--cache-max-size', '1M'])
        self.assertEqual(self.from_cache(r), len(files), str(r))
        cache = os.path.join(b, 'cache')
        got = packs(cache)
        self.assertGreater(len(got), 2, str(r))
        for p in got:
            with open(p, 'rb') as f:
                data = f.read()
            count = int.from_bytes(data[-32:-24], 'little')
            entries_bytes = int.from_bytes(data[-24:-16], 'little')
            self.assertTrue(entries_bytes <= 64 * 1024 or count == 1, (p, count, entries_bytes))
        self.assertEqual(sorted(support.cache_keys(cache)),
                         sorted(set(support.cache_keys(cache))), 'each entry stored once')
        self.assertEqual(len(support.cache_keys(cache)), len(files))

    def test_hostile_packs_are_refused(self):
        # packs whose index checks out (its checksum recomputed) but lies: entries out of
        # bounds, a count past the file, an entry filed under another key
        cache, pack = self.packed('hostile')
        with open(pack, 'rb') as f:
            data = f.read()
        n = int.from_bytes(data[-32:-24], 'little')
        at = int.from_bytes(data[-24:-16], 'little')
        index = bytearray(data[at:at + 48 * n])

        def craft(name, index, count=n, data_end=at):
            trailer = (b'PREPYCP\n' + (1).to_bytes(4, 'little') + bytes(4)
                       + count.to_bytes(8, 'little') + data_end.to_bytes(8, 'little'))
            tag = hashlib.blake2b(bytes(index) + trailer, digest_size=16).digest()
            out = os.path.join(os.path.dirname(pack), name)
            with open(out, 'wb') as f:
                f.write(data[:data_end] + bytes(index) + trailer + tag)
            os.chmod(out, 0o600)
            return out

        os.unlink(pack)
        beyond = bytearray(index)
        beyond[32:40] = (at - 10).to_bytes(8, 'little')  # the first entry runs past the entries
        craft('1' * 32, beyond)
        craft('2' * 32, index, count=n + 1000)  # more records than the file holds
        swapped = bytearray(index)
        swapped[0:32], swapped[48:80] = index[48:80], index[0:32]  # two entries' keys swapped
        craft('3' * 32, swapped)
        c, r = self.from_pack('hostile-c', cache)
        self.assertEqual(r.rc, 0, str(r))
        self.assert_complete(c, r, len(FILES))
        self.assertEqual(self.from_cache(r), len(FILES) - 2, 'the swapped pair missed: %s' % r)
        left = [os.path.basename(p) for p in packs(os.path.join(c, 'cache'))]
        self.assertEqual(left, ['3' * 32], 'the packs that lie about their size are removed')

    def test_a_small_pack_is_stored_loose(self):
        # under the default bound (1 GiB) the same back-fill is below a 256th of it:
        # no pack is kept, every entry is a file of its own
        kind = 'redis' if 'hiredis' in self.features else 'http'
        s = self.start(kind)
        a, _ = self.machine('small-a', FILES)
        self.assertEqual(self.pp(a, s.url).rc, 0)
        b, _ = self.machine('small-b', FILES)
        r = self.pp(b, s.url)
        self.assertEqual(self.from_cache(r), len(FILES), str(r))
        cache = os.path.join(b, 'cache')
        self.assertEqual(packs(cache), [])
        self.assertEqual(len(local_entries(cache)), len(FILES))
        self.assertEqual(os.listdir(os.path.join(cache, 'v1', 'pk')), [], 'nothing left behind')
        c, r = self.from_pack('small-c', cache)
        self.assertEqual(self.from_cache(r), len(FILES), str(r))

    def test_a_pack_is_made_in_the_cache_modes(self):
        cache, pack = self.packed('modes')
        # and a run that looks nothing up (a no-op) does not read it
        r = self.pp(os.path.dirname(cache), None)
        self.assertEqual(r.rc, 0, str(r))
        self.assertIn(' 0 compiled, %d up to date' % len(FILES), r.out)
        self.assertNotIn("cache: pack '", r.err)
        self.assertEqual(stat.S_IMODE(os.stat(pack).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.dirname(pack)).st_mode), 0o700)
        self.assertEqual([n for n in os.listdir(os.path.dirname(pack)) if n.startswith('.')],
                         [], 'no temporary file left')


TestPacks = type('TestPacks', (PackTests,), {
    'candidate': _first_interpreter(), '__module__': __name__,
    '__doc__': 'the local cache\'s packs, on the first interpreter found'})


def load_tests(loader, standard_tests, pattern):
    return support.load_generated(loader, [TestPacks])


if __name__ == '__main__':
    unittest.main()
