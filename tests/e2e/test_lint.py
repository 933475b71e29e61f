"""Tests of tools/check-headers.py, the check that header comments name only
functions that exist, with their real signatures (``make lint``).

Each test writes a small fake source tree (a src/ with a folder or two of .c
and .h files) and an allowlist into a temporary directory, runs the checker
on it with this interpreter and looks at its exit status and its
``FILE:LINE: message`` lines.  The real tree is not checked here: tests/run.py
runs the checker on it as a test of its own.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHECKER = os.path.join(REPO, 'tools', 'check-headers.py')

# A small correct tree: every comment below names real functions with
# their real parameter counts.
GOOD = {
    'base/util.h': '''
        /*
         * util.h - errors and memory.
         *
         * error() prints and returns -1, so callers write `return error(...)`;
         * xmalloc() never returns NULL.  BUG() is for broken invariants.
         * Python's repr(), marshal.dumps(code) and os.replace() are what we
         * mimic; open(), rename() and fsync() are the system calls used.
         */
        #ifndef UTIL_H
        #define UTIL_H
        #include <stddef.h>

        #define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
        #define BUG(...) bug_fl(__FILE__, __LINE__, __VA_ARGS__)

        int error(const char *fmt, ...) PRINTF_LIKE(1, 2);
        void bug_fl(const char *file, int line, const char *fmt, ...);
        void *xmalloc(size_t n);

        #endif
    ''',
    'base/util.c': '''
        /*
         * util.c - the implementation of util.h: error(fmt, ...) and xmalloc(n).
         */
        #include "util.h"

        int error(const char *fmt, ...) { (void)fmt; return -1; }
        void bug_fl(const char *file, int line, const char *fmt, ...) { (void)file; (void)line; (void)fmt; }
        void *xmalloc(size_t n) { return 0; }

        /* a later comment of a .c file is not checked: no_such_thing(1) */
        static int helper(int a) { return a; }
    ''',
    'base/options.h': '''
        /*
         * options.h - a table-driven parser.
         *
         *   struct option opts[] = {
         *       OPT_FLAG('f', "force", &force, "recompile"),
         *       OPT_END(),
         *   };
         *   n = parse_options(argc - 1, argv + 1,
         *                     opts);
         *
         * The cmd_* functions call it; parse_options() returns -1 after
         * printing an error.
         */
        struct option { int type; const char *name; void *value; const char *help; };

        #define OPT_END() { 0, 0, 0, 0 }
        #define OPT_FLAG(s, l, v, h) { 1, (l), (v), (h) }

        int
        parse_options(int argc,
                      const char **argv,
                      const struct option *opts);

        int cmd_compile(int argc, const char **argv);
    ''',
    'base/parallel.h': '''
        /*
         * parallel.h - a fan-out.
         *
         *   static void check_one(void *ctx, size_t i) { ... }
         *
         *   parallel_for(n, 4, check_one, ctx);
         *
         * parallel_for() calls fn(ctx, i) for every i; start() and finish()
         * are parallel_start() and parallel_finish(), declared beside it.
         */
        #include <stddef.h>
        void parallel_for(size_t n, size_t nthreads, void (*fn)(void *ctx, size_t i),
                          void *ctx);
        void parallel_start(void);
        void parallel_finish(void);

        struct pool_ops {
            /* frob() asks for work. */
            int (*frob)(void *ctx);
        };
    ''',
}


def write_tree(root, files):
    for rel, text in files.items():
        path = os.path.join(root, 'src', rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'w') as f:
            f.write(textwrap.dedent(text).lstrip('\n'))


class CheckHeadersTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='prepyc-lint-')
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.allow = os.path.join(self.tmp, 'allow')
        with open(self.allow, 'w'):
            pass

    def run_checker(self, files, allow=None):
        """(exit status, [finding lines]) of the checker on src/ built from `files`."""
        write_tree(self.tmp, files)
        if allow is not None:
            with open(self.allow, 'w') as f:
                f.write(allow)
        proc = subprocess.run([sys.executable, CHECKER, '--allow', self.allow, 'src'],
                              cwd=self.tmp, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, timeout=60)
        self.assertEqual(proc.stderr, '')
        return proc.returncode, proc.stdout.splitlines()

    def with_change(self, rel, old, new):
        files = dict(GOOD)
        text = textwrap.dedent(files[rel])
        self.assertEqual(text.count(old), 1, old)
        files[rel] = text.replace(old, new)
        return files

    def test_correct_tree(self):
        rc, out = self.run_checker(GOOD)
        self.assertEqual(out, [])
        self.assertEqual(rc, 0)

    def test_missing_function(self):
        files = self.with_change('base/util.h', 'xmalloc() never', 'xmalloc_or_die() never')
        rc, out = self.run_checker(files)
        self.assertEqual(rc, 1)
        self.assertEqual(len(out), 1, out)
        self.assertTrue(out[0].startswith('src/base/util.h:5: xmalloc_or_die() '), out)

    def test_missing_function_in_c_top_comment(self):
        files = self.with_change('base/util.c', 'xmalloc(n)', 'xcalloc(n, 1)')
        rc, out = self.run_checker(files)
        self.assertEqual(rc, 1)
        self.assertEqual(len(out), 1, out)
        self.assertTrue(out[0].startswith('src/base/util.c:2: xcalloc() '), out)

    def test_example_wrong_argument_count(self):
        files = self.with_change('base/options.h', '*                     opts);',
                                 '*                     opts, usage, &rest);')
        rc, out = self.run_checker(files)
        self.assertEqual(rc, 1)
        self.assertEqual(len(out), 1, out)
        self.assertRegex(out[0], r'^src/base/options\.h:8: parse_options\(\) called with 5 '
                         r'arguments, declared with 3 \(src/base/options\.h:\d+\)$')

    def test_macro_wrong_argument_count(self):
        files = self.with_change('base/options.h', '"force", &force,', '"force",')
        rc, out = self.run_checker(files)
        self.assertEqual(rc, 1)
        self.assertEqual(len(out), 1, out)
        self.assertIn('OPT_FLAG() called with 3 arguments, declared with 4', out[0])

    def test_variadic(self):
        files = self.with_change('base/util.c', 'error(fmt, ...)', 'error(fmt, a, b)')
        self.assertEqual(self.run_checker(files), (0, []))
        files = self.with_change('base/util.c', 'error(fmt, ...)', 'error()')
        self.assertEqual(self.run_checker(files), (0, []))  # a mention, not a call

    def test_function_pointer_parameter(self):
        files = self.with_change('base/parallel.h', 'fn(ctx, i) for', 'fn(ctx) for')
        rc, out = self.run_checker(files)
        self.assertEqual(rc, 1)
        self.assertIn('fn() called with 1 argument, declared with 2', out[0])

    def test_struct_member_is_not_a_function(self):
        # frob() is a member of a struct in parallel.h: known there, not elsewhere
        files = self.with_change('base/util.h', 'are the system calls used.',
                                 'are the system calls used; frob() is not one.')
        rc, out = self.run_checker(files)
        self.assertEqual(rc, 1)
        self.assertEqual(len(out), 1, out)
        self.assertTrue(out[0].startswith('src/base/util.h:7: frob() '), out)

    def test_callback_signature(self):
        files = self.with_change('base/parallel.h', 'check_one(void *ctx, size_t i)',
                                 'check_one(void *ctx, int i)')
        rc, out = self.run_checker(files)
        self.assertEqual(rc, 1)
        self.assertEqual(len(out), 1, out)
        self.assertIn('check_one is passed to parallel_for() as fn', out[0])
        self.assertIn('void(void*,int) is not void(void*,size_t)', out[0])

    def test_prototype_in_comment(self):
        files = self.with_change('base/parallel.h', '*   parallel_for(n, 4, check_one, ctx);',
                                 '*   void parallel_for(size_t n, void *ctx);')
        rc, out = self.run_checker(files)
        self.assertEqual(rc, 1)
        self.assertEqual(len(out), 1, out)
        self.assertIn('parallel_for written as void(size_t,void*), declared as '
                      'void(size_t,size_t,void(*)(void*,size_t),void*)', out[0])

    def test_glob(self):
        files = self.with_change('base/options.h', 'The cmd_* functions', 'The command_* functions')
        rc, out = self.run_checker(files)
        self.assertEqual(rc, 1)
        self.assertEqual(len(out), 1, out)
        self.assertIn('command_* names no function', out[0])

    def test_allowlist(self):
        files = self.with_change('base/util.h', 'xmalloc() never', 'SipHash(k, m) never')
        self.assertEqual(self.run_checker(files, allow='# comment\nSipHash  the algorithm\n'),
                         (0, []))
        rc, out = self.run_checker(files, allow='SipHash\n')
        self.assertEqual(rc, 1)
        self.assertEqual(out, ['allow:1: SipHash: an entry needs a reason'])
        # an entry that no comment needs is reported
        rc, out = self.run_checker(GOOD, allow='SipHash  the algorithm\n')
        self.assertEqual(rc, 1)
        self.assertEqual(len(out), 1, out)
        self.assertTrue(out[0].startswith('allow:1: SipHash is allowed but'), out)

    def test_usage_errors(self):
        proc = subprocess.run([sys.executable, CHECKER, os.path.join(self.tmp, 'nonexistent')],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, timeout=60)
        self.assertEqual(proc.returncode, 2)
        self.assertIn('nonexistent', proc.stderr)


if __name__ == '__main__':
    unittest.main()
