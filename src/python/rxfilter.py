# prepyc -x filter: which paths does a Python regular expression match?
#
# Embedded into the prepyc binary and run once per run and target as
#     python -S -s -B -c <this file> REGEX
# so that -x has exactly the target's `re` semantics.  Reads NUL-terminated
# paths (bytes) on stdin and writes one byte per path on stdout: 1 when
# re.search() finds the pattern in the path (os.fsdecode'd, as compileall
# sees it), else 0.  An invalid pattern: the error on stderr, exit status 3.
import os
import re
import sys

try:
    rx = re.compile(sys.argv[1])
except re.error as exc:
    sys.stderr.write("invalid regular expression %r: %s\n" % (sys.argv[1], exc))
    sys.exit(3)
paths = sys.stdin.buffer.read().split(b"\0")[:-1]
sys.stdout.buffer.write(bytes(1 if rx.search(os.fsdecode(p)) else 0 for p in paths))
