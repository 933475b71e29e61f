# Runs INSIDE a target interpreter (CPython 3.6+; keep it 3.6-compatible).
#
#   python3.X driver.py MODE RESULTS [--prepyc PATH] [--timeout S] [-k PATTERN]...
#
# Imports that interpreter's test.test_compileall, selects its command-line
# test classes (CommandLineTests in 3.6, Comm(m)andLineTests{WithSourceEpoch,
# NoSourceEpoch} later) and runs them with unittest, writing one JSON object
# per line to RESULTS:
#   {"event": "start", "interpreter": ..., "tests": [ids]}
#   {"event": "begin", "id": ...}                      (before each test)
#   {"event": "test", "id": ..., "status": "pass"|"fail"|"skip",
#    "detail": text, "calls": [rewritten invocations]}  (after each test)
#   {"event": "done"}
# MODE "baseline" runs the tests unmodified.  MODE "prepyc" replaces every
# `python ... -m compileall ARGS` the tests start through
# test.support.script_helper (assert_python_ok/_failure, run_python_until_end,
# spawn_python: they all end in script_helper's subprocess.Popen) by
# `PREPYC compileall --python sys.executable ARGS`, keeping the environment,
# stdin/stdout/stderr and cwd that script_helper built, and mapping the
# interpreter options placed before `-m compileall` (see map_interpreter_options).
# Every other process (running a script, a pyc, `-c`) is left alone.

import fnmatch
import json
import os
import re
import signal
import subprocess
import sys
import traceback
import types
import unittest

CLASS_RE = re.compile(r'^Comm+andLineTests')


class HarnessError(Exception):
    """An invocation the harness cannot express as a prepyc command line."""


class TestTimeout(Exception):
    pass


# ---------------------------------------------------------------------------
# Interpreter command line parsing and mapping

def split_python_argv(argv):
    """Split the arguments after the interpreter path.

    Returns (options, module, rest): options is a list of (flag, value) for the
    interpreter options before `-m`, module the -m module name (None when the
    command runs a script, -c, stdin, ...) and rest the arguments after it.
    """
    opts = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == '--' or a == '-' or not a.startswith('-'):
            return opts, None, argv[i:]
        if a.startswith('--'):
            if a == '--check-hash-based-pycs':
                opts.append((a, argv[i + 1] if i + 1 < len(argv) else None))
                i += 2
            else:
                opts.append((a, None))
                i += 1
            continue
        j = 1
        while j < len(a):
            ch = a[j]
            if ch in 'mcXW':
                if j + 1 < len(a):
                    val = a[j + 1:]
                    i += 1
                else:
                    val = argv[i + 1] if i + 1 < len(argv) else None
                    i += 2
                if ch == 'm':
                    return opts, val, argv[i:]
                if ch == 'c':
                    return opts, None, argv[i:]
                opts.append(('-' + ch, val))
                break
            opts.append(('-' + ch, None))
            j += 1
        else:
            i += 1
    return opts, None, []


# -X options that have an environment-variable equivalent.
_X_ENV = {
    'faulthandler': ('PYTHONFAULTHANDLER', '1'),
    'pycache_prefix': ('PYTHONPYCACHEPREFIX', None),   # value required
    'utf8': ('PYTHONUTF8', '1'),
    'dev': ('PYTHONDEVMODE', '1'),
    'tracemalloc': ('PYTHONTRACEMALLOC', '1'),
    'importtime': ('PYTHONPROFILEIMPORTTIME', '1'),
    'warn_default_encoding': ('PYTHONWARNDEFAULTENCODING', '1'),
    'int_max_str_digits': ('PYTHONINTMAXSTRDIGITS', None),
}

# Single-letter flags that have an environment-variable equivalent.
_FLAG_ENV = {
    '-B': 'PYTHONDONTWRITEBYTECODE',
    '-s': 'PYTHONNOUSERSITE',
    '-u': 'PYTHONUNBUFFERED',
    '-P': 'PYTHONSAFEPATH',
    '-i': 'PYTHONINSPECT',
}


def map_interpreter_options(opts, env):
    """Return (env, notes): env for prepyc, equivalent to `python OPTS -m compileall`.

    prepyc compileall has no interpreter options of its own, so each option is
    translated to the environment variable the interpreter reads for it:
      -E        the interpreter ignores PYTHON* variables: they are removed
      -I        as -E, plus -s (PYTHONNOUSERSITE=1) and, 3.11+, -P (PYTHONSAFEPATH=1);
                (before 3.11 "do not put the current directory on sys.path" has
                no variable; it matters only for a run without path arguments)
      -O/-OO    PYTHONOPTIMIZE=1/2
      -X name[=v]  PYTHONFAULTHANDLER, PYTHONPYCACHEPREFIX, PYTHONUTF8, ... (table)
      -W arg    appended to PYTHONWARNINGS
      -B -s -u -P  their variables; -v/-d counted into PYTHONVERBOSE/PYTHONDEBUG
      -S        dropped: no variable exists; `prepyc compileall` stands for
                `python -m compileall`, whose sys.path includes site-packages.
                Only a run without path arguments looks at sys.path (it then
                also lists site directories, at depth 0).
      -R        dropped (a no-op since 3.3)
    Anything else raises HarnessError (the test then fails visibly).
    Flags are applied after the -E/-I clean-up, as the interpreter applies
    command-line options over (or regardless of) the environment.
    """
    env = dict(os.environ if env is None else env)
    notes = []
    flags = [f for f, _ in opts]
    if '-E' in flags or '-I' in flags:
        for k in [k for k in env if k.startswith('PYTHON')]:
            del env[k]
        notes.append('PYTHON* variables removed (%s)' % ('-I' if '-I' in flags else '-E'))
    opt_level = 0
    verbose = 0
    debug = 0
    warnings = []
    for flag, val in opts:
        if flag in ('-E',):
            continue
        if flag == '-I':
            env['PYTHONNOUSERSITE'] = '1'
            if sys.version_info >= (3, 11):
                env['PYTHONSAFEPATH'] = '1'
        elif flag == '-O':
            opt_level += 1
        elif flag == '-v':
            verbose += 1
        elif flag == '-d':
            debug += 1
        elif flag in _FLAG_ENV:
            env[_FLAG_ENV[flag]] = '1'
        elif flag == '-W':
            warnings.append(val)
        elif flag == '-X':
            name, eq, value = (val or '').partition('=')
            if name not in _X_ENV:
                raise HarnessError('cannot map interpreter option -X %s to prepyc' % val)
            var, default = _X_ENV[name]
            if not eq and default is None:
                raise HarnessError('cannot map interpreter option -X %s to prepyc' % val)
            env[var] = value if eq else default
        elif flag == '-S':
            notes.append('-S dropped (no environment equivalent)')
        elif flag == '-R':
            pass
        else:
            raise HarnessError('cannot map interpreter option %s%s to prepyc'
                               % (flag, '' if val is None else ' ' + val))
    if opt_level:
        env['PYTHONOPTIMIZE'] = str(opt_level)
    if verbose:
        env['PYTHONVERBOSE'] = str(verbose)
    if debug:
        env['PYTHONDEBUG'] = str(debug)
    if warnings:
        old = env.get('PYTHONWARNINGS')
        env['PYTHONWARNINGS'] = ','.join(([old] if old else []) + warnings)
    return env, notes


# ---------------------------------------------------------------------------
# The replacement, installed into test.support.script_helper

class RecordingPopen(subprocess.Popen):
    """A Popen for a rewritten call: remembers what communicate() returned,
    so a failure report can show prepyc's exit status and stderr in full
    (unittest shortens long bytes in assertEqual messages)."""

    record = None

    def communicate(self, *args, **kw):
        out, err = subprocess.Popen.communicate(self, *args, **kw)
        if self.record is not None:
            self.record['rc'] = self.returncode
            for name, data in (('stdout', out), ('stderr', err)):
                if isinstance(data, bytes):
                    data = data.decode('utf-8', 'replace')
                if data is not None:
                    self.record[name] = data if len(data) <= 4000 else (
                        '...(%d characters cut)...' % (len(data) - 4000) + data[-4000:])
        return out, err


class Replacer(object):
    def __init__(self, prepyc):
        self.prepyc = prepyc
        self.calls = []        # rewritten invocations of the current test
        self.procs = []        # every process started for the current test
        self._real_popen = subprocess.Popen

    def reset(self):
        self.calls = []
        self.procs = []

    def kill_leftovers(self):
        for p in self.procs:
            if p.poll() is None:
                try:
                    p.kill()
                    p.wait()
                except OSError:
                    pass
        self.procs = []

    def popen(self, args, *a, **kw):
        cmd = args
        record = None
        if (isinstance(args, (list, tuple)) and args and not kw.get('shell')
                and os.fspath(args[0]) == sys.executable):
            argv = [os.fspath(x) for x in args]
            opts, module, rest = split_python_argv(argv[1:])
            if module == 'compileall':
                env, notes = map_interpreter_options(opts, kw.get('env'))
                cmd = [self.prepyc, 'compileall', '--python', sys.executable] + rest
                old_env = kw.get('env')
                old_env = dict(os.environ if old_env is None else old_env)
                changed = sorted(k for k in set(env) | set(old_env)
                                 if env.get(k) != old_env.get(k))
                kw['env'] = env
                record = {
                    'python_argv': argv,
                    'prepyc_argv': cmd,
                    'env_changes': dict((k, env.get(k)) for k in changed),
                    'env_test': dict((k, v) for k, v in sorted(env.items())
                                     if k.startswith('PYTHON') or k == 'SOURCE_DATE_EPOCH'),
                    'notes': notes,
                }
                self.calls.append(record)
        if record is not None:
            p = RecordingPopen(cmd, *a, **kw)
            p.record = record
        else:
            p = self._real_popen(cmd, *a, **kw)
        self.procs.append(p)
        return p

    def install(self, script_helper):
        proxy = types.ModuleType('subprocess')
        proxy.__dict__.update(subprocess.__dict__)
        proxy.Popen = self.popen
        script_helper.subprocess = proxy


# ---------------------------------------------------------------------------
# Running and reporting

def short_id(test):
    parts = test.id().split('.')
    return '.'.join(parts[-2:])


class Recorder(unittest.TestResult):
    def __init__(self, out, replacer, timeout):
        unittest.TestResult.__init__(self)
        self.out = out
        self.replacer = replacer
        self.timeout = timeout
        self.current = None

    def emit(self, obj):
        self.out.write(json.dumps(obj) + '\n')
        self.out.flush()

    def startTest(self, test):
        unittest.TestResult.startTest(self, test)
        self.current = {'id': short_id(test), 'status': 'pass', 'detail': ''}
        if self.replacer:
            self.replacer.reset()
        self.emit({'event': 'begin', 'id': self.current['id']})
        if self.timeout:
            signal.alarm(self.timeout)

    def stopTest(self, test):
        if self.timeout:
            signal.alarm(0)
        unittest.TestResult.stopTest(self, test)
        rec = self.current
        self.current = None
        if rec is None:
            return
        if self.replacer:
            rec['calls'] = self.replacer.calls
            self.replacer.kill_leftovers()
        else:
            rec['calls'] = []
        rec['event'] = 'test'
        self.emit(rec)

    def _bad(self, test, err, kind):
        text = self._exc_info_to_string(err, test)
        if self.current is None or short_id(test) != self.current['id']:
            # setUpClass/tearDownClass/module fixture errors
            self.emit({'event': 'test', 'id': str(test), 'status': 'fail',
                       'detail': kind + ': ' + text, 'calls': []})
            return
        self.current['status'] = 'fail'
        self.current['detail'] += ('\n' if self.current['detail'] else '') + kind + ': ' + text

    def addError(self, test, err):
        unittest.TestResult.addError(self, test, err)
        self._bad(test, err, 'ERROR')

    def addFailure(self, test, err):
        unittest.TestResult.addFailure(self, test, err)
        self._bad(test, err, 'FAIL')

    def addSubTest(self, test, subtest, err):
        unittest.TestResult.addSubTest(self, test, subtest, err)
        if err is not None:
            kind = 'FAIL' if issubclass(err[0], test.failureException) else 'ERROR'
            self._bad(test, err, kind + ' ' + subtest._subDescription())

    def addSkip(self, test, reason):
        unittest.TestResult.addSkip(self, test, reason)
        if self.current is not None and short_id(test) == self.current['id']:
            self.current['status'] = 'skip'
            self.current['detail'] = reason
        else:
            self.emit({'event': 'test', 'id': short_id(test), 'status': 'skip',
                       'detail': reason, 'calls': []})

    def addExpectedFailure(self, test, err):
        unittest.TestResult.addExpectedFailure(self, test, err)

    def addUnexpectedSuccess(self, test):
        unittest.TestResult.addUnexpectedSuccess(self, test)
        self.current['status'] = 'fail'
        self.current['detail'] = 'unexpected success'


def iter_tests(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            for u in iter_tests(t):
                yield u
        else:
            yield t


def matches(test_id, patterns):
    if not patterns:
        return True
    for pat in patterns:
        if not any(c in pat for c in '*?['):
            pat = '*' + pat + '*'
        if fnmatch.fnmatchcase(test_id, pat):
            return True
    return False


def on_alarm(signum, frame):
    raise TestTimeout('test timed out (driver --timeout)')


def main(argv):
    mode = argv[0]
    results = argv[1]
    prepyc = None
    timeout = 0
    patterns = []
    i = 2
    while i < len(argv):
        if argv[i] == '--prepyc':
            prepyc = argv[i + 1]
        elif argv[i] == '--timeout':
            timeout = int(argv[i + 1])
        elif argv[i] == '-k':
            patterns.append(argv[i + 1])
        else:
            raise SystemExit('driver: bad argument %r' % argv[i])
        i += 2
    if mode not in ('baseline', 'prepyc') or (mode == 'prepyc' and not prepyc):
        raise SystemExit('driver: MODE must be baseline or prepyc (with --prepyc)')

    out = open(results, 'w')
    try:
        import test.test_compileall as tc
        from test.support import script_helper
    except Exception:
        out.write(json.dumps({'event': 'fatal',
                              'detail': traceback.format_exc()}) + '\n')
        out.close()
        return 3

    replacer = None
    if mode == 'prepyc':
        replacer = Replacer(prepyc)
        replacer.install(script_helper)

    loader = unittest.TestLoader()
    suite = unittest.TestSuite()
    ids = []
    for name in sorted(vars(tc)):
        obj = getattr(tc, name)
        if (isinstance(obj, type) and issubclass(obj, unittest.TestCase)
                and CLASS_RE.match(name)):
            for t in iter_tests(loader.loadTestsFromTestCase(obj)):
                if matches(short_id(t), patterns):
                    suite.addTest(t)
                    ids.append(short_id(t))
    rec = Recorder(out, replacer, timeout)
    rec.emit({'event': 'start', 'interpreter': sys.executable,
              'version': list(sys.version_info[:3]), 'tests': ids})
    if timeout:
        signal.signal(signal.SIGALRM, on_alarm)
    suite.run(rec)
    rec.emit({'event': 'done'})
    out.close()
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
