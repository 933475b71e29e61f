#!/usr/bin/env python3
"""prepyc's test entry point (``make test`` runs ``python3 tests/run.py``).

1. the header lint, tools/check-headers.py (``make lint``): do the header
   comments name only functions that exist, with their real signatures?
   One test: it passes when the checker finds nothing;
2. the C unit tests: the binary named by ``PREPYC_UNIT_TESTS`` (the Makefile
   sets it), else ``tests/unit/unit-tests`` or ``build/unit-tests`` if built;
   its output ends with ``unit: N passed, N failed``;
3. the end-to-end unittest suite in tests/e2e (one test class per target
   interpreter; ``PREPYC_TEST_PYTHONS=/path/a,/path/b`` restricts them).
   On the Pyodide interpreters (CPython 3.14 and 3.15 in WebAssembly, see
   tests/pyodide/) only a quick selection runs, support.PYODIDE_QUICK, unless
   ``PREPYC_TEST_PYODIDE=all``; ``PREPYC_TEST_PYODIDE=none`` leaves them out.

The last line printed is ``N passed, N failed[, N skipped]`` over all of
them; the exit status is non-zero when anything failed.

Options:
  -k PATTERN     run only e2e tests matching PATTERN (unittest -k; repeatable)
  --no-lint      skip the header lint
  --no-unit      skip the C unit tests
  --no-e2e       skip the end-to-end tests
  -q             less verbose e2e output
  --valgrind-logs DIR
                 after the tests, judge the valgrind logs that
                 tests/valgrind-prepyc wrote in DIR (``make test-valgrind``):
                 every prepyc process with a memcheck error or a definite or
                 indirect leak is printed and counted as one failure
"""

import argparse
import os
import re
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
E2E = os.path.join(HERE, 'e2e')


def run_lint():
    """tools/check-headers.py on src/, counted as one test: (passed, failed, skipped)."""
    checker = os.path.join(REPO, 'tools', 'check-headers.py')
    print('== header lint: %s' % os.path.relpath(checker, REPO), flush=True)
    try:
        proc = subprocess.run([sys.executable, checker], cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, universal_newlines=True, timeout=300)
    except (OSError, subprocess.SubprocessError) as e:
        print('cannot run the header lint: %s: counted as 1 failure' % e)
        return 0, 1, 0
    sys.stdout.write(proc.stdout)
    if proc.returncode != 0:
        print('header lint: exit status %d: counted as 1 failure' % proc.returncode, flush=True)
        return 0, 1, 0
    print('header lint: ok', flush=True)
    return 1, 0, 0


def unit_binary():
    named = os.environ.get('PREPYC_UNIT_TESTS')
    if named:
        return named, True
    for cand in (os.path.join(HERE, 'unit', 'unit-tests'), os.path.join(REPO, 'build', 'unit-tests')):
        if os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand, False
    return None, False


def run_unit():
    """Returns (passed, failed, skipped)."""
    UNIT, required = unit_binary()
    if UNIT is None:
        print('== C unit tests: not built, skipped', flush=True)
        return 0, 0, 0
    if not (os.path.isfile(UNIT) and os.access(UNIT, os.X_OK)):
        print('== C unit tests: %s (PREPYC_UNIT_TESTS) does not exist: counted as 1 failure'
              % UNIT, flush=True)
        return 0, 1, 0
    print('== C unit tests: %s' % os.path.relpath(UNIT, REPO), flush=True)
    try:
        proc = subprocess.Popen([UNIT], cwd=REPO, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
    except OSError as e:
        print('cannot run the unit tests: %s' % e)
        return 0, 1, 0
    last = None
    for raw in proc.stdout:
        line = raw.decode('utf-8', 'replace')
        sys.stdout.write(line)
        m = re.match(r'^\s*unit:\s*(\d+) passed, (\d+) failed', line)
        if m:
            last = (int(m.group(1)), int(m.group(2)))
    rc = proc.wait()
    sys.stdout.flush()
    if last is None:
        print('unit-tests printed no "unit: N passed, N failed" line (exit status %d): '
              'counted as 1 failure' % rc)
        return 0, 1, 0
    passed, failed = last
    if rc != 0 and failed == 0:
        print('unit-tests exited with status %d: counted as 1 failure' % rc)
        failed = 1
    return passed, failed, 0


def skip_pyodide_extras(suite):
    """On Pyodide interpreters, skip what support.PYODIDE_QUICK leaves out
    (PREPYC_TEST_PYODIDE=all runs everything); a class left with nothing is
    skipped whole, so that its setUpClass does not run."""
    import support
    classes = {}
    for test in iter_tests(suite):
        why = support.pyodide_excluded(test)
        classes.setdefault(type(test), []).append(why)
        if why:
            setattr(test, test._testMethodName, unittest.skip(why)(lambda: None))
    for cls, whys in classes.items():
        if all(whys):
            cls.__unittest_skip__ = True
            cls.__unittest_skip_why__ = whys[0]


def iter_tests(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from iter_tests(t)
        else:
            yield t


def run_e2e(patterns, verbosity):
    print('== end-to-end tests: %s (prepyc: %s)'
          % (os.path.relpath(E2E, REPO),
             os.environ.get('PREPYC') or os.path.join(REPO, 'prepyc')), flush=True)
    sys.path.insert(0, E2E)
    loader = unittest.TestLoader()
    if patterns:
        loader.testNamePatterns = ['*%s*' % p if '*' not in p else p for p in patterns]
    try:
        suite = loader.discover(E2E, pattern='test_*.py', top_level_dir=E2E)
    except Exception as e:  # an import error in the test modules themselves
        print('cannot load the e2e tests: %r' % e)
        return 0, 1, 0
    skip_pyodide_extras(suite)
    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=verbosity)
    result = runner.run(suite)
    # loader errors (import failures) show up as failed tests in the suite run
    skipped = len(result.skipped)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    # a test with failing subtests counts once as run but may add several failures
    failed_tests = set(id(t) for t, _ in result.failures + result.errors) | \
        set(id(t) for t in result.unexpectedSuccesses)
    passed = max(0, result.testsRun - skipped - len(failed_tests) - len(result.expectedFailures))
    passed += len(result.expectedFailures)
    return passed, failed, skipped


VALGRIND_BAD = re.compile(r'ERROR SUMMARY: [1-9]|(definitely|indirectly) lost: [1-9]')


def check_valgrind_logs(logdir):
    """Returns (passed, failed, skipped): one per prepyc process logged."""
    logs = sorted(f for f in os.listdir(logdir) if f.endswith('.log'))
    bad = unfinished = 0
    for name in logs:
        with open(os.path.join(logdir, name), errors='replace') as f:
            text = f.read()
        if VALGRIND_BAD.search(text):
            bad += 1
            print('== valgrind: %s\n%s' % (name, text.rstrip()))
        elif 'ERROR SUMMARY' not in text:
            unfinished += 1  # killed, or a spawned child that exec'd a worker
    print('== valgrind: %d prepyc processes logged in %s: %d with errors or leaks, '
          '%d without a summary (killed, or a child that exec\'d)'
          % (len(logs), logdir, bad, unfinished), flush=True)
    if not logs:
        print('no valgrind log: counted as 1 failure')
        return 0, 1, 0
    return 0, bad, 0


def main(argv=None):
    ap = argparse.ArgumentParser(description='run prepyc\'s tests')
    ap.add_argument('-k', dest='patterns', action='append', default=[],
                    help='only e2e tests whose name matches (substring or glob)')
    ap.add_argument('--no-lint', action='store_true')
    ap.add_argument('--no-unit', action='store_true')
    ap.add_argument('--no-e2e', action='store_true')
    ap.add_argument('-q', '--quiet', action='store_true')
    ap.add_argument('--valgrind-logs', metavar='DIR')
    args = ap.parse_args(argv)

    start = time.monotonic()
    passed = failed = skipped = 0
    if not args.no_lint:
        p, f, s = run_lint()
        passed, failed, skipped = passed + p, failed + f, skipped + s
    if not args.no_unit:
        p, f, s = run_unit()
        passed, failed, skipped = passed + p, failed + f, skipped + s
    if not args.no_e2e:
        p, f, s = run_e2e(args.patterns, 1 if args.quiet else 2)
        passed, failed, skipped = passed + p, failed + f, skipped + s
    if args.valgrind_logs:
        p, f, s = check_valgrind_logs(args.valgrind_logs)
        passed, failed, skipped = passed + p, failed + f, skipped + s
    print('== total time %.1fs' % (time.monotonic() - start))
    line = '%d passed, %d failed' % (passed, failed)
    if skipped:
        line += ', %d skipped' % skipped
    print(line, flush=True)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
