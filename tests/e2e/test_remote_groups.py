"""A remote cache's groups (src/cache/remote-group.h) over HTTP, against a real
nginx: the first builder of a tree uploads its entries and its groups; a fresh
builder of the same files elsewhere fetches every entry in one request per
group; a file changed costs one group's keys fetched one by one, and that
group is uploaded under its new name; a group altered on the server (a
value's byte, or values swapped between keys) is checked entry by entry as a
key's value is, rejected with the secret set, the key's own value taken
instead, and the group replaced by that builder; a read-only builder uploads no group.  Redis has MGET and
keeps no groups.  On the first interpreter found: this is about C code."""
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402
from test_remote import MODULES, RemoteCase, _first_interpreter, remote_stats  # noqa: E402

# past 4 * HTTP_GROUP_KEYS (128) keys: four groups
FILES = dict(MODULES, **{'gen/g%03d.py' % i: 'X = %d\nS = "g%03d"\n\ndef f(x):\n    return x + %d\n'
                         % (i, i, i) for i in range(520)})
N = len(FILES)
SECRET = 'group secret'


def group_objects(server):
    """The group objects the nginx server holds: {path: bytes}."""
    out = {}
    for dirpath, _, names in os.walk(server.data):
        for name in names:
            p = os.path.join(dirpath, name)
            with open(p, 'rb') as f:
                data = f.read()
            if data.startswith(b'PREPYCG\n'):
                out[p] = data
    return out


def records(data):
    """A group object's records: [(key, value)] (remote-group.h)."""
    count = int.from_bytes(data[12:16], 'little')
    at, out = 16, []
    for _ in range(count):
        n = int.from_bytes(data[at + 32:at + 36], 'little')
        out.append((data[at:at + 32], data[at + 36:at + 36 + n]))
        at += 36 + n
    return out


def build(recs):
    out = b'PREPYCG\n' + (1).to_bytes(4, 'little') + len(recs).to_bytes(4, 'little')
    for key, value in recs:
        out += key + len(value).to_bytes(4, 'little') + value
    return out


def groups_line(r):
    m = re.search(r"trace: remote cache '[^']*': .* groups=(\d+) found=(\d+) sent=(\d+)", r.err)
    if not m:
        raise AssertionError('no remote trace line:\n%s' % r.err)
    return tuple(int(x) for x in m.groups())


class GroupTests(RemoteCase):
    tmp_prefix = 'prepyc-e2e-groups-'

    def first_builder(self, s, name, **env):
        a, _ = self.machine(name, FILES)
        r = self.pp(a, s.url, env=support.base_env(PREPYC_TRACE=1, **env))
        self.assertEqual(r.rc, 0, str(r))
        self.assertEqual(remote_stats(r).get('uploads'), N, str(r))
        groups, found, sent = groups_line(r)
        self.assertGreaterEqual(groups, 2, str(r))
        self.assertEqual((found, sent), (0, groups), str(r))
        self.assertEqual(len(group_objects(s)), groups)
        return groups

    def fresh_builder(self, s, name, files=FILES, **env):
        b, _ = self.machine(name, files)
        r = self.pp(b, s.url, env=support.base_env(PREPYC_TRACE=1, **env))
        self.assert_complete(b, r, len(files))
        return r

    def test_a_fresh_builder_fetches_a_group_per_request(self):
        s = self.start('http')
        ro, _ = self.machine('read-only', FILES)
        r = self.pp(ro, s.url, ['--remote-cache-read-only'])
        self.assertEqual(r.rc, 0, str(r))
        self.assertEqual(groups_line(r)[2], 0, 'read-only: no group sent')
        self.assertEqual(os.listdir(s.data) if os.path.isdir(s.data) else [], [])
        groups = self.first_builder(s, 'a')
        r = self.fresh_builder(s, 'b-elsewhere')
        self.assertEqual(self.from_cache(r), N, str(r))
        self.assertIn(' 0 workers', r.out, 'every file a remote hit: no worker started')
        st = remote_stats(r)
        self.assertEqual((st.get('hits'), st.get('requests'), st.get('uploads')),
                         (N, groups, 0), str(r))
        self.assertEqual(groups_line(r), (groups, groups, 0), str(r))

    def test_a_changed_file_costs_one_group(self):
        s = self.start('http')
        groups = self.first_builder(s, 'a')
        edited = dict(FILES, **{'gen/g007.py': FILES['gen/g007.py'] + 'Z = 1\n'})
        r = self.fresh_builder(s, 'c-edited', edited)
        self.assertEqual(self.from_cache(r), N - 1, str(r))
        st = remote_stats(r)
        self.assertEqual(st.get('uploads'), 1, str(r))
        # the group of the new key and perhaps the old key's: missing, their keys one by one
        self.assertGreaterEqual(groups, 4)
        self.assertGreater(st.get('requests'), groups, str(r))
        self.assertLess(st.get('requests'), groups + N * 3 // 4, str(r))
        total, found, sent = groups_line(r)
        self.assertIn(total - found, (1, 2), str(r))
        self.assertEqual(sent, total - found, str(r))
        r = self.fresh_builder(s, 'd-edited', edited)
        self.assertEqual(self.from_cache(r), N, str(r))
        self.assertEqual(remote_stats(r).get('requests'), total, str(r))

    def test_altered_groups_are_rejected_and_replaced(self):
        s = self.start('http')
        groups = self.first_builder(s, 'a', PREPYC_REMOTE_CACHE_SECRET=SECRET)
        objs = sorted(group_objects(s).items())
        (p1, d1), (p2, d2) = objs[0], objs[1]
        # a byte of a value flipped in one group; two values swapped between keys in another
        recs = records(d1)
        key, value = recs[0]
        recs[0] = (key, value[:10] + bytes([value[10] ^ 1]) + value[11:])
        with open(p1, 'wb') as f:
            f.write(build(recs))
        recs = records(d2)
        (k0, v0), (k1, v1) = recs[0], recs[1]
        recs[0], recs[1] = (k0, v1), (k1, v0)
        with open(p2, 'wb') as f:
            f.write(build(recs))
        r = self.fresh_builder(s, 'b', PREPYC_REMOTE_CACHE_SECRET=SECRET)
        st = remote_stats(r)
        self.assertEqual(st.get('rejected'), 3, str(r))
        # each key's own value, untouched, is taken instead: one request each
        self.assertEqual(self.from_cache(r), N, str(r))
        self.assertEqual(st.get('requests'), groups + 3 + 2, 'the groups, the 3 keys, 2 uploads')
        self.assertEqual(len([w for w in r.err.splitlines() if 'warning: remote' in w]), 1, str(r))
        self.assertEqual(groups_line(r), (groups, groups, 2), 'the two groups mended')
        r = self.fresh_builder(s, 'c', PREPYC_REMOTE_CACHE_SECRET=SECRET)
        self.assertEqual(remote_stats(r).get('rejected'), 0, str(r))
        self.assertEqual(self.from_cache(r), N, str(r))
        self.assertEqual(remote_stats(r).get('requests'), groups, str(r))


TestRemoteGroups = type('TestRemoteGroups', (GroupTests,), {
    'candidate': _first_interpreter(), '__module__': __name__,
    '__doc__': "a remote cache's groups over HTTP, on the first interpreter found"})


def load_tests(loader, standard_tests, pattern):
    return support.load_generated(loader, [TestRemoteGroups])


if __name__ == '__main__':
    unittest.main()
