"""Robustness end to end: workers that crash, exit, hang or write garbage;
targets that cannot start; SIGINT/SIGTERM; SIGKILL at random moments.

The faults come from the worker's test hook PREPYC_TEST_WORKER_FAULT
("KIND:NAME[:MARKER]", src/python/worker.py): a worker compiling a file whose dfile
ends in NAME crashes with SIGSEGV or SIGABRT, exits, hangs or writes garbage
(once only, with MARKER); "nostart:" makes every worker exit before its
hello.  One generated class per interpreter (``TestRobust_<label>``) for the
worker faults; the stray temporary file, signal and kill tests run once,
with the first interpreter found (they test the core, not the target).  After every run: each pyc left in the tree is valid (right magic,
loads, header matches its source) or absent, and no temporary file is left.
"""

import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402

# Runs in the target: argv[1] = tree.  Prints "BAD path: why" for every pyc
# that is neither absent nor valid for its source, then "CHECKED n".
VALID_SCRIPT = r'''
import sys, os, marshal, importlib.util
tree = sys.argv[1]
HLEN = 12 if sys.version_info < (3, 7) else 16
n = 0
for dirpath, dirnames, filenames in os.walk(tree):
    dirnames[:] = [d for d in dirnames if d != '__pycache__']
    for name in filenames:
        if not name.endswith('.py'):
            continue
        src = os.path.join(dirpath, name)
        pyc = importlib.util.cache_from_source(src)
        if not os.path.isfile(pyc):
            continue  # absent (or not a file at all: not ours to judge)
        n += 1
        with open(pyc, 'rb') as f:
            data = f.read()
        why = None
        if data[:4] != importlib.util.MAGIC_NUMBER:
            why = 'bad magic'
        else:
            try:
                marshal.loads(data[HLEN:])
            except Exception as e:
                why = 'does not load: %r' % (e,)
        if why is None and HLEN == 16 and int.from_bytes(data[4:8], 'little') == 0:
            st = os.stat(src)
            if int.from_bytes(data[12:16], 'little') != st.st_size & 0xFFFFFFFF:
                why = 'size in header is not the source size'
        if why:
            print('BAD %s: %s' % (pyc, why))
print('CHECKED %d' % n)
'''


def temps(tree):
    out = []
    for dirpath, dirnames, filenames in os.walk(tree):
        out += [os.path.join(dirpath, n) for n in filenames if n.startswith('.prepyc-')]
    return out


class Base(support.InterpreterCase):
    tmp_prefix = 'prepyc-e2e-robust-'

    def setUp(self):
        super().setUp()
        self.tree = os.path.join(self.tmp, 't')

    def pp(self, args, fault=None, trace=False, **kw):
        env = support.base_env(PREPYC_TEST_WORKER_FAULT=fault)
        if trace:
            env['PREPYC_TRACE'] = '1'
        return support.run_prepyc(['--python', self.py.path, '--no-cache'] + list(args),
                                  cwd=self.tmp, env=env, **kw)

    def assertTreeValid(self, tree=None):
        tree = tree or self.tree
        r = support.run([self.py.path, '-S', '-s', '-B', '-c', VALID_SCRIPT, tree],
                        env=support.base_env())
        self.assertEqual(r.rc, 0, str(r))
        bad = [l for l in r.out.splitlines() if l.startswith('BAD')]
        self.assertEqual(bad, [])
        self.assertEqual(temps(tree), [])
        return int(r.out.splitlines()[-1].split()[1])


class WorkerFaults(Base):
    def make(self):
        support.write_tree(self.tree, {'%s.py' % n: 'X = %r\n' % n for n in 'abcdef'})

    def pyc(self, name):
        return os.path.join(self.tree, '__pycache__', self.py.pyc_name(name))

    def test_crash_is_retried_once_then_reported(self):
        self.make()
        for kind, sig in (('crash', signal.SIGSEGV), ('abort', signal.SIGABRT)):
            r = self.pp(['t'], fault=kind + ':t/c.py', trace=True)
            self.assertEqual(r.rc, 1, str(r))
            self.assertIn("cannot compile 't/c.py': the worker compiling it was killed by "
                          "signal %d (" % sig, r.err)
            self.assertIn('), twice\n', r.err)
            # tried exactly twice: one retry (the pool traces it), then the failure
            retries = [l for l in r.err.splitlines() if 'trying once more' in l]
            self.assertEqual(len(retries), 1, r.err)
            self.assertEqual(r.err.count("cannot compile 't/c.py'"), 1, r.err)
            self.assertFalse(os.path.exists(self.pyc('c')))
            self.assertEqual(self.assertTreeValid(), 5)

    def test_a_crash_that_does_not_repeat_is_survived(self):
        self.make()
        r = self.pp(['t'], fault='crash:t/c.py:' + os.path.join(self.tmp, 'once'))
        self.assertEqual(r.rc, 0, str(r))
        self.assertTrue(os.path.exists(os.path.join(self.tmp, 'once')), 'the fault never fired')
        self.assertEqual(r.err, '')
        self.assertEqual(self.assertTreeValid(), 6)

    def test_exit_and_garbage_are_reported(self):
        self.make()
        r = self.pp(['t'], fault='exit:t/a.py')
        self.assertEqual(r.rc, 1, str(r))
        self.assertIn("cannot compile 't/a.py': the worker compiling it exited with status 3",
                      r.err)
        self.assertEqual(self.assertTreeValid(), 5)
        r = self.pp(['t'], fault='garbage:t/a.py')
        self.assertEqual(r.rc, 1, str(r))
        self.assertIn("cannot compile 't/a.py': the worker compiling it sent a malformed reply",
                      r.err)
        self.assertEqual(self.assertTreeValid(), 5)

    def test_what_a_worker_prints_never_cuts_a_line(self):
        # The worker writes 5 KB to its stderr (no newline) and a line to its
        # stdout while compiling t/b.py, which fails: prepyc's line for it is
        # whole, and what the worker printed follows it whole, under it.
        self.make()
        support.write_tree(self.tree, {'b.py': 'def f(:\n'})
        r = self.pp(['t'], fault='print:t/b.py')
        self.assertEqual(r.rc, 1, str(r))
        self.assertEqual(r.out.count('\n'), 1, str(r))  # the summary alone on stdout
        self.assertNotIn('worker-', r.out)
        lines = r.err.splitlines()
        error = [i for i, l in enumerate(lines) if l.startswith("prepyc: error: cannot compile 't/b.py'")]
        self.assertEqual(len(error), 1, r.err)
        head = [i for i, l in enumerate(lines)
                if l.startswith('prepyc: warning: ') and "printed, while compiling 't/b.py'" in l]
        self.assertEqual(len(head), 1, r.err)
        self.assertGreater(head[0], error[0], r.err)
        self.assertIn('worker-noise ' * 400 + 'worker-stdout', r.err)
        self.assertIn('worker-stdout\nend-of-noise\n', r.err)
        # in compileall style it comes with the file's own lines, on stderr
        shutil.rmtree(os.path.join(self.tree, '__pycache__'))
        r = support.run_prepyc(['compileall', '--python', self.py.path, '--no-cache', 't'],
                               cwd=self.tmp, env=support.base_env(PREPYC_TEST_WORKER_FAULT='print:t/b.py'))
        self.assertEqual(r.rc, 1, str(r))
        self.assertIn("Compiling 't/b.py'...\n***", r.out)
        self.assertNotIn('worker-', r.out)
        self.assertIn('worker-noise ' * 400 + 'worker-stdout\nend-of-noise\n', r.err)
        # -q hides it in concise style, like the compiler's warnings
        shutil.rmtree(os.path.join(self.tree, '__pycache__'))
        r = self.pp(['-q', 't'], fault='print:t/b.py')
        self.assertEqual(r.rc, 1, str(r))
        self.assertNotIn('worker-', r.err)
        self.assertIn("cannot compile 't/b.py'", r.err)

    def test_hang_is_killed_by_the_timeout(self):
        self.skip_if_pyodide('a worker takes 1-2 s to start: --timeout 2 would end a start')
        self.make()
        t0 = time.monotonic()
        r = self.pp(['--timeout', '2', 't'], fault='hang:t/b.py', timeout=60)
        self.assertLess(time.monotonic() - t0, 20)
        self.assertEqual(r.rc, 1, str(r))
        self.assertIn("cannot compile 't/b.py': the worker compiling it took longer than 2 s",
                      r.err)
        self.assertNotIn('twice', r.err, 'a timeout must not be retried')
        self.assertEqual(self.assertTreeValid(), 5)
        # compileall style: the file fails as compileall prints failures
        r = support.run_prepyc(['compileall', '--python', self.py.path, '--no-cache',
                                '--timeout', '2', '-q', 't'], cwd=self.tmp,
                               env=support.base_env(PREPYC_TEST_WORKER_FAULT='hang:t/b.py'),
                               timeout=60)
        self.assertEqual(r.rc, 1, str(r))
        self.assertIn("t/b.py", r.out)

    def test_timeout_option_values(self):
        self.make()
        r = self.pp(['--timeout', '0', 't'])
        self.assertEqual(r.rc, 0, str(r))
        r = self.pp(['--timeout', '-1', 't'])
        self.assertEqual(r.rc, 2, str(r))
        self.assertIn('--timeout', r.err)
        # compileall: prepyc's own option, answered by prepyc (not handed to compileall)
        for bad in (['--timeout', '-1'], ['--timeout=x']):
            r = support.run_prepyc(['compileall', '--python', self.py.path, '--no-cache', '-f',
                                    '-q'] + bad + ['t'], cwd=self.tmp, env=support.base_env())
            self.assertEqual(r.rc, 2, str(r))
            self.assertIn("option '--timeout' expects a number of seconds", r.err)
        r = support.run_prepyc(['compileall', '--python', self.py.path, '--no-cache', '-f',
                                '--timeout', '0', '-q', 't'], cwd=self.tmp,
                               env=support.base_env())
        self.assertEqual((r.rc, r.out, r.err), (0, '', ''), str(r))

    def test_workers_that_cannot_start(self):
        # the probe works, every worker exits before its hello: one error, exit 2
        self.make()
        r = self.pp(['t'], fault='nostart:')
        self.assertEqual(r.rc, 2, str(r))
        self.assertEqual(r.err.strip().splitlines(),
                         ["prepyc: error: cannot start a worker of '%s': it exited with status 5"
                          % r.err.split("'")[1]], r.err)
        self.assertFalse(os.path.exists(os.path.join(self.tree, '__pycache__')))


class Targets(Base):
    candidate = None  # set below

    def test_a_target_that_cannot_start(self):
        support.write_tree(self.tree, {'a.py': 'x = 1\n'})
        for bad in ('/bin/false', os.path.join(self.tmp, 'missing-python')):
            r = support.run_prepyc(['--python', bad, 't'], cwd=self.tmp, env=support.base_env())
            self.assertEqual(r.rc, 2, str(r))
            self.assertIn(bad, r.err)
            self.assertEqual(len(r.err.strip().splitlines()), 1, r.err)
            self.assertFalse(os.path.exists(os.path.join(self.tree, '__pycache__')))

    def test_a_program_that_is_not_python(self):
        # /bin/ls echoes the probe's program back (2 KB): prepyc says one line
        support.write_tree(self.tree, {'a.py': 'x = 1\n'})
        for cmd in (['t'], ['check', 't'], ['compileall', 't']):
            r = support.run_prepyc(cmd[:1] + ['--python', '/bin/ls'] + cmd[1:], cwd=self.tmp,
                                   env=support.base_env())
            self.assertEqual(r.rc, 2, str(r))
            self.assertEqual(r.err, "prepyc: error: '/bin/ls' is not a usable Python "
                                    "interpreter (exited with status 2)\n", str(r))
        # a broken Python's own first line is worth showing, in the same line
        fake = os.path.join(self.tmp, 'broken-python')
        with open(fake, 'w') as f:
            f.write('#!/bin/sh\necho "Fatal Python error: init_fs_encoding: no codec" >&2\n'
                    'echo "second line" >&2\nexit 1\n')
        os.chmod(fake, 0o755)
        r = support.run_prepyc(['--python', fake, 't'], cwd=self.tmp, env=support.base_env())
        self.assertEqual(r.rc, 2, str(r))
        self.assertEqual(r.err, "prepyc: error: '%s' is not a usable Python interpreter (exited "
                                "with status 1; it printed: Fatal Python error: "
                                "init_fs_encoding: no codec)\n" % fake, str(r))


def first_interpreter():
    for c in support.candidates():
        if c.interp is not None:
            return c
    return None


class StrayTemps(Base):
    """.prepyc-PID-N.tmp files left by a killed run: removed by the next run that
    writes in their directory, or by `prepyc clean`; a live process's are kept."""

    candidate = first_interpreter()

    def dead_pid(self):
        p = subprocess.Popen(['true'])
        p.wait()
        return p.pid

    def plant(self, rel, pid, n, age=0):
        path = os.path.join(self.tree, rel, '.prepyc-%d-%d.tmp' % (pid, n))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'wb') as f:
            f.write(b'half a pyc')
        if age:
            t = time.time() - age
            os.utime(path, (t, t))
        return path

    def test_strays_are_removed_live_ones_kept(self):
        support.write_tree(self.tree, {'a.py': 'a = 1\n', 'sub/b.py': 'b = 1\n'})
        self.assertEqual(self.pp(['-q', 't']).rc, 0)
        dead = self.dead_pid()
        gone = [self.plant('__pycache__', dead, 1),
                self.plant('__pycache__', 1, 3, age=7200)]  # alive, but hours old
        live = self.plant('__pycache__', os.getpid(), 2)
        elsewhere = self.plant('sub/__pycache__', dead, 4)
        t = time.time() + 5
        os.utime(os.path.join(self.tree, 'a.py'), (t, t))
        r = self.pp(['t'])
        self.assertEqual(r.rc, 0, str(r))
        summary = support.parse_summary(r.out)
        self.assertEqual((summary['compiled'], summary['uptodate']), (1, 1), r.out)
        for path in gone:
            self.assertFalse(os.path.exists(path), path)
        self.assertTrue(os.path.exists(live))
        # nothing was written in sub/__pycache__: not even looked at
        self.assertTrue(os.path.exists(elsewhere))
        # legacy layout: the source directories
        legacy = self.plant('sub', dead, 5)
        r = self.pp(['-q', '-b', 't'])
        self.assertEqual(r.rc, 0, str(r))
        self.assertFalse(os.path.exists(legacy))
        # clean: every __pycache__; a live run's temporary file stays
        r = support.run_prepyc(['clean', '--python', self.py.path, '-n', 't'], cwd=self.tmp,
                               env=support.base_env())
        self.assertEqual(r.rc, 0, str(r))
        self.assertIn('would remove %s' % os.path.relpath(elsewhere, self.tmp), r.out)
        self.assertTrue(os.path.exists(elsewhere))
        r = support.run_prepyc(['clean', '--python', self.py.path, '-v', 't'], cwd=self.tmp,
                               env=support.base_env())
        self.assertEqual(r.rc, 0, str(r))
        self.assertIn('removed %s\n' % os.path.relpath(elsewhere, self.tmp), r.out)
        self.assertIn('1 stray temporary file', r.out)
        self.assertFalse(os.path.exists(elsewhere))
        self.assertTrue(os.path.exists(live))
        os.unlink(live)
        self.assertEqual(self.assertTreeValid(), 2)


class Signals(Base):
    """SIGINT, SIGTERM and SIGKILL sent to prepyc in the middle of a run."""

    candidate = first_interpreter()

    def big_tree(self, n=300):
        files = {}
        for i in range(n):
            body = ''.join('def f%d(x):\n    return x + %d\n' % (k, k) for k in range(5 + i % 60))
            files['p%02d/m%03d.py' % (i % 10, i)] = body
        support.write_tree(self.tree, files)

    def start(self, args, fault=None):
        env = support.base_env(PREPYC_TEST_WORKER_FAULT=fault)
        return subprocess.Popen([support.PREPYC, '--python', self.py.path, '--no-cache']
                                + list(args), cwd=self.tmp, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)

    def test_sigint_and_sigterm(self):
        self.big_tree(60)
        for sig, rc in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
            for rel in support.pyc_files(self.tree):
                os.unlink(os.path.join(self.tree, rel))
            # a hung worker guarantees the run is still going when the signal comes
            p = self.start(['-j2', 't'], fault='hang:m030.py')
            time.sleep(1.5)
            self.assertIsNone(p.poll(), 'prepyc finished before the signal')
            os.kill(p.pid, sig)
            out, err = p.communicate(timeout=30)
            self.assertEqual(p.returncode, rc, err)
            # one line of ours says why it stopped, and it is the last
            self.assertTrue(err.decode().endswith(
                'prepyc: %s\n' % ('interrupted' if sig == signal.SIGINT else 'terminated')), err)
            time.sleep(0.2)
            self.assertEqual(support.session_processes(p.pid), [], 'workers left running')
            self.assertTreeValid()

    def test_sigkill_at_random_moments_never_leaves_a_bad_pyc(self):
        self.big_tree()
        t0 = time.monotonic()
        r = support.run_prepyc(['--python', self.py.path, '--no-cache', '-q', 't'], cwd=self.tmp,
                               env=support.base_env())
        self.assertEqual(r.rc, 0, str(r))
        duration = time.monotonic() - t0
        rng = random.Random(1234)
        strays = 0
        for i in range(50):
            for rel in support.pyc_files(self.tree):
                os.unlink(os.path.join(self.tree, rel))
            p = self.start(['-q', 't'])
            time.sleep(rng.uniform(0.0, duration))
            try:
                os.kill(p.pid, signal.SIGKILL)  # prepyc only: its workers are orphaned
            except ProcessLookupError:
                pass
            p.communicate(timeout=30)
            # an orphaned worker sees the end of its input and exits
            deadline = time.monotonic() + 10
            while support.session_processes(p.pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            self.assertEqual(support.session_processes(p.pid), [], 'workers outlived prepyc')
            strays += len(temps(self.tree))
            # every pyc under its final name is whole
            r = support.run([self.py.path, '-S', '-s', '-B', '-c', VALID_SCRIPT, self.tree],
                            env=support.base_env())
            bad = [l for l in r.out.splitlines() if l.startswith('BAD')]
            self.assertEqual(bad, [], 'kill %d after %.2fs' % (i, duration))
        # the next run removes the strays and completes the tree
        r = support.run_prepyc(['--python', self.py.path, '--no-cache', 't'], cwd=self.tmp,
                               env=support.base_env())
        self.assertEqual(r.rc, 0, str(r))
        self.assertEqual(self.assertTreeValid(), 300)
        r = support.run_prepyc(['check', '--python', self.py.path, 't'], cwd=self.tmp,
                               env=support.base_env())
        self.assertEqual(r.rc, 0, str(r))


Targets.candidate = first_interpreter()

_GENERATED = support.per_interpreter(WorkerFaults, 'TestRobust_',
                                     'worker faults with %s (%s)', globals())


def load_tests(loader, standard_tests, pattern):
    suite = support.load_generated(loader, _GENERATED)
    suite.addTests(loader.loadTestsFromTestCase(Targets))
    suite.addTests(loader.loadTestsFromTestCase(StrayTemps))
    suite.addTests(loader.loadTestsFromTestCase(Signals))
    return suite


if __name__ == '__main__':
    unittest.main()
