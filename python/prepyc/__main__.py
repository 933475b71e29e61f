"""``python -m prepyc ARGS``: run the prepyc program with ARGS, the default
target being this interpreter.

The program is exec'd (its exit status is the command's), with
PREPYC_PYTHON set to sys.executable unless the caller set it; prepyc takes
$PREPYC_PYTHON as the default target, and ``--python`` still wins.
"""

import os
import sys
import sysconfig

from prepyc import find_binary


def main():
    binary = find_binary()
    if binary is None:
        sys.stderr.write("prepyc: error: cannot find the prepyc program installed with "
                         "this package (not in '%s' nor on PATH); reinstall it with pip\n"
                         % sysconfig.get_path('scripts'))
        sys.exit(2)
    if not os.environ.get('PREPYC_PYTHON') and sys.executable:
        os.environ['PREPYC_PYTHON'] = sys.executable
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execv(binary, ['prepyc'] + sys.argv[1:])
    except OSError as e:
        sys.stderr.write("prepyc: error: cannot run '%s': %s\n" % (binary, e.strerror))
        sys.exit(2)


if __name__ == '__main__':
    main()
