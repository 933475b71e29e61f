"""prepyc: precompile Python bytecode for deployment.

The work is done by the ``prepyc`` program that the wheel installs beside
this package, in the environment's scripts directory (``bin/``).
``python -m prepyc ARGS`` runs it with that interpreter as the default
target (see __main__.py).  Runs on Python 3.6+.
"""

import os
import shutil
import sysconfig


def find_binary():
    """The path of the prepyc program, or None.

    First where this install put it: the scripts directory that goes with
    the site-packages holding this package (the same relative place for a
    virtual environment, ``--user`` and ``--prefix`` installs); then the
    running environment's scripts directory; then PATH.
    """
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    scripts = sysconfig.get_path('scripts')
    relative = os.path.relpath(scripts, sysconfig.get_path('purelib'))
    for directory in (os.path.normpath(os.path.join(here, relative)), scripts):
        path = os.path.join(directory, 'prepyc')
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return shutil.which('prepyc')
