#!/usr/bin/env python3
"""Benchmark prepyc against `python -m compileall -j0`, and against a limit.

What is measured
----------------
Two trees are copied into a scratch directory: the target interpreter's
site-packages (every site-/dist-packages directory on its sys.path, each as a
subdirectory) and its standard library (including test/, excluding
site-packages).  For each tree, each scenario is run --runs times per tool and
the median wall-clock time is reported:

  cold     no __pycache__ anywhere in the tree; every file is compiled.
  no-op    every pyc is already fresh; the tool only has to find that out.
  touched  every source's mtime is bumped while the old pycs are still there;
           every file is recompiled (and every pyc replaced).
  cold-fill  cold, prepyc with an empty bytecode cache that it fills.
  new-build  what a new build of the same tree is (CI job, PaaS build): every
           source touched (new mtimes, same content) and, for prepyc, a warm
           bytecode cache; compileall recompiles everything.
  check    prepyc check against compileall's no-op run.
  check-zip  prepyc check of the compiled tree packed in a zip (check BUNDLE:
           libarchive, nothing extracted) against prepyc check of the tree.
  second-venv  the tree copied to another path (another name and depth: a
           second virtualenv, a CI workspace elsewhere); prepyc's bytecode
           cache was filled by compiling the first copy, and prepyc compiles
           the second one cold (its entries are relocated: cachekey.h);
           compileall -j0 compiles it cold.  The line also says how many pycs
           came from the cache (the cache's stats line of the last run).

  fleet-redis, fleet-http  a fleet's fresh builder (CI runner, autoscaled
           builder): the tree copied to another path (as second-venv), new
           mtimes, no pycs, an EMPTY local cache, and a warm remote cache on
           loopback (--remote-cache): redis-server, or nginx with WebDAV PUT,
           started by the bench in the scratch directory (tests/e2e/servers.py;
           the scenario is skipped when the server or prepyc's client library
           is missing).  The remote was filled by compiling the first copy.
           The line adds the ratio to second-venv's prepyc time when that
           scenario ran too (the goal: within 1.5x of a warm local cache) and
           the remote traffic of the last run (requests, bytes sent/received,
           from PREPYC_TRACE).  prepyc also runs with --remote-cache-only
           (a builder thrown away after the job: no local entry written),
           shown as "remote-only", with its ratio to second-venv.

In cold, `prepyc --no-canonical` runs too, and the line shows what writing
the canonical form costs ("canonical +N%").  prepyc runs with --no-cache
except in cold-fill and new-build.

The tools are `TARGET -m compileall -q -j0 TREE` (the thing prepyc replaces)
and `prepyc compile -q --python TARGET TREE`.  Exit status 1 ("some file
failed to compile") is expected: the stdlib's test/ holds broken files.

The limit
---------
Compiling is done by the target interpreter, so no tool can write pycs faster
than the interpreter can compile + marshal them.  The limit is what a perfect
parallel tool, with zero overhead for walking, stat'ing, process start-up, IPC
and writing, would take: one process of the target per core, each taking the
next file (largest first, as prepyc hands them out) and doing only
    marshal.dumps(compile(source, path, 'exec', dont_inherit=True))
with every source read beforehand; the wall time from the moment all start
to the moment the last one ends (the median of --runs runs).  `prepyc/limit`
says how close prepyc gets (1.00 = perfect).  It applies to the scenarios that
recompile every file (cold, touched), not to no-op.

The line also gives the CPU time one process spends on the same work,
divided by the number of cores ("serial CPU / cores"): what the cores would
do if running side by side cost nothing.  It does not: on this project's
2-vCPU machines two compiling processes take 7-12% more CPU than one doing
the same files in turn (shared caches, a busy neighbour), and the limit
measures that instead of assuming it away.

Fresh files
-----------
A build writes its pycs into a tree that was just checked out or installed:
nothing was deleted there a moment before.  The bench, though, removes every
__pycache__ (and the caches) between runs, and on ext4 without a journal
(this project's build VMs) an inode freed less than a minute before (six
minutes while its block is unwritten) is skipped one by one by the kernel's
allocator (ext4's recently_deleted()): creating 10,000 files right after
deleting 10,000 then costs the kernel 2-4 times what it costs on a fresh
tree, and that cost, not the tools, decided the cold, second-venv and fleet
lines.  So what a scenario removes is moved aside, into the scratch
directory's "discarded/" (deleted with it at the end), never deleted while
the bench runs; both tools start from the same state.  The disk must hold
every run's pycs until the end (a few GB for both trees at --runs 3).

Settled
-------
A run leaves its pycs (and a cache's entries: some 270 MB for the site tree)
dirty in the page cache, and the kernel writes them back in the next half
minute, on the same two cores, while the next run is being timed: which
run paid for it depended on timing alone.  So before each timed run the
bench calls sync(): every run starts with nothing of another's left to
write, as a build on a fresh builder does, and pays for its own writes as
far as the kernel charges them to it.

The write floor
---------------
The limit leaves out writing.  After the cold scenario, the same pycs
(prepyc's: same paths, same sizes, zeros for bytes) are written into the tree
right after the same __pycache__ removal, by one process per core, each
file as prepyc writes it (a temporary file in its directory, then rename()),
nothing compiled.  The "write-floor" line gives its wall and CPU time (user,
sys: mostly the kernel), `limit+writes` (the limit plus the writes' CPU /
cores) and prepyc's ratio to both, so that a reader sees which part of
prepyc's distance to the limit is the kernel's file creation.

The no-op floor
---------------
A no-op must stat() every directory outside __pycache__ (a changed one may
hold a new source), every source and every pyc (an edit in place, or a cp
over a pyc, changes only that file's inode): three lists that nothing
cheaper can vouch for.  After the no-op scenario, those stat() calls alone
are timed in C (build/test-tool stat-floor, --test-tool) on one thread per
core, as prepyc's no-op spreads them, with the dentries warm as in the
scenario; the "no-op-floor" line gives the median pass and prepyc's ratio
to it (skipped without test-tool).

Each tool also gets its children's CPU time (user+sys, via getrusage), shown
with the min-max wall times in brackets at the end of each scenario line.

Output: one greppable line per tree and per scenario, prefixed "bench:".

Extending: a scenario is an entry of SCENARIOS (name -> prepare function run
before each timed run, the tools to run, extra per-tool arguments, and whether
the limit applies); a tool is an entry of the table built by make_tools().

Standard library only; runs on Python 3.8+ (the target may be 3.6+).
"""

import argparse
import json
import os
import re
import resource
import shutil
import stat
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

# Variables that would change where/how pycs are written or how freshness is
# decided; they are removed from the tools' environment.
SCRUBBED_ENV = ("PYTHONPYCACHEPREFIX", "PYTHONOPTIMIZE", "SOURCE_DATE_EPOCH")
TOOL_TIMEOUT = 3600  # seconds; a run taking longer counts as a failure

failures = []  # human-readable failure descriptions; non-empty -> exit 1


def say(msg=""):
    print(msg, flush=True)


def fail(msg):
    failures.append(msg)
    say("bench: FAILURE: " + msg)


# --------------------------------------------------------------------------
# Interpreters
# --------------------------------------------------------------------------

PROBE = r"""
import importlib.util, json, os, platform, sys, sysconfig
print(json.dumps({
    "magic": importlib.util.MAGIC_NUMBER.hex(),
    "executable": sys.executable,
    "version": list(sys.version_info[:3]),
    "impl": platform.python_implementation(),
    "impl_version": platform.python_version(),
    "cache_tag": sys.implementation.cache_tag,
    "path": sys.path,
    "stdlib": sysconfig.get_paths()["stdlib"],
}))
"""


@dataclass
class Interp:
    executable: str
    version: Tuple[int, int, int]
    label: str  # e.g. "CPython 3.11.7"
    stdlib: str
    site_dirs: List[str]
    cache_tag: str
    magic: bytes
    py_files: int = 0  # .py files in site_dirs (for choosing the richest)


def probe(python: str) -> Optional[Interp]:
    """Ask an interpreter about itself; None if it is unusable."""
    try:
        out = subprocess.run([python, "-c", PROBE], capture_output=True,
                             text=True, timeout=60, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    try:
        info = json.loads(out.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None
    if info["version"][0] < 3 or not info["cache_tag"]:
        return None
    site_dirs, seen = [], set()
    for p in info["path"]:
        real = os.path.realpath(p) if p else ""
        if (os.path.basename(p.rstrip(os.sep)) in ("site-packages", "dist-packages")
                and os.path.isdir(p) and real not in seen):
            seen.add(real)
            site_dirs.append(p)
    return Interp(executable=info["executable"],
                  version=tuple(info["version"]),
                  label="%s %s" % (info["impl"], info["impl_version"]),
                  stdlib=info["stdlib"], site_dirs=site_dirs,
                  cache_tag=info["cache_tag"], magic=bytes.fromhex(info["magic"]))


def pyenv_root() -> Optional[str]:
    if os.environ.get("PYENV_ROOT"):
        return os.environ["PYENV_ROOT"]
    try:
        out = subprocess.run(["pyenv", "root"], capture_output=True, text=True,
                             timeout=30)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    default = os.path.expanduser("~/.pyenv")
    return default if os.path.isdir(default) else None


def candidate_paths() -> List[str]:
    """Python 3 interpreters that may be installed here."""
    pattern = re.compile(r"^(python|pypy)3(\.\d+)?$")
    dirs = ["/usr/bin", "/usr/local/bin"]
    root = pyenv_root()
    if root and os.path.isdir(os.path.join(root, "versions")):
        for v in sorted(os.listdir(os.path.join(root, "versions"))):
            dirs.append(os.path.join(root, "versions", v, "bin"))
    found = []
    for d in dirs:
        try:
            names = sorted(os.listdir(d))
        except OSError:
            continue
        # versioned names first, so "python3.11" is reported rather than "python3"
        names = sorted((n for n in names if pattern.match(n)), key=lambda n: ("." not in n, n))
        found += [os.path.join(d, n) for n in names]
    return found


_py_file_counts: Dict[str, int] = {}


def count_py_files(top: str) -> int:
    real = os.path.realpath(top)
    if real not in _py_file_counts:
        _py_file_counts[real] = sum(1 for _ in walk_sources(top))
    return _py_file_counts[real]


def richest_interpreter() -> Optional[Interp]:
    """The Python 3 interpreter with the most .py files in its site dirs."""
    best, seen = None, set()
    for path in candidate_paths():
        interp = probe(path)
        if interp is None:
            continue
        real = os.path.realpath(interp.executable)
        if real in seen:
            continue
        seen.add(real)
        interp.py_files = sum(count_py_files(d) for d in interp.site_dirs)
        if best is None or (interp.py_files, interp.version) > (best.py_files, best.version):
            best = interp
    return best


# --------------------------------------------------------------------------
# Trees
# --------------------------------------------------------------------------

@dataclass
class Tree:
    name: str  # "site-packages" or "stdlib"
    root: str
    sources: List[str] = field(default_factory=list)  # .py files compileall compiles
    source_bytes: int = 0


def walk_sources(top: str):
    """Yield the .py files compileall would compile under top.

    Like compileall: __pycache__ skipped, symlinked directories not entered,
    names ending exactly in ".py" (symlinked files included).
    """
    try:
        entries = sorted(os.scandir(top), key=lambda e: e.name)
    except OSError:
        return
    for e in entries:
        if e.name == "__pycache__":
            continue
        if e.is_dir(follow_symlinks=False):
            yield from walk_sources(e.path)
        elif e.name.endswith(".py"):
            yield e.path


def copy_ignore(excluded_dirs=()):
    """A copytree ignore function: drop __pycache__, *.pyc, special files."""
    def ignore(src, names):
        dropped = []
        for n in names:
            if n == "__pycache__" or n.endswith(".pyc") or n in excluded_dirs:
                dropped.append(n)
                continue
            try:
                mode = os.lstat(os.path.join(src, n)).st_mode
            except OSError:
                dropped.append(n)
                continue
            if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
                dropped.append(n)
        return dropped
    return ignore


def copy_tree(src: str, dst: str, excluded_dirs=()):
    shutil.copytree(src, dst, symlinks=True,
                    ignore=copy_ignore(excluded_dirs))


def build_tree(name: str, interp: Interp, workdir: str) -> Optional[Tree]:
    root = os.path.join(workdir, name)
    if name == "site-packages":
        os.makedirs(root)
        for d in interp.site_dirs:
            sub = os.path.abspath(d).strip(os.sep).replace(os.sep, "_")
            copy_tree(d, os.path.join(root, sub))
    elif name == "stdlib":
        copy_tree(interp.stdlib, root,
                  excluded_dirs=("site-packages", "dist-packages"))
    else:
        raise ValueError(name)
    tree = Tree(name=name, root=root, sources=list(walk_sources(root)))
    for s in tree.sources:
        try:
            tree.source_bytes += os.stat(s).st_size
        except OSError:
            pass
    return tree


# Where discard() moves what a scenario removes (set by main(); "" = delete).
discard_dir = ""
discarded = 0


def discard(path: str):
    """Remove `path` from where it is by moving it into discard_dir (deleted with
    the scratch directory at the end), not by deleting it: see "Fresh files"."""
    global discarded
    if not os.path.lexists(path):
        return
    if discard_dir:
        discarded += 1
        os.rename(path, os.path.join(discard_dir, "%d" % discarded))
    elif os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def remove_pycaches(top: str):
    for dirpath, dirnames, _ in os.walk(top):
        for d in list(dirnames):
            if d == "__pycache__":
                full = os.path.join(dirpath, d)
                if not os.path.islink(full):
                    discard(full)
                dirnames.remove(d)


def count_fresh_pycs(tree: Tree, interp: Interp) -> int:
    """Sources whose pyc (as import would look for it) is valid now.

    A timestamp pyc must match the source's mtime and size; a hash-based pyc
    (3.7+, flags != 0) is counted as valid.  Catches a tool that skips work.
    """
    new_header = interp.version >= (3, 7)
    fresh = 0
    for src in tree.sources:
        head, base = os.path.split(src)
        pyc = os.path.join(head, "__pycache__",
                           "%s.%s.pyc" % (base[:-3], interp.cache_tag))
        try:
            st = os.stat(src)
            with open(pyc, "rb") as f:
                data = f.read(16 if new_header else 12)
        except OSError:
            continue
        if data[:4] != interp.magic or len(data) < (16 if new_header else 12):
            continue
        if new_header and data[4:8] != b"\0\0\0\0":
            fresh += 1
            continue
        mtime, size = struct.unpack("<II", data[-8:])
        if (mtime, size) == (int(st.st_mtime) & 0xFFFFFFFF, st.st_size & 0xFFFFFFFF):
            fresh += 1
    return fresh


def has_pycache(top: str) -> bool:
    for dirpath, dirnames, _ in os.walk(top):
        if "__pycache__" in dirnames:
            return True
    return False


# --------------------------------------------------------------------------
# Tools
# --------------------------------------------------------------------------

@dataclass
class Tool:
    name: str   # key, e.g. "prepyc"
    label: str  # as printed, e.g. "compileall -j0"
    argv: Callable[[Tree, List[str]], List[str]]  # (tree, extra args) -> argv
    env: Dict[str, str]


@dataclass
class RunResult:
    ok: bool
    wall: float
    cpu: float  # user+sys of the tool and its children
    fresh: int = 0  # sources with a valid pyc after the run
    stderr: bytes = b""


def base_env() -> Dict[str, str]:
    env = dict(os.environ)
    for k in SCRUBBED_ENV:
        env.pop(k, None)
    return env


def make_tools(interp: Interp, prepyc: str, cache_dir: str) -> Dict[str, Tool]:
    py = interp.executable
    ca_env = base_env()
    ca_env["PYTHONHASHSEED"] = "0"

    def pp(*opts):
        return lambda tree, extra: ([prepyc, "compile", "-q", "--python", py] + list(opts)
                                    + extra + [tree.root])
    return {
        "compileall": Tool(
            "compileall", "compileall -j0",
            lambda tree, extra: [py, "-m", "compileall", "-q", "-j0"] + extra + [tree.root],
            ca_env),
        # compiling: no bytecode cache, canonical pycs (the default)
        "prepyc": Tool("prepyc", "prepyc", pp("--no-cache"), base_env()),
        # the same without canonicalisation: what the canonical form costs
        "prepyc-raw": Tool("prepyc-raw", "prepyc --no-canonical",
                           pp("--no-cache", "--no-canonical"), base_env()),
        # with the bytecode cache (its own directory in the work directory)
        "prepyc-cache": Tool("prepyc-cache", "prepyc (cache)",
                             pp("--cache-dir", cache_dir), base_env()),
        # verifies what prepyc compiled: every source's pyc read, checked, unmarshalled
        "prepyc-check": Tool(
            "prepyc-check", "prepyc check",
            lambda tree, extra: [prepyc, "check", "-q", "--python", py] + extra + [tree.root],
            base_env()),
        # the same, of the tree packed in TREE.zip (prepare_zipped())
        "prepyc-check-zip": Tool(
            "prepyc-check-zip", "prepyc check (zip)",
            lambda tree, extra: ([prepyc, "check", "-q", "--python", py] + extra
                                 + [tree.root + ".zip"]),
            base_env()),
    }


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def tail(data: bytes, lines=15) -> str:
    text = data.decode("utf-8", "replace").rstrip("\n").splitlines()
    return "\n".join("    | " + l for l in text[-lines:])


def settle() -> None:
    """Write back what earlier runs and the preparation left dirty (see "Settled")."""
    if hasattr(os, "sync"):
        os.sync()


def run_tool(tool: Tool, tree: Tree, extra: List[str], what: str) -> RunResult:
    """Run a tool once on a tree; exit status 0 and 1 count as success."""
    argv = tool.argv(tree, extra)
    cpu0, t0 = children_cpu(), time.perf_counter()
    try:
        proc = subprocess.run(argv, env=tool.env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=TOOL_TIMEOUT)
    except subprocess.TimeoutExpired as e:
        fail("%s: %s timed out after %ds" % (what, tool.label, TOOL_TIMEOUT))
        say(tail(e.stderr or b""))
        return RunResult(False, 0.0, 0.0)
    except OSError as e:
        fail("%s: cannot run %s: %s" % (what, argv[0], e))
        return RunResult(False, 0.0, 0.0)
    wall, cpu = time.perf_counter() - t0, children_cpu() - cpu0
    if proc.returncode not in (0, 1):
        how = ("killed by signal %d" % -proc.returncode if proc.returncode < 0
               else "exit status %d" % proc.returncode)
        msg = "%s: %s: %s\n  command: %s" % (what, tool.label, how, " ".join(argv))
        if proc.stderr.strip():
            msg += "\n  stderr tail:\n" + tail(proc.stderr)
        if proc.stdout.strip():
            msg += "\n  stdout tail:\n" + tail(proc.stdout, 5)
        fail(msg)
        return RunResult(False, wall, cpu)
    return RunResult(True, wall, cpu, stderr=proc.stderr)


# --------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------

class Bench:
    """State shared by the prepare functions (e.g. the mtime counter)."""

    def __init__(self, interp: Interp):
        self.interp = interp
        self.last_mtime = int(time.time())
        self.tools: Dict[str, "Tool"] = {}
        self.cache_dir = ""
        self.cache_warm: Dict[str, bool] = {}  # tree name -> the cache holds its code
        self.first: Dict[str, "Tree"] = {}  # second-venv: the copy's root -> the first tree
        self.workdir = ""
        self.servers: Dict[str, object] = {}  # fleet: kind -> running server (or None)
        self.remote_warm: Dict[str, bool] = {}  # fleet: kind -> the remote holds the tree
        self.prepyc = ""

    def next_mtime(self) -> int:
        """A fresh mtime, later than anything any pyc could record."""
        self.last_mtime = max(self.last_mtime, int(time.time())) + 7
        return self.last_mtime


# A prepare function puts the tree into the scenario's starting state before
# each timed run; it returns False if it failed (the failure is recorded).

def prepare_cold(bench: Bench, tree: Tree, tool: Tool, extra: List[str]) -> bool:
    remove_pycaches(tree.root)
    return True


def prepare_fresh(bench: Bench, tree: Tree, tool: Tool, extra: List[str]) -> bool:
    """Untimed warm-up run of the same tool: afterwards every pyc is fresh."""
    return run_tool(tool, tree, extra, "%s warm-up" % tree.name).ok


def prepare_touched(bench: Bench, tree: Tree, tool: Tool, extra: List[str]) -> bool:
    """Make sure pycs exist, then give every source a new mtime."""
    if not has_pycache(tree.root):
        if not run_tool(tool, tree, extra, "%s warm-up" % tree.name).ok:
            return False
    t = bench.next_mtime()
    for s in tree.sources:
        try:
            if stat.S_ISREG(os.lstat(s).st_mode):  # never touch outside the tree
                os.utime(s, (t, t))
        except OSError:
            pass
    return True


def prepare_compiled(bench: Bench, tree: Tree, tool: Tool, extra: List[str]) -> bool:
    """Every pyc fresh, written by the tool itself or, for a checker, by prepyc."""
    if tool.name.startswith("prepyc-check"):
        tool = bench.tools["prepyc"]
    return run_tool(tool, tree, extra, "%s warm-up" % tree.name).ok


def prepare_zipped(bench: Bench, tree: Tree, tool: Tool, extra: List[str]) -> bool:
    """Every pyc fresh, and for the zip checker the tree packed in TREE.zip (once)."""
    if not prepare_compiled(bench, tree, tool, extra):
        return False
    path = tree.root + ".zip"
    if tool.name != "prepyc-check-zip" or os.path.exists(path):
        return True
    version = subprocess.run([tool.argv(tree, [])[0], "--version"], stdout=subprocess.PIPE,
                             universal_newlines=True).stdout
    if "libarchive" not in version:
        fail("%s: prepyc was built without libarchive: no check of a zip" % tree.name)
        return False
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for dirpath, dirnames, filenames in os.walk(tree.root):
            for name in filenames:
                p = os.path.join(dirpath, name)
                if not os.path.islink(p):
                    z.write(p, os.path.relpath(p, tree.root))
    return True


def prepare_new_build(bench: Bench, tree: Tree, tool: Tool, extra: List[str]) -> bool:
    """A new build: every source touched (a fresh checkout) and, for prepyc, a cache
    that an earlier build of the same tree filled."""
    if tool.name == "prepyc-cache" and not bench.cache_warm.get(tree.name):
        remove_pycaches(tree.root)
        if not run_tool(tool, tree, extra, "%s cache warm-up" % tree.name).ok:
            return False
        bench.cache_warm[tree.name] = True
    return prepare_touched(bench, tree, tool, extra)


def prepare_cold_empty_cache(bench: Bench, tree: Tree, tool: Tool, extra: List[str]) -> bool:
    """Cold, and for prepyc an empty cache to fill."""
    remove_pycaches(tree.root)
    if tool.name == "prepyc-cache":
        discard(bench.cache_dir)
        bench.cache_warm.clear()
    return True


def prepare_second_venv(bench: Bench, tree: Tree, tool: Tool, extra: List[str]) -> bool:
    """`tree` is the second copy, cold; for prepyc, a cache that compiling the
    first copy (at its own path) filled."""
    first = bench.first[tree.root]
    if tool.name == "prepyc-cache" and not bench.cache_warm.get(first.name):
        remove_pycaches(first.root)
        if not run_tool(tool, first, extra, "%s cache warm-up" % first.name).ok:
            return False
        bench.cache_warm[first.name] = True
    remove_pycaches(tree.root)
    return True


def remote_url(bench: Bench, kind: str) -> Optional[str]:
    """The URL of the bench's own `kind` server ("redis", "http"), started on first
    use on 127.0.0.1 with an ephemeral port; None when it cannot be had."""
    if kind not in bench.servers:
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                        "..", "tests", "e2e"))
        import servers
        bench.servers[kind] = None
        binary = servers.redis_binary() if kind == "redis" else servers.nginx_binary()
        if binary:
            try:
                bench.servers[kind] = (servers.Redis if kind == "redis" else servers.Nginx)(
                    bench.workdir)
            except OSError as e:
                say("bench: note: cannot start the %s server: %s" % (kind, e))
    s = bench.servers[kind]
    return s.url if s else None


def fleet_missing(bench: Bench, prepyc: str, kind: str) -> str:
    """Why the fleet scenario of `kind` cannot run ("" when it can)."""
    lib = "hiredis" if kind == "redis" else "libcurl"
    out = subprocess.run([prepyc, "--version"], capture_output=True, text=True).stdout
    if lib not in out.split("features:")[-1].split():
        return "prepyc was built without %s" % lib
    if not remote_url(bench, kind):
        return "no %s server (%s)" % (kind, "redis-server" if kind == "redis" else "nginx")
    return ""


def prepare_fleet(bench: Bench, tree: Tree, tool: Tool, extra: List[str]) -> bool:
    """`tree` is the second copy: cold, new mtimes; for prepyc an empty local cache
    and a remote cache that compiling the first copy (with its own cache) filled."""
    remove_pycaches(tree.root)
    t = bench.next_mtime()
    for s in tree.sources:
        try:
            if stat.S_ISREG(os.lstat(s).st_mode):
                os.utime(s, (t, t))
        except OSError:
            pass
    if tool.name.startswith("prepyc-fleet-"):
        kind = tool.name[len("prepyc-fleet-"):].replace("-only", "")
        if not bench.remote_warm.get(kind):
            first = bench.first[tree.root]
            remove_pycaches(first.root)
            warm = Tool(tool.name, tool.label, make_fleet_argv(
                bench, kind, os.path.join(bench.workdir, "fleet-warm-" + kind)), tool.env)
            if not run_tool(warm, first, extra, "%s remote warm-up" % first.name).ok:
                return False
            bench.remote_warm[kind] = True
        discard(os.path.join(bench.workdir, "fleet-cache"))
    return True


def make_fleet_argv(bench: Bench, kind: str, cache_dir: str, only: bool = False):
    def argv(tree, extra):
        return ([bench.prepyc, "compile", "-q", "--python", bench.interp.executable,
                 "--cache-dir", cache_dir, "--remote-cache", remote_url(bench, kind)]
                + (["--remote-cache-only"] if only else []) + extra + [tree.root])
    return argv


def fleet_traffic(rs: List[RunResult]) -> str:
    """The remote's counters in the last run's PREPYC_TRACE line."""
    if not rs:
        return ""
    m = re.search(r"trace: remote cache '[^']*': (hits=.*)", rs[-1].stderr.decode("utf-8", "replace"))
    if not m:
        return "no remote trace"
    f = dict(re.findall(r"(\w+)=(\d+)", m.group(1)))
    return "remote: %s hits, %s requests, %.1f MB sent, %.1f MB received" % (
        f.get("hits"), f.get("requests"), int(f.get("bytes_sent", 0)) / 1e6,
        int(f.get("bytes_received", 0)) / 1e6)


def second_copy(bench: Bench, tree: Tree, workdir: str) -> Tree:
    """The tree copied to another path: another name, one level deeper."""
    root = os.path.join(workdir, "venv-two", "lib", tree.name + "-copy")
    copy_tree(tree.root, root)
    copy = Tree(name=tree.name, root=root,
                sources=[os.path.join(root, os.path.relpath(s, tree.root)) for s in tree.sources],
                source_bytes=tree.source_bytes)
    bench.first[root] = tree
    return copy


def cache_last_run(cache_dir: str) -> str:
    """hits=N misses=N of the last run the cache recorded."""
    try:
        with open(os.path.join(cache_dir, "stats")) as f:
            last = f.read().splitlines()[-1].split()
    except (OSError, IndexError):
        return "cache stats unreadable"
    return " ".join(w for w in last if w.split("=")[0] in ("hits", "misses"))


@dataclass
class Scenario:
    prepare: Callable[[Bench, Tree, Tool, List[str]], bool]
    tools: Tuple[str, ...] = ("compileall", "prepyc")  # reference first, subject last
    extra: Dict[str, List[str]] = field(default_factory=dict)  # tool name -> args
    limit: bool = False  # compare with the compile limit (all files recompiled)
    copy: bool = False  # run on a copy of the tree at another path (second_copy())


SCENARIOS: Dict[str, Scenario] = {
    # prepyc --no-canonical alongside: the cost of the canonical form
    "cold": Scenario(prepare_cold, tools=("compileall", "prepyc-raw", "prepyc"), limit=True),
    # cold, filling an empty bytecode cache: what the cache costs the first build
    "cold-fill": Scenario(prepare_cold_empty_cache, tools=("compileall", "prepyc-cache")),
    # a new build of the same tree: sources touched, the cache warm
    "new-build": Scenario(prepare_new_build, tools=("compileall", "prepyc-cache")),
    "no-op": Scenario(prepare_fresh),
    "touched": Scenario(prepare_touched, limit=True),
    # prove a deploy is compiled: prepyc check against compileall's own no-op run
    "check": Scenario(prepare_compiled, tools=("compileall", "prepyc-check")),
    # the same proof on the artifact: the tree packed in a zip
    "check-zip": Scenario(prepare_zipped, tools=("prepyc-check", "prepyc-check-zip")),
    # the same tree at another path, the cache warm from the first copy
    "second-venv": Scenario(prepare_second_venv, tools=("compileall", "prepyc-cache"),
                            copy=True),
    # a fresh builder of a fleet: the copy, an empty local cache, a warm remote one
    "fleet-redis": Scenario(prepare_fleet, tools=("compileall", "prepyc-fleet-redis-only",
                                                  "prepyc-fleet-redis"),
                            copy=True),
    "fleet-http": Scenario(prepare_fleet, tools=("compileall", "prepyc-fleet-http-only",
                                                 "prepyc-fleet-http"),
                           copy=True),
}


def run_scenario(bench: Bench, name: str, sc: Scenario, tree: Tree,
                 tools: Dict[str, Tool], runs: int) -> Dict[str, List[RunResult]]:
    """Alternate the tools; each run starts from the scenario's state."""
    results = {t: [] for t in sc.tools}
    broken = set()
    for i in range(runs):
        for tname in sc.tools:
            if tname in broken:
                continue
            tool, extra = tools[tname], sc.extra.get(tname, [])
            if not sc.prepare(bench, tree, tool, extra):
                broken.add(tname)
                continue
            settle()
            r = run_tool(tool, tree, extra, "%s %s run %d" % (tree.name, name, i + 1))
            if not r.ok:
                broken.add(tname)
            else:
                r.fresh = count_fresh_pycs(tree, bench.interp)
                results[tname].append(r)
    for tname in broken:
        results[tname] = []
    return results


# --------------------------------------------------------------------------
# The limit
# --------------------------------------------------------------------------

LIMIT_SCRIPT = r"""
import json, marshal, multiprocessing, os, sys, time
with open(sys.argv[1]) as f:
    paths = json.load(f)
procs = int(sys.argv[2])
sources = []
for p in paths:
    try:
        with open(p, "rb") as f:
            sources.append((p, f.read()))
    except OSError:
        pass
sources.sort(key=lambda s: -len(s[1]))

def compile_one(p, src):
    try:
        marshal.dumps(compile(src, p, "exec", dont_inherit=True))
        return 1
    except Exception:
        return 0

if procs == 0:  # serial: one process, CPU time of the compiles alone
    clock = time.process_time
    cpu, ok = 0.0, 0
    for p, src in sources:
        t0 = clock()
        good = compile_one(p, src)
        if good:
            cpu += clock() - t0
        ok += good
    print(json.dumps({"cpu": cpu, "ok": ok, "failed": len(sources) - ok}))
    sys.exit(0)

def run(counter, barrier, results):
    barrier.wait()
    start, ok, n = time.time(), 0, len(sources)
    while True:
        with counter.get_lock():
            i = counter.value
            counter.value = i + 1
        if i >= n:
            break
        ok += compile_one(*sources[i])
    results.put((start, time.time(), ok))

ctx = multiprocessing.get_context("fork")
counter, barrier, results = ctx.Value("l", 0), ctx.Barrier(procs), ctx.Queue()
workers = [ctx.Process(target=run, args=(counter, barrier, results)) for _ in range(procs)]
for w in workers:
    w.start()
got = [results.get() for _ in workers]
for w in workers:
    w.join()
ok = sum(g[2] for g in got)
print(json.dumps({"wall": max(g[1] for g in got) - min(g[0] for g in got),
                  "ok": ok, "failed": len(sources) - ok}))
"""


def run_limit(interp: Interp, tree: Tree, listfile: str, procs: int) -> Optional[dict]:
    env = base_env()
    env["PYTHONHASHSEED"] = "0"
    settle()
    proc = subprocess.run([interp.executable, "-S", "-s", "-c", LIMIT_SCRIPT, listfile,
                           str(procs)], env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=TOOL_TIMEOUT)
    if proc.returncode != 0:
        fail("%s limit: exit status %d\n%s" % (tree.name, proc.returncode, tail(proc.stderr)))
        return None
    return json.loads(proc.stdout.decode().strip().splitlines()[-1])


def measure_limit(interp: Interp, tree: Tree, workdir: str, runs: int) -> Optional[dict]:
    """The limit: one target process per core compiling+marshalling the tree's
    files, taking the next one each (the median wall time of `runs` runs);
    and the CPU time one process spends on them in turn ("serial")."""
    listfile = os.path.join(workdir, tree.name + ".files.json")
    with open(listfile, "w") as f:
        json.dump(tree.sources, f)
    cores = os.cpu_count() or 1
    serial = run_limit(interp, tree, listfile, 0)
    walls = []
    for _ in range(runs):
        par = run_limit(interp, tree, listfile, cores)
        if not par:
            return None
        walls.append(par["wall"])
    if not serial:
        return None
    return {"wall": statistics.median(walls), "walls": walls, "serial_cpu": serial["cpu"],
            "ok": serial["ok"], "failed": serial["failed"], "cores": cores}


# --------------------------------------------------------------------------
# The write floor
# --------------------------------------------------------------------------

WRITE_SCRIPT = r"""
import json, os, sys, time
with open(sys.argv[1]) as f:
    items = json.load(f)
k, n = int(sys.argv[2]), int(sys.argv[3])
zeros = memoryview(bytes(max([size for _, size in items] or [0])))
made, pid = set(), os.getpid()
t0, c0 = time.time(), os.times()
for path, size in items[k::n]:
    d = os.path.dirname(path)
    if d not in made:
        os.makedirs(d, exist_ok=True)
        made.add(d)
    tmp = "%s.%d.tmp" % (path, pid)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    os.write(fd, zeros[:size])
    os.close(fd)
    os.rename(tmp, path)
c1 = os.times()
print(json.dumps({"start": t0, "end": time.time(), "user": c1.user - c0.user,
                  "sys": c1.system - c0.system}))
"""


def tree_pycs(top: str) -> List[Tuple[str, int]]:
    """Every pyc in a __pycache__ of the tree, with its size, in walk order."""
    out = []
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        if os.path.basename(dirpath) == "__pycache__":
            for name in sorted(filenames):
                if name.endswith(".pyc"):
                    p = os.path.join(dirpath, name)
                    out.append((p, os.lstat(p).st_size))
    return out


def measure_write_floor(tree: Tree, workdir: str, runs: int) -> Optional[dict]:
    """Write the tree's pycs again (sizes only) after removing every __pycache__,
    one process per core, as prepyc writes them; the median run's times."""
    items = tree_pycs(tree.root)
    if not items:
        return None
    listfile = os.path.join(workdir, tree.name + ".pycs.json")
    with open(listfile, "w") as f:
        json.dump(items, f)
    n = os.cpu_count() or 1
    done = []
    for _ in range(runs):
        remove_pycaches(tree.root)
        settle()
        procs = [subprocess.Popen([sys.executable, "-S", "-c", WRITE_SCRIPT, listfile,
                                   str(k), str(n)], stdout=subprocess.PIPE)
                 for k in range(n)]
        outs = [p.communicate(timeout=TOOL_TIMEOUT)[0] for p in procs]
        if any(p.returncode for p in procs):
            fail("%s write floor: a writer failed" % tree.name)
            return None
        parts = [json.loads(o.decode()) for o in outs]
        done.append({"wall": max(r["end"] for r in parts) - min(r["start"] for r in parts),
                     "user": sum(r["user"] for r in parts),
                     "sys": sum(r["sys"] for r in parts)})
    # the tree is left cold: the next scenario starts from real pycs or none
    remove_pycaches(tree.root)
    done.sort(key=lambda r: r["wall"])
    res = dict(done[len(done) // 2])
    res.update(files=len(items), bytes=sum(size for _, size in items), procs=n)
    return res


def report_write_floor(tree: Tree, floor: dict, limit: Optional[float],
                       prepyc: Optional[float]):
    cores = os.cpu_count() or 1
    cpu = floor["user"] + floor["sys"]
    parts = ["writes %d pycs (%.1f MB) in %d processes: wall %6.3fs cpu %.2fs "
             "(user %.2fs sys %.2fs)" % (floor["files"], floor["bytes"] / 1e6, floor["procs"],
                                         floor["wall"], cpu, floor["user"], floor["sys"])]
    if limit:
        both = limit + cpu / cores
        parts.append("limit %6.3fs  limit+writes %6.3fs" % (limit, both))
        if prepyc:
            parts.append("prepyc/limit %.2f  prepyc/(limit+writes) %.2f"
                         % (prepyc / limit, prepyc / both))
    say("bench: %s %-8s %s" % (tree.name, "write-floor", "  ".join(parts)))


# --------------------------------------------------------------------------
# The no-op floor
# --------------------------------------------------------------------------

def noop_paths(top: str) -> Tuple[List[str], int, int, int]:
    """What a no-op must stat(): every directory outside __pycache__ (one
    that changed may hold a new source), every source (an edit in place
    changes only its inode), every pyc (rewritten in place, as cp does, only
    its own inode changes too)."""
    paths, ndirs, nsrcs, npycs = [], 0, 0, 0
    for dirpath, dirnames, filenames in os.walk(top):
        if os.path.basename(dirpath) == "__pycache__":
            for name in filenames:
                if name.endswith(".pyc"):
                    paths.append(os.path.join(dirpath, name))
                    npycs += 1
            continue
        paths.append(dirpath)
        ndirs += 1
        for name in filenames:
            if name.endswith(".py"):
                paths.append(os.path.join(dirpath, name))
                nsrcs += 1
    return paths, ndirs, nsrcs, npycs


def measure_noop_floor(tree: Tree, workdir: str, runs: int,
                       test_tool: str) -> Optional[dict]:
    """The stat() calls alone, in C (test-tool stat-floor), on as many threads
    as prepyc's no-op uses (one per core): the median pass of a few."""
    paths, ndirs, nsrcs, npycs = noop_paths(tree.root)
    listfile = os.path.join(workdir, tree.name + ".noop-paths")
    with open(listfile, "w", encoding="utf-8", errors="surrogateescape") as f:
        f.write("\n".join(paths) + "\n")
    threads = min(os.cpu_count() or 1, 4)  # parallel.h: one per CPU, at most 4
    try:
        out = subprocess.run([test_tool, "stat-floor", str(threads), str(max(runs, 3) * 2),
                              listfile], capture_output=True, timeout=TOOL_TIMEOUT, check=True)
    except (OSError, subprocess.SubprocessError) as e:
        say("bench: %s no-op-floor skipped: %s" % (tree.name, e))
        return None
    ms = [float(x) for x in out.stdout.split()]
    return {"ms": statistics.median(ms), "min": min(ms), "max": max(ms), "threads": threads,
            "calls": len(paths), "dirs": ndirs, "srcs": nsrcs, "pycs": npycs}


def report_noop_floor(tree: Tree, floor: dict, prepyc: Optional[float]):
    line = ("%d stat() calls (%d directories, %d sources, %d pycs) on %d threads: "
            "%6.3fs" % (floor["calls"], floor["dirs"], floor["srcs"], floor["pycs"],
                        floor["threads"], floor["ms"] / 1000))
    if prepyc:
        line += "  prepyc no-op %6.3fs  prepyc/floor %.2f" % (prepyc, prepyc / (floor["ms"] / 1000))
    line += "  [min-max %.3f-%.3fs; nothing else: no process start, no log read]" % (
        floor["min"] / 1000, floor["max"] / 1000)
    say("bench: %s %-8s %s" % (tree.name, "no-op-floor", line))


# --------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------

def fmt_ratio(x: float) -> str:
    if x >= 100:
        return "%.0fx" % x
    if x >= 10:
        return "%.1fx" % x
    return "%.2fx" % x


bench_medians: Dict[Tuple[str, str], Dict[str, float]] = {}  # (tree, scenario) -> tool -> s


def report(tree: Tree, name: str, sc: Scenario, tools: Dict[str, Tool],
           results: Dict[str, List[RunResult]], limit: Optional[float], note: str = ""):
    parts, spread, med, all_fresh = [], [], {}, set()
    for tname in sc.tools:
        label = tools[tname].label
        extra = " ".join(sc.extra.get(tname, []))
        if extra:
            label += " " + extra
        rs = results[tname]
        if not rs:
            parts.append("%s FAILED" % label)
            continue
        walls = [r.wall for r in rs]
        med[tname] = statistics.median(walls)
        parts.append("%s %6.3fs" % (label, med[tname]))
        fresh = sorted({r.fresh for r in rs})
        spread.append("%s %.3f-%.3fs cpu %.2fs pycs %s" % (
            tname, min(walls), max(walls), statistics.median(r.cpu for r in rs),
            "/".join(map(str, fresh))))
        all_fresh.update(fresh)
    ref, subj = sc.tools[0], sc.tools[-1]
    if ref in med and subj in med and med[subj] > 0:
        parts.append("speedup %s" % fmt_ratio(med[ref] / med[subj]))
    if "prepyc-raw" in med and "prepyc" in med and med["prepyc-raw"] > 0:
        parts.append("canonical %+.1f%%" % (100.0 * (med["prepyc"] / med["prepyc-raw"] - 1)))
    if sc.limit and limit:
        parts.append("limit %6.3fs" % limit)
        # how far each tool is from the limit: prepyc's, next to compileall's
        for tname in (subj, ref):
            if tname in med:
                parts.append("%s/limit %.2f" % (tname, med[tname] / limit))
    if note:
        parts.append(note)
    if name.startswith("fleet-"):
        local = bench_medians.get((tree.name, "second-venv"), {}).get("prepyc-cache")
        if local and subj in med:
            parts.append("fleet/second-venv %.2f" % (med[subj] / local))
            only = subj + "-only"
            if only in med:
                parts.append("remote-only/second-venv %.2f" % (med[only] / local))
        parts.append(fleet_traffic(results.get(subj, [])))
    bench_medians[(tree.name, name)] = med
    say("bench: %s %-8s %s  [min-max %s]" % (tree.name, name, "  ".join(parts),
                                            "; ".join(spread)))
    if len(all_fresh) > 1:
        say("bench: WARNING: %s %s: the runs left different numbers of valid pycs "
            "(see 'pycs' above): some tool skipped or botched files" % (tree.name, name))


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def parse_args(argv=None):
    ap = argparse.ArgumentParser(description="Benchmark prepyc against compileall.")
    ap.add_argument("--prepyc", required=True, help="path to the prepyc binary")
    ap.add_argument("--python", help="target interpreter (default: the one with the "
                    "most .py files in its site-packages)")
    ap.add_argument("--runs", type=int, default=3, help="timed runs per scenario and tool")
    ap.add_argument("--trees", default="site,stdlib", help="comma list of: site, stdlib")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS),
                    help="comma list of: " + ", ".join(SCENARIOS))
    ap.add_argument("--workdir", help="scratch dir is created inside this (default: $TMPDIR)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    ap.add_argument("--quick", action="store_true", help="one run per scenario (smoke test)")
    ap.add_argument("--test-tool", help="build/test-tool, for the no-op floor line "
                    "(default: build/test-tool beside --prepyc, when there)")
    args = ap.parse_args(argv)
    if args.quick:
        args.runs = 1
    if args.runs < 1:
        ap.error("--runs must be >= 1")
    tree_names = {"site": "site-packages", "site-packages": "site-packages", "stdlib": "stdlib"}
    args.tree_list = []
    for t in filter(None, args.trees.split(",")):
        if t not in tree_names:
            ap.error("unknown tree %r (use site, stdlib)" % t)
        args.tree_list.append(tree_names[t])
    args.scenario_list = [s for s in args.scenarios.split(",") if s]
    for s in args.scenario_list:
        if s not in SCENARIOS:
            ap.error("unknown scenario %r (use %s)" % (s, ", ".join(SCENARIOS)))
    args.prepyc = os.path.abspath(args.prepyc)
    if not (os.path.isfile(args.prepyc) and os.access(args.prepyc, os.X_OK)):
        ap.error("--prepyc %s: not an executable file" % args.prepyc)
    if args.test_tool is None:
        near = os.path.join(os.path.dirname(args.prepyc), "build", "test-tool")
        args.test_tool = near if os.access(near, os.X_OK) else ""
    elif not os.access(args.test_tool, os.X_OK):
        ap.error("--test-tool %s: not an executable file" % args.test_tool)
    return args


def choose_interpreter(args) -> Optional[Interp]:
    if args.python:
        interp = probe(args.python)
        if interp is None:
            say("bench: error: %s: not found, or not a usable Python 3 interpreter" % args.python)
        return interp
    interp = richest_interpreter()
    if interp is None:
        say("bench: error: no Python 3 interpreter found")
    return interp


def bench_tree(bench: Bench, name: str, interp: Interp, tools, args, workdir: str):
    t0 = time.perf_counter()
    tree = build_tree(name, interp, workdir)
    cores = os.cpu_count() or 1
    say("bench: tree %s: %d files, %.1f MB, target %s, %d cores, %d runs (copied in %.1fs)"
        % (name, len(tree.sources), tree.source_bytes / 1e6, interp.label, cores,
           args.runs, time.perf_counter() - t0))
    limit = None
    if any(SCENARIOS[s].limit for s in args.scenario_list):
        lim = measure_limit(interp, tree, workdir, args.runs)
        if lim:
            limit = lim["wall"]
            say("bench: %s limit: %.3fs to compile+marshal %d files (%d fail to compile) "
                "in %d processes, one per core, no writes [min-max %.3f-%.3fs; serial CPU "
                "%.3fs / %d cores = %.3fs, running side by side costs %+.0f%%]"
                % (name, limit, lim["ok"], lim["failed"], cores, min(lim["walls"]),
                   max(lim["walls"]), lim["serial_cpu"], cores, lim["serial_cpu"] / cores,
                   100 * (limit / (lim["serial_cpu"] / cores) - 1)))
    copy = None
    for sname in args.scenario_list:
        sc = SCENARIOS[sname]
        where, note = tree, ""
        if sname.startswith("fleet-"):
            why = fleet_missing(bench, args.prepyc, sname[len("fleet-"):])
            if why:
                say("bench: %s %-8s skipped: %s" % (name, sname, why))
                continue
        if sc.copy:
            if copy is None:
                copy = second_copy(bench, tree, workdir)
            where = copy
        results = run_scenario(bench, sname, sc, where, tools, args.runs)
        if sc.copy and results.get("prepyc-cache"):
            note = "from the cache (last run): " + cache_last_run(bench.cache_dir)
        report(tree, sname, sc, tools, results, limit, note)
        if sname == "cold" and results.get("prepyc"):
            # prepyc ran last: the tree holds its pycs, whose sizes are written again
            floor = measure_write_floor(tree, workdir, args.runs)
            if floor:
                report_write_floor(tree, floor, limit,
                                   statistics.median(r.wall for r in results["prepyc"]))
        if sname == "no-op" and results.get("prepyc") and args.test_tool:
            # every pyc is fresh: what a no-op cannot avoid, timed alone
            nfloor = measure_noop_floor(tree, workdir, args.runs, args.test_tool)
            if nfloor:
                report_noop_floor(tree, nfloor,
                                  statistics.median(r.wall for r in results["prepyc"]))
    if not args.keep:
        discard(tree.root)
        if copy is not None:
            discard(copy.root)


def main(argv=None) -> int:
    args = parse_args(argv)
    interp = choose_interpreter(args)
    if interp is None:
        return 2
    say("bench: target %s (%s), prepyc %s, load average %.2f"
        % (interp.executable, interp.label, args.prepyc, os.getloadavg()[0]))
    for k in SCRUBBED_ENV:
        if k in os.environ:
            say("bench: note: %s is set; removed from the tools' environment" % k)
    if args.workdir:
        os.makedirs(args.workdir, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix="prepyc-bench-", dir=args.workdir)
    global discard_dir
    discard_dir = os.path.join(workdir, "discarded")
    os.mkdir(discard_dir)
    tools = make_tools(interp, args.prepyc, os.path.join(workdir, "cache"))
    bench = Bench(interp)
    bench.tools = tools
    bench.cache_dir = os.path.join(workdir, "cache")
    bench.workdir = workdir
    bench.prepyc = args.prepyc
    fleet_env = base_env()
    fleet_env["PREPYC_TRACE"] = "1"  # the remote's traffic, for the line
    for kind in ("redis", "http"):
        tools["prepyc-fleet-" + kind] = Tool(
            "prepyc-fleet-" + kind, "prepyc (remote %s)" % kind,
            make_fleet_argv(bench, kind, os.path.join(workdir, "fleet-cache")), fleet_env)
        tools["prepyc-fleet-%s-only" % kind] = Tool(
            "prepyc-fleet-%s-only" % kind, "prepyc (remote %s, --remote-cache-only)" % kind,
            make_fleet_argv(bench, kind, os.path.join(workdir, "fleet-cache"), True), fleet_env)
    try:
        for name in args.tree_list:
            bench_tree(bench, name, interp, tools, args, workdir)
    except KeyboardInterrupt:
        say("bench: interrupted")
        return 130
    finally:
        for s in bench.servers.values():
            if s:
                s.stop()
        if args.keep:
            say("bench: scratch directory kept: %s" % workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if failures:
        say("bench: %d failure(s)" % len(failures))
        return 1
    say("bench: done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
