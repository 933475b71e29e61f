#!/usr/bin/env python3
"""CPython's own compileall command-line tests, run against ``prepyc compileall``
(``make compileall-tests``).

For every interpreter (Debian's /usr/bin/python3 and each
``$(pyenv root)/versions/*/bin/python3.X``; ``--python PATH`` or
``PREPYC_TEST_PYTHONS=a,b`` replaces the list), this runs the command-line test
classes of THAT interpreter's own ``Lib/test/test_compileall.py``
(``CommandLineTests`` in 3.6; ``CommandLineTestsWithSourceEpoch`` and
``CommandLineTestsNoSourceEpoch`` later -- spelled ``Commmand...`` in 3.7/3.8),
inside that interpreter, twice (tests/cpython/driver.py does the running):

* baseline: unmodified, i.e. against the real ``python -m compileall``;
* prepyc:   every ``python [OPTIONS] -m compileall ARGS`` the tests start through
  ``test.support.script_helper`` (assert_python_ok/_failure,
  run_python_until_end, spawn_python) runs
  ``$PREPYC compileall --python <that python> ARGS`` instead, with the
  environment, stdin, stdout/stderr and cwd script_helper built (its -I/-E
  choice, TERM, PYTHONIOENCODING, PYTHONPATH, PYTHONPYCACHEPREFIX,
  SOURCE_DATE_EPOCH...).  Interpreter OPTIONS go to the interpreter, not to
  compileall, so they are mapped onto the environment prepyc runs with:
    -O / -OO      -> PYTHONOPTIMIZE=1 / 2
    -X pycache_prefix=P -> PYTHONPYCACHEPREFIX=P  (-X faulthandler ->
                     PYTHONFAULTHANDLER=1, -X utf8 -> PYTHONUTF8, ...)
    -E            -> the PYTHON* variables are removed (the interpreter would
                     ignore them)
    -I            -> as -E, plus PYTHONNOUSERSITE=1 and (3.11+) PYTHONSAFEPATH=1
    -s -B -u -P -W -v -d -> their PYTHON* variables
    -S            -> dropped: it has no variable, and `prepyc compileall` stands
                     for `python -m compileall` without -S.  Only runs with no
                     path argument (which compile sys.path) can notice: the
                     site directories are then listed too (depth 0).
  Other options make the test fail with "cannot map interpreter option".
  Processes that do not run ``-m compileall`` (running the compiled script or
  pyc to check co_filename, ...) still run the real interpreter.
  Before 3.11, ``-I``'s "no current directory on sys.path" has no variable;
  it would matter only for a run without path arguments, which the tests
  always make with environment variables (hence without -I).

Report per interpreter: tests run, passed in baseline, passed with prepyc, and
each test that passes in the baseline but fails with prepyc (first lines of
the failure and the prepyc command lines it ran).  Tests that fail or are
skipped in the baseline, the EXCLUDED tests below, and tests that pass without
starting any compileall command line are counted as skipped and listed.
Last line: ``compileall-tests: N passed, N failed, N skipped``; the exit status
is 1 when a test failed.

Options:
  --python PATH      interpreter to test (repeatable; default: discover)
  --prepyc PATH      prepyc binary (default: $PREPYC, else <repo>/prepyc)
  -k PATTERN         only tests whose Class.test_name matches (fnmatch, or
                     substring without wildcards; repeatable)
  --baseline-only    run only the baseline (checks the harness and the machine)
  --timeout S        per-test time limit inside the driver (default 300)
  -j N               interpreters in parallel (default 1)
  -v                 full failure text, and every test's outcome
  --keep             keep the work directories (driver output, cwd)
"""

import argparse
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DRIVER = os.path.join(HERE, 'driver.py')

# Tests of the selected classes that cannot be run through a command-line
# replacement: they exercise compileall's Python API in-process, so they would
# "pass" without prepyc being involved.  They are run (their outcome is shown
# with -v) but counted as skipped.  Keyed by method name; all classes.
EXCLUDED = {
    'test_workers_available_cores':
        'mocks compileall.compile_dir and calls compileall.main() in-process '
        '(checks the workers= value passed to the Python API); no process is run',
    'test_ddir_only_one_worker':
        '3.7/3.8 only: calls compileall.compile_dir(ddir=...) in-process '
        '(an API test placed in CommandLineTestsBase; later versions moved it)',
    'test_ddir_multiple_workers':
        '3.7/3.8 only: calls compileall.compile_dir(ddir=..., workers=2) in-process',
    'test_ddir_empty_only_one_worker':
        "3.7/3.8 only: calls compileall.compile_dir(ddir='') in-process",
    'test_ddir_empty_multiple_workers':
        "3.7/3.8 only: calls compileall.compile_dir(ddir='', workers=2) in-process",
}

# Environment variables of the caller that must not reach the driver (they
# change what compileall or prepyc do, or break a foreign interpreter).
SCRUB_EXACT = {'VIRTUAL_ENV', 'SOURCE_DATE_EPOCH', 'PREPYC_TEST_PYTHONS', 'PREPYC_TRACE'}

PROBE = r'''
import json, os, sys, sysconfig
p = os.path.join(sysconfig.get_paths()['stdlib'], 'test', 'test_compileall.py')
info = {'version': list(sys.version_info[:3]), 'impl': sys.implementation.name,
        'test_file': p, 'has_test': os.path.isfile(p)}
try:
    import test.support.script_helper
except Exception as e:
    info['has_test'] = False
    info['why'] = '%s: %s' % (type(e).__name__, e)
info['sys_path'] = [p for p in sys.path if p]
print(json.dumps(info))
'''


# ---------------------------------------------------------------------------
# Interpreters

def pyenv_root():
    if shutil.which('pyenv'):
        try:
            r = subprocess.run(['pyenv', 'root'], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, timeout=30, check=True)
            root = r.stdout.decode().strip()
            if root and os.path.isdir(root):
                return root
        except (OSError, subprocess.SubprocessError):
            pass
    root = os.path.expanduser('~/.pyenv')
    return root if os.path.isdir(root) else None


def _version_key(name):
    return tuple(int(x) if x.isdigit() else 0 for x in re.split(r'[.-]', name))


def discover():
    env_list = os.environ.get('PREPYC_TEST_PYTHONS')
    if env_list:
        return [p.strip() for p in env_list.split(',') if p.strip()]
    out = ['/usr/bin/python3']
    root = pyenv_root()
    vdir = os.path.join(root, 'versions') if root else None
    if vdir and os.path.isdir(vdir):
        for v in sorted(os.listdir(vdir), key=_version_key):
            bindir = os.path.join(vdir, v, 'bin')
            if not os.path.isdir(bindir):
                continue
            for name in sorted(os.listdir(bindir)):
                if re.match(r'^python3\.\d+$', name):
                    out.append(os.path.join(bindir, name))
    return out


def label_of(path):
    m = re.search(r'versions/([^/]+)/bin/', path)
    if m:
        return 'pyenv-' + m.group(1)
    if path == '/usr/bin/python3':
        return 'debian-python3'
    return path


def base_env(cache_dir):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith('PYTHON') and k not in SCRUB_EXACT}
    env['LC_ALL'] = 'C.UTF-8'
    env.pop('LANG', None)
    env.pop('LANGUAGE', None)
    env['PREPYC_CACHE_DIR'] = cache_dir
    return env


def probe(path, env):
    try:
        r = subprocess.run([path, '-S', '-c', PROBE], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=env, timeout=120)
    except (OSError, subprocess.SubprocessError) as e:
        return None, 'cannot run: %s' % e
    if r.returncode != 0:
        return None, 'probe failed: %s' % r.stderr.decode('utf-8', 'replace').strip()[-300:]
    info = json.loads(r.stdout.decode())
    try:
        r2 = subprocess.run([path, '-c', PROBE], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, timeout=120)
        if r2.returncode == 0:
            info['sys_path'] += json.loads(r2.stdout.decode())['sys_path']
    except (OSError, subprocess.SubprocessError, ValueError):
        pass
    if info['impl'] != 'cpython':
        return None, 'not CPython (%s)' % info['impl']
    if tuple(info['version']) < (3, 6):
        return None, 'older than 3.6'
    if not info['has_test']:
        return None, 'no test package (%s)' % (info.get('why') or info['test_file'] + ' missing')
    return info, None


# ---------------------------------------------------------------------------
# Protecting the interpreter's own bytecode caches
#
# A compileall run without path arguments compiles the target's sys.path
# directories (depth 0).  From 3.9 the tests redirect that into a
# PYTHONPYCACHEPREFIX, but in 3.6-3.8 (and whenever a prepyc under test ignores
# the prefix) it writes into the interpreter's own __pycache__ directories --
# `-f` even rewrites them all.  A faulty prepyc must not leave broken pycs in
# an installed stdlib (they would be trusted: their mtime matches), so every
# __pycache__ directly under a sys.path directory is saved before each driver
# run and put back afterwards.

class CacheGuard(object):
    def __init__(self, sys_path, backup_root):
        self.dirs = []
        seen = set()
        for d in sys_path:
            d = os.path.abspath(d)
            if d in seen or not os.path.isdir(d) or d.startswith(tempfile.gettempdir() + os.sep):
                continue
            seen.add(d)
            self.dirs.append(os.path.join(d, '__pycache__'))
        self.backup_root = backup_root

    def _backup(self, i):
        return os.path.join(self.backup_root, str(i))

    def save(self):
        shutil.rmtree(self.backup_root, ignore_errors=True)
        os.makedirs(self.backup_root)
        for i, d in enumerate(self.dirs):
            if os.path.isdir(d):
                shutil.copytree(d, self._backup(i), symlinks=True)

    def restore(self):
        """Put every saved __pycache__ back; return the files that differed."""
        changed = []
        for i, d in enumerate(self.dirs):
            b = self._backup(i)
            if not os.path.isdir(b):
                if os.path.isdir(d):
                    shutil.rmtree(d, ignore_errors=True)
                    changed.append(d + ' (created)')
                continue
            if not os.path.isdir(d):
                os.makedirs(d)
            saved = set(os.listdir(b))
            for name in os.listdir(d):
                if name not in saved:
                    p = os.path.join(d, name)
                    if os.path.isdir(p) and not os.path.islink(p):
                        shutil.rmtree(p, ignore_errors=True)
                    else:
                        os.unlink(p)
                    changed.append(p + ' (created)')
            for name in saved:
                src, dst = os.path.join(b, name), os.path.join(d, name)
                if os.path.isdir(src):
                    continue
                try:
                    with open(src, 'rb') as f1, open(dst, 'rb') as f2:
                        same = f1.read() == f2.read()
                except OSError:
                    same = False
                if not same:
                    changed.append(dst + ' (changed)')
                    if os.path.lexists(dst):
                        os.unlink(dst)   # may be a hard link of another pyc
                    shutil.copy2(src, dst)
                else:
                    st = os.stat(src)
                    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))
        return changed


# ---------------------------------------------------------------------------
# Running the driver

class Run(object):
    """The outcome of one driver run (baseline or prepyc) on one interpreter."""

    def __init__(self):
        self.ids = []
        self.results = {}     # id -> record
        self.fatal = None     # text when the driver could not run the tests
        self.elapsed = 0.0


def run_driver(python, mode, work, args, prepyc, env):
    run = Run()
    cwd = os.path.join(work, mode)
    os.makedirs(cwd)
    driver = os.path.join(cwd, 'driver.py')   # not in the repo: sys.path[0] is cwd
    shutil.copy(DRIVER, driver)
    results = os.path.join(work, mode + '.jsonl')
    cmd = [python, driver, mode, results, '--timeout', str(args.timeout)]
    if mode == 'prepyc':
        cmd += ['--prepyc', prepyc]
    for k in args.k or ():
        cmd += ['-k', k]
    t0 = time.monotonic()
    try:
        r = subprocess.run(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=args.timeout * 4 + 600)
        output, rc = r.stdout.decode('utf-8', 'replace'), r.returncode
    except subprocess.TimeoutExpired as e:
        output, rc = (e.output or b'').decode('utf-8', 'replace'), 'timeout'
    run.elapsed = time.monotonic() - t0
    done = False
    current = None
    if os.path.exists(results):
        with open(results, encoding='utf-8') as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                ev = rec.get('event')
                if ev == 'start':
                    run.ids = rec['tests']
                elif ev == 'begin':
                    current = rec['id']
                elif ev == 'test':
                    run.results[rec['id']] = rec
                    if rec['id'] not in run.ids:
                        run.ids.append(rec['id'])
                    current = None
                elif ev == 'fatal':
                    run.fatal = rec['detail']
                elif ev == 'done':
                    done = True
    if not done and run.fatal is None:
        run.fatal = 'driver did not finish (exit status %s)%s\n%s' % (
            rc, '; last test started: %s' % current if current else '', output[-3000:])
        if current and current not in run.results:
            run.results[current] = {'id': current, 'status': 'fail', 'calls': [],
                                    'detail': 'driver died or timed out in this test'}
    return run


def first_lines(text, n):
    """The useful part of a unittest failure text: the kind, where the last
    frame is, and what follows it (the exception and its message)."""
    lines = text.rstrip().splitlines()
    kind = lines[0].split(':', 1)[0] if lines and ':' in lines[0] else ''
    last_frame = None
    for i, line in enumerate(lines):
        if line.startswith('  File '):
            last_frame = i
    if last_frame is None:
        body = lines
    else:
        where = lines[last_frame].strip()
        body = ['%s at %s' % (kind or 'failure', where)] + [
            l for l in lines[last_frame + 1:] if not re.match(r'^\s*[~^]+\s*$', l)]
    if len(body) > n:
        body = body[:n] + ['... (%d more lines; -v shows all)' % (len(body) - n)]
    return body


def fmt_call(call):
    env = ' '.join('%s=%s' % (k, '<unset>' if v is None else v)
                   for k, v in sorted(call['env_changes'].items()))
    notes = ''.join('  [%s]' % n for n in call.get('notes') or ())
    return '%s%s%s' % (env + ' ' if env else '',
                       ' '.join(_quote(a) for a in call['prepyc_argv']), notes)


def _quote(a):
    return a if re.match(r'^[\w@%+=:,./-]+$', a) else repr(a)


# ---------------------------------------------------------------------------

class Outcome(object):
    def __init__(self, label, path):
        self.label = label
        self.path = path
        self.lines = []
        self.passed = 0
        self.failed = 0
        self.skipped = 0

    def p(self, s=''):
        self.lines.append(s)


def check(path, args, prepyc):
    label = label_of(path)
    out = Outcome(label, path)
    work = tempfile.mkdtemp(prefix='prepyc-cpython-tests-%s-' % re.sub(r'\W+', '_', label))
    cache = os.path.join(work, 'prepyc-cache')
    os.makedirs(cache)
    env = base_env(cache)
    try:
        info, why = probe(path, env)
        if info is None:
            out.p('== %s: %s: skipped: %s' % (label, path, why))
            return out
        version = '.'.join(map(str, info['version']))
        out.p('== %s: %s (CPython %s, %s)' % (label, path, version, info['test_file']))
        guard = CacheGuard(info['sys_path'], os.path.join(work, 'pycache-backup'))
        guard.save()
        base = run_driver(path, 'baseline', work, args, prepyc, env)
        restored = {'baseline': guard.restore()}
        if base.fatal and not base.results:
            out.p('HARNESS ERROR: baseline did not run:')
            out.p('  ' + base.fatal.rstrip().replace('\n', '\n  '))
            out.failed += 1
            return out
        pp = None
        if not args.baseline_only:
            guard.save()
            pp = run_driver(path, 'prepyc', work, args, prepyc, env)
            restored['prepyc'] = guard.restore()
        if any(restored.values()):
            out.p('note: files restored in the interpreter\'s own __pycache__ directories '
                  '(written by runs without path arguments): %s' % ', '.join(
                      '%s %d' % (k, len(v)) for k, v in sorted(restored.items())))
            if args.verbose:
                for k, v in sorted(restored.items()):
                    for f in v:
                        out.p('  %s: %s' % (k, f))
        ids = list(base.ids)
        if pp:
            ids += [i for i in pp.ids if i not in ids]
        bpass = [i for i in ids if base.results.get(i, {}).get('status') == 'pass']
        summary = 'tests: %d run; baseline %d passed (%.1fs)' % (len(ids), len(bpass), base.elapsed)
        if pp:
            ppass = [i for i in ids if pp.results.get(i, {}).get('status') == 'pass']
            summary += '; prepyc %d passed (%.1fs)' % (len(ppass), pp.elapsed)
        out.p(summary)
        if base.fatal:
            out.p('HARNESS ERROR in the baseline run: ' + base.fatal.rstrip())
            out.failed += 1
        if pp and pp.fatal:
            out.p('ERROR in the prepyc run: ' + pp.fatal.rstrip())

        excluded, not_baseline, no_calls, failures, passes = [], [], [], [], []
        for i in ids:
            method = i.rsplit('.', 1)[-1]
            b = base.results.get(i)
            if method in EXCLUDED:
                excluded.append(i)
                continue
            if b is None or b['status'] != 'pass':
                not_baseline.append((i, b))
                continue
            if pp is None:
                passes.append(i)
                continue
            r = pp.results.get(i)
            if r is None or r['status'] != 'pass':
                failures.append((i, r))
            elif not r['calls']:
                no_calls.append(i)
            else:
                passes.append(i)
        if args.baseline_only:
            # checking the harness: a baseline failure is a failure
            out.passed = len(passes)
            real_fail = [(i, b) for i, b in not_baseline if b is None or b['status'] == 'fail']
            out.failed += len(real_fail)
            out.skipped = len(excluded) + len(not_baseline) - len(real_fail)
        else:
            out.passed = len(passes)
            out.failed += len(failures)
            out.skipped = len(excluded) + len(not_baseline) + len(no_calls)

        if excluded:
            out.p('excluded (cannot be run through a command-line replacement): %d' % len(excluded))
            by_method = {}
            for i in excluded:
                by_method.setdefault(i.rsplit('.', 1)[-1], []).append(i)
            for method in sorted(by_method):
                classes = [i.rsplit('.', 1)[0] for i in by_method[method]]
                out.p('  %s (%s): %s' % (method, ', '.join(classes), EXCLUDED[method]))
                if args.verbose:
                    for i in by_method[method]:
                        out.p('      %s: baseline %s%s' % (
                            i, base.results.get(i, {}).get('status', 'missing'),
                            ', prepyc %s' % pp.results.get(i, {}).get('status', 'missing')
                            if pp else ''))
        if not_baseline:
            out.p('not passing in the baseline (%s): %d' % (
                'failures counted as failed, skips as skipped' if args.baseline_only
                else 'counted as skipped', len(not_baseline)))
            for i, b in not_baseline:
                if b is None:
                    out.p('  %s: no result' % i)
                elif b['status'] == 'skip':
                    out.p('  %s: skipped: %s' % (i, b['detail']))
                else:
                    out.p('  %s: FAILED in the baseline' % i)
                    text = b['detail'].splitlines() if args.verbose else first_lines(b['detail'], 8)
                    for line in text:
                        out.p('      ' + line)
        if no_calls:
            out.p('passed without starting any compileall command line (counted as skipped; '
                  'add them to EXCLUDED with a reason): %d' % len(no_calls))
            for i in no_calls:
                out.p('  ' + i)
        for i, r in failures:
            out.p('FAIL %s' % i)
            if r is None:
                out.p('      no result from the prepyc run')
                continue
            text = r['detail'].splitlines() if args.verbose else first_lines(r['detail'], 12)
            for line in text:
                out.p('      ' + line)
            calls = r.get('calls') or []
            if calls:
                out.p('    prepyc ran (%d call%s):' % (len(calls), 's' if len(calls) != 1 else ''))
                for c in (calls if args.verbose else calls[-3:]):
                    out.p('      ' + fmt_call(c))
                    if 'rc' in c:
                        err = (c.get('stderr') or '').rstrip().splitlines()
                        out.p('        -> exit status %s; stderr: %s' % (
                            c['rc'], 'empty' if not err else '%d line%s' % (
                                len(err), '' if len(err) == 1 else 's')))
                        for line in (err if args.verbose else err[:8]):
                            out.p('           | ' + line)
                        if len(err) > 8 and not args.verbose:
                            out.p('           | ...')
                        if args.verbose and c.get('stdout'):
                            out.p('        stdout:')
                            for line in c['stdout'].rstrip().splitlines():
                                out.p('           | ' + line)
        if args.verbose and pp:
            for i in passes:
                out.p('ok   %s (%d compileall call%s)' % (
                    i, len(pp.results[i]['calls']), '' if len(pp.results[i]['calls']) == 1 else 's'))
        out.p('%s: %d passed, %d failed, %d skipped' % (label, out.passed, out.failed, out.skipped))
        return out
    finally:
        if args.keep:
            out.p('work directory kept: ' + work)
        else:
            shutil.rmtree(work, ignore_errors=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--python', action='append', metavar='PATH',
                    help='interpreter to test (repeatable)')
    ap.add_argument('--prepyc', default=os.environ.get('PREPYC') or os.path.join(REPO, 'prepyc'))
    ap.add_argument('-k', action='append', metavar='PATTERN')
    ap.add_argument('--baseline-only', action='store_true')
    ap.add_argument('--timeout', type=int, default=300)
    ap.add_argument('-j', type=int, default=1, dest='jobs')
    ap.add_argument('-v', '--verbose', action='store_true')
    ap.add_argument('--keep', action='store_true')
    args = ap.parse_args(argv)

    prepyc = os.path.abspath(args.prepyc)
    if not args.baseline_only and not (os.path.isfile(prepyc) and os.access(prepyc, os.X_OK)):
        print('prepyc not found or not executable: %s (build it, set PREPYC, or use '
              '--baseline-only)' % prepyc)
        print('compileall-tests: 0 passed, 1 failed')
        return 2
    pythons = args.python or discover()
    seen, unique = set(), []
    for p in pythons:
        p = p if os.sep in p else (shutil.which(p) or p)
        key = os.path.realpath(p)
        if key not in seen:
            seen.add(key)
            unique.append(p)
    print('compileall-tests: %s; interpreters: %s' % (
        'baseline only' if args.baseline_only else 'prepyc = ' + prepyc, ' '.join(unique)),
        flush=True)

    t0 = time.monotonic()
    outcomes = []
    if args.jobs > 1:
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as ex:
            futs = [ex.submit(check, p, args, prepyc) for p in unique]
            for f in futs:
                o = f.result()
                print('\n'.join(o.lines), flush=True)
                outcomes.append(o)
    else:
        for p in unique:
            o = check(p, args, prepyc)
            print('\n'.join(o.lines), flush=True)
            outcomes.append(o)

    passed = sum(o.passed for o in outcomes)
    failed = sum(o.failed for o in outcomes)
    skipped = sum(o.skipped for o in outcomes)
    print('(%.1fs)' % (time.monotonic() - t0))
    line = 'compileall-tests: %d passed, %d failed' % (passed, failed)
    if skipped:
        line += ', %d skipped' % skipped
    print(line)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
