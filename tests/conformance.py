#!/usr/bin/env python3
"""Full-stdlib conformance (``make conformance``).

For every interpreter found (see tests/e2e/support.py; PREPYC_TEST_PYTHONS or
--pythons restricts them): copy its whole stdlib (sysconfig ``stdlib`` path,
test/ included, site-packages/dist-packages excluded; for Pyodide, the sources
of its python_stdlib.zip, which tests/pyodide/install.sh extracts and the
launcher names as the stdlib) into a temporary tree,
compile it with ``PYTHONHASHSEED=0 python -m compileall -j0 -q TREE``, move
those pycs aside and rewrite them with ``prepyc canon``, compile the same tree
(same absolute path, so co_filename matches) with ``prepyc --python PYTHON
TREE``, and compare: the set of pycs, each pyc (identical bytes: prepyc's
pycs are exactly the canonical form of compileall's), the failed files and the
exit statuses.

Prints a report per interpreter and, as its last line,
``conformance: N passed, N failed[, N skipped]`` (one per interpreter); exits
non-zero on any mismatch.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'e2e'))
import support  # noqa: E402


def copy_stdlib(stdlib, dest):
    """Copy every .py file (and every symlink) of stdlib into dest."""
    count = 0
    for dirpath, dirnames, filenames in os.walk(stdlib):
        dirnames[:] = sorted(d for d in dirnames
                             if d not in ('site-packages', 'dist-packages', '__pycache__'))
        rel = os.path.relpath(dirpath, stdlib)
        out = os.path.normpath(os.path.join(dest, rel))
        os.makedirs(out, exist_ok=True)
        for name in dirnames + filenames:
            src = os.path.join(dirpath, name)
            if os.path.islink(src):
                os.symlink(os.readlink(src), os.path.join(out, name))
                if name in dirnames:
                    dirnames.remove(name)
                if name.endswith('.py'):
                    count += 1
            elif name in filenames and name.endswith('.py') and os.path.isfile(src):
                shutil.copy2(src, os.path.join(out, name))
                count += 1
    return count


def check(interp, keep=False, limit=60):
    print('== %s: %s (%s %s, %s)' % (interp.label, interp.path, interp.impl_pretty,
                                    interp.version_str, interp.cache_tag), flush=True)
    work = tempfile.mkdtemp(prefix='prepyc-conformance-%s-' % interp.cache_tag)
    try:
        tree = os.path.join(work, 'Lib')
        t0 = time.monotonic()
        nfiles = copy_stdlib(interp.stdlib, tree)
        print('files: %d .py files copied from %s' % (nfiles, interp.stdlib), flush=True)
        rep = support.conformance(interp, work, tree, scan_root=tree,
                                  ref_dir=os.path.join(work, 'reference'), canon_ref=True)
        if rep.canon is not None:
            print('prepyc canon failed on compileall\'s pycs:\n%s' % rep.canon)
        print('time: compileall -j0 %.1fs, prepyc %.1fs (whole check %.1fs)'
              % (rep.ca.elapsed, rep.pp.elapsed, time.monotonic() - t0))
        print('pycs: compileall %d, prepyc %d' % (len(rep.ref_pycs), len(rep.pp_pycs)))
        print('pycs compared: %d (identical bytes %d, equal after loads %d)'
              % (len(rep.results), len(rep.identical), len(rep.equal)))
        print('mismatches: %d' % len(rep.mismatches))
        for rel, detail in rep.mismatches[:limit]:
            print('  MISMATCH %s: %s' % (rel, detail))
        if rep.only_ref:
            print('pycs only from compileall: %d' % len(rep.only_ref))
            for rel in rep.only_ref[:limit]:
                print('  ' + rel)
        if rep.only_pp:
            print('pycs only from prepyc: %d' % len(rep.only_pp))
            for rel in rep.only_pp[:limit]:
                print('  ' + rel)
        print('failures: compileall %d, prepyc %d' % (len(rep.ca_failed), len(rep.pp_failed)))
        for path in sorted(rep.ca_failed - rep.pp_failed)[:limit]:
            print('  failed only in compileall: %s' % path)
        for path in sorted(rep.pp_failed - rep.ca_failed)[:limit]:
            print('  failed only in prepyc: %s' % path)
        print('exit status: compileall %r, prepyc %r' % (rep.ca.rc, rep.pp.rc))
        if rep.junk:
            print('junk left in __pycache__: %s' % rep.junk[:limit])
        if rep.pp.timed_out or rep.ca.timed_out:
            print('TIMED OUT: compileall %s, prepyc %s' % (rep.ca.timed_out, rep.pp.timed_out))
        summary = support.parse_summary(rep.pp.out)
        if summary:
            print('prepyc says: %s' % summary['line'])
        if not rep.ok and rep.pp.err and len(rep.pp_failed) == 0:
            print('prepyc stderr (tail):\n' + rep.pp.err[-3000:])
        print('result: %s' % ('OK' if rep.ok else 'MISMATCH'), flush=True)
        return rep.ok
    finally:
        if keep:
            print('kept: %s' % work)
        else:
            shutil.rmtree(work, ignore_errors=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--pythons', help='comma-separated interpreter paths '
                    '(default: PREPYC_TEST_PYTHONS, else every one found)')
    ap.add_argument('--keep', action='store_true', help='keep the temporary trees')
    args = ap.parse_args(argv)
    if args.pythons:
        os.environ['PREPYC_TEST_PYTHONS'] = args.pythons
    if not support.prepyc_exists():
        print('prepyc binary not found at %s (build it first, or set PREPYC)' % support.PREPYC)
        print('conformance: 0 passed, 1 failed')
        return 1
    passed = failed = skipped = 0
    start = time.monotonic()
    results = []
    for cand in support.candidates():
        if cand.interp is None:
            print('== %s: skipped (%s)' % (cand.label, cand.reason), flush=True)
            skipped += 1
            results.append((cand.label, 'skipped'))
            continue
        try:
            ok = check(cand.interp, keep=args.keep)
        except Exception as e:  # a crash of the harness counts as a failure
            print('ERROR while checking %s: %r' % (cand.label, e), flush=True)
            ok = False
        results.append((cand.label, 'OK' if ok else 'MISMATCH'))
        if ok:
            passed += 1
        else:
            failed += 1
    print('== summary (%.0fs)' % (time.monotonic() - start))
    for label, status in results:
        print('  %-20s %s' % (label, status))
    line = 'conformance: %d passed, %d failed' % (passed, failed)
    if skipped:
        line += ', %d skipped' % skipped
    print(line, flush=True)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
