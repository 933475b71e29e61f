// Run a Pyodide runtime (CPython compiled to WebAssembly, under Node) as if
// it were a native `python` program, for prepyc's tests:
//
//     node python.mjs --pyodide-dir DIR [--stdlib ZIP] [--prefix DIR] [--executable PATH]
//                     [--fds N,N...] -- [PYTHON OPTIONS] (-c CODE | -m MODULE | SCRIPT) ARGS...
//
// Normally run through the wrappers tests/pyodide/install.sh writes
// (CACHE/pyodide/314/python3.14, CACHE/pyodide/315/python3.15), which pass
// their own path as --executable and the file descriptors above 2 they
// inherited as --fds.
//
// What it does:
// - the Python options and arguments go to CPython's own command-line parser
//   (-S -s -B -I -E -O -X ..., -c / -m / script): sys.argv and sys.flags are
//   what a native python would have;
// - every top-level host directory but /dev, /proc, /sys and /lib is mounted
//   (NODEFS) at the same path, so host paths are valid as they are, in file
//   names, co_filename and pyc paths; a top-level symbolic link (/bin ->
//   usr/bin) becomes the same link; Pyodide's own /lib (its standard library
//   /lib/python3XY.zip) stays visible; the working directory is the host's;
// - the environment is the host's (os.environ), sys.executable is the
//   --executable path (prepyc runs its workers through the target's
//   sys.executable);
// - file descriptors 0, 1 and 2, and every --fds one (prepyc's workers read
//   requests on fd 3 and reply on fd 4; `check --import` reports on fd 3), are
//   Emscripten devices that read and write the host descriptor of the same
//   number with fs.readSync/fs.writeSync: raw bytes, unbuffered, blocking
//   (EAGAIN is waited out), a closed pipe is EPIPE (BrokenPipeError);
// - the exit status is Python's: SystemExit's code, 1 after an uncaught
//   exception (traceback on stderr), os._exit()'s status; Python is finalized
//   (atexit, flushing sys.stdout) before Node exits; a stack overflow (deep
//   recursion in the compiler) kills the process with SIGSEGV, a WebAssembly
//   abort with SIGABRT, as a native crash would;
// - --stdlib ZIP replaces python_stdlib.zip, which holds only sources: the
//   installer makes one holding unchecked hash-based pycs too, compiled by
//   this very runtime, so that the standard library is not compiled again
//   at every start (2.7 s to 1 s a start);
// - --prefix DIR becomes sys.prefix (and base_prefix, exec_prefix...): the
//   installer extracts the standard library's sources into DIR/lib/python3.X,
//   so sysconfig's "stdlib" is a directory the host sees at the same path
//   (Pyodide's own /lib/python3.X holds no sources); it goes on sys.path
//   before the zip, for the modules imported after start-up.
//
// Processes and signals (through the Node process, which stands for the
// Python one): os.getpid()/os.getppid() are the real pids; os.kill() sends
// real signals, so os.kill(os.getpid(), SIGSEGV) and os.abort() end the
// process by that signal, as natively; signal.signal(SIG, SIG_IGN) makes Node
// ignore SIG (prepyc's workers ignore SIGINT) and SIG_DFL restores it.
//
// What Pyodide cannot do, so the tests skip it (support.py, skip_if_pyodide):
// - no processes of its own: no fork, no subprocess (OSError ENOTSUP), no
//   multiprocessing (compileall -j falls back to compiling serially);
// - no threads; a Python signal handler is never called (the signal is then
//   simply ignored);
// - file permissions: Emscripten checks mode bits itself, as if no one were
//   root, and knows no users or groups (os.getuid() is 0);
// - timestamps before 1970 are misread (Emscripten's NODEFS: -1.5 s reads as
//   +1.79 s), sub-millisecond parts are lost;
// - a 32-bit build: sys.maxsize and str hashes differ from a 64-bit build;
// - start-up imports about 200 standard modules (asyncio, json, inspect...)
//   for Pyodide's JavaScript bridge, and takes 1-2 s (a native python 20 ms).
import fs from "node:fs";
import path from "node:path";
import tty from "node:tty";
import { pathToFileURL } from "node:url";

function usage(msg) {
  process.stderr.write(`python.mjs: ${msg}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const o = { dir: null, stdlib: null, prefix: null, executable: null, fds: [], args: [] };
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--") {
      i++;
      break;
    } else if (["--pyodide-dir", "--stdlib", "--prefix", "--executable", "--fds"].includes(a)) {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      const v = argv[++i];
      if (a === "--pyodide-dir") o.dir = v;
      else if (a === "--stdlib") o.stdlib = v;
      else if (a === "--prefix") o.prefix = v;
      else if (a === "--executable") o.executable = v;
      else o.fds = v.split(",").filter((s) => s !== "").map(Number);
    } else {
      break;
    }
  }
  o.args = argv.slice(i);
  if (!o.dir) usage("--pyodide-dir DIR is required");
  if (o.fds.some((fd) => !Number.isInteger(fd) || fd < 3)) usage("--fds takes numbers above 2");
  return o;
}

// WASI errno values, as Emscripten's FS.ErrnoError wants them.
const ERRNO = { EAGAIN: 6, EBADF: 8, EINTR: 27, EINVAL: 28, EIO: 29, ENOSPC: 51, EPIPE: 64 };

const sleeper = new Int32Array(new SharedArrayBuffer(4));
function nap() {
  Atomics.wait(sleeper, 0, 0, 2);
}

function errnoError(FS, e) {
  return new FS.ErrnoError(ERRNO[e && e.code] || ERRNO.EIO);
}

// Blocking read of at most `length` bytes from host fd `fd`.
function hostRead(FS, fd, buffer, offset, length) {
  for (;;) {
    try {
      return fs.readSync(fd, buffer, offset, length, null);
    } catch (e) {
      if (e.code === "EAGAIN" || e.code === "EINTR") {
        nap();
        continue;
      }
      if (e.code === "EOF") return 0;
      throw errnoError(FS, e);
    }
  }
}

// Writes all of it (Python's os.write may then return the full length).
function hostWrite(FS, fd, buffer, offset, length) {
  let done = 0;
  while (done < length) {
    try {
      done += fs.writeSync(fd, buffer, offset + done, length - done, null);
    } catch (e) {
      if (e.code === "EAGAIN" || e.code === "EINTR") {
        nap();
        continue;
      }
      if (done) return done;
      throw errnoError(FS, e);
    }
  }
  return done;
}

// Host fd N becomes the Emscripten character device /dev/hostfdN, opened
// at Emscripten fd N.
function bridgeFd(FS, fd) {
  const dev = FS.makedev ? FS.makedev(64, fd) : (64 << 8) | fd;
  FS.registerDevice(dev, {
    open() {},
    close() {},
    read(stream, buffer, offset, length) {
      return hostRead(FS, fd, buffer, offset, length);
    },
    write(stream, buffer, offset, length) {
      return hostWrite(FS, fd, buffer, offset, length);
    },
    llseek() {
      throw new FS.ErrnoError(70); // ESPIPE
    },
  });
  const name = `/dev/hostfd${fd}`;
  FS.mkdev(name, 0o666, dev);
  if (FS.streams[fd]) FS.close(FS.streams[fd]);
  const s = FS.open(name, 2 /* O_RDWR */);
  if (s.fd !== fd) {
    FS.dupStream(s, fd);
    FS.close(s);
  }
}

function mountHost(FS) {
  const skip = new Set(["dev", "proc", "sys", "lib"]);
  for (const name of fs.readdirSync("/")) {
    if (skip.has(name)) continue;
    const host = "/" + name;
    let st;
    try {
      st = fs.lstatSync(host);
    } catch (e) {
      continue;
    }
    if (st.isSymbolicLink()) {
      if (FS.analyzePath(host).exists) continue;
      FS.symlink(fs.readlinkSync(host), host);
    } else if (st.isDirectory()) {
      FS.mkdirTree(host);
      FS.mount(FS.filesystems.NODEFS, { root: host }, host);
    }
  }
}

function stdioOps(FS, fd) {
  return {
    isatty: tty.isatty(fd),
    read(buf) {
      return hostRead(FS, fd, buf, 0, buf.length);
    },
    write(buf) {
      return hostWrite(FS, fd, buf, 0, buf.length);
    },
  };
}

// Python's options that take a value, as CPython's getopt knows them.
const VALUE_OPTS = new Set(["W", "X"]);

// Scan the interpreter's options (up to -c, -m, the script): whether -B is
// among them, and the -W options, which come out of the arguments Python
// parses at start-up (see FIXUP: Pyodide's own start-up must not run under
// the caller's warning filters).
function scanOptions(args) {
  const out = { noBytecode: false, warnOptions: [], args: [] };
  let i = 0;
  for (; i < args.length; i++) {
    const a = args[i];
    if (a === "--check-hash-based-pycs") {
      out.args.push(a, ...args.slice(i + 1, i + 2));
      i++;
      continue;
    }
    if (a === "--" || a === "-" || !a.startsWith("-") || a.startsWith("--")) break;
    let keep = a, end = false;
    for (let j = 1; j < a.length; j++) {
      const c = a[j];
      if (c === "B") out.noBytecode = true;
      if (c === "c" || c === "m") {
        end = true;
        break;
      }
      if (VALUE_OPTS.has(c)) {
        let value = a.slice(j + 1);
        if (!value && i + 1 < args.length) value = args[++i];
        if (c === "W") {
          out.warnOptions.push(value);
          keep = a.slice(0, j);
        } else if (j === a.length - 1) {
          out.args.push(a);
          keep = null;
          out.args.push(value);
        }
        break;
      }
    }
    if (keep && keep !== "-") out.args.push(keep);
    if (end) {
      i++;
      break;
    }
  }
  out.args.push(...args.slice(i));
  return out;
}

// Run before the main program: undo what Pyodide's start-up does that a
// native python does not.
const FIXUP = `
import os, sys
# the environment is the host's: drop what Emscripten and Pyodide add
# (USER, LOGNAME, LANG, _, LD_LIBRARY_PATH, PYTHONINSPECT...)
for _k in list(os.environ):
    if _k not in host_env:
        del os.environ[_k]
# The warning filters: PYTHONWARNINGS, then -W, as Python orders them; they
# were kept from Pyodide's start-up (its modules warn: with "error", it fails)
_opts = [w for w in env_warnings.split(',') if w] if not sys.flags.ignore_environment else []
_opts += list(cmd_warnings)
if 'PYTHONWARNINGS' in host_env and env_warnings:
    os.environ['PYTHONWARNINGS'] = env_warnings
if _opts:
    import warnings
    sys.warnoptions[:] = _opts
    warnings._processoptions(_opts)

# Pyodide turns bytecode writing off, whatever the options say
sys.dont_write_bytecode = not write_bytecode or bool(
    not sys.flags.ignore_environment and os.environ.get('PYTHONDONTWRITEBYTECODE'))
# Pyodide puts '' first for itself; the main program inserts its own sys.path[0]
if sys.path and sys.path[0] == '':
    del sys.path[0]
_seen = set()
sys.path[:] = [p for p in sys.path if not (p in _seen or _seen.add(p))]

# --prefix: an installation prefix the host sees too (PREFIX/lib/python3.X
# holds the standard library's sources), for sysconfig and site
# and imports after start-up come from there (compiled by the installer, with
# __pycache__ as natively: PYTHONPYCACHEPREFIX, -O work as they do natively),
# ahead of the zip (which the about 200 modules of Pyodide's start-up came from)
if prefix:
    sys.prefix = sys.base_prefix = sys.exec_prefix = sys.base_exec_prefix = prefix
    _lib = os.path.join(prefix, 'lib', 'python%d.%d' % sys.version_info[:2])
    _zips = [i for i, p in enumerate(sys.path) if p.endswith('.zip')]
    if os.path.isdir(_lib) and _lib not in sys.path:
        sys.path.insert(_zips[0] if _zips else len(sys.path), _lib)
    # lib-dynload and site-packages (empty) where the host sees them too
    _own = '/lib/python%d.%d/' % sys.version_info[:2]
    sys.path[:] = [os.path.join(_lib, p[len(_own):]) if p.startswith(_own) else p
                   for p in sys.path]

# Processes and signals: the Node process stands for the Python process.
# Its pid is the real one; a signal sent to it, or os.abort(), ends it the
# way it would end a native python (a SIGSEGV kills it, status 139 in a
# shell); SIG_IGN for a signal makes Node ignore it (prepyc's workers ignore
# SIGINT), SIG_DFL restores Node's default.  A Python handler is never called.
def _install():
    import errno, signal
    from js import Function, process
    from _prepyc_host import fs as host_fs
    del sys.modules['_prepyc_host']
    ignored = {}
    os.getpid = lambda: process.pid
    os.getppid = lambda: process.ppid

    def oserror(e, *names):
        code = getattr(errno, str(getattr(getattr(e, 'js_error', None), 'code', None)), errno.EPERM)
        return OSError(code, os.strerror(code), *names)

    def kill(pid, sig):
        sig = int(sig)
        try:
            process.kill(pid, signal.Signals(sig).name if sig else 0)
        except Exception as e:
            raise oserror(e) from None

    # Emscripten has no hard links (compileall --hardlink-dupes): the host makes them
    def link(src, dst, *, src_dir_fd=None, dst_dir_fd=None, follow_symlinks=True):
        if src_dir_fd is not None or dst_dir_fd is not None:
            raise NotImplementedError('link: dir_fd unavailable on this platform')
        src, dst = os.fsdecode(src), os.fsdecode(dst)
        try:
            host_fs.linkSync(os.path.abspath(src), os.path.abspath(dst))
        except Exception as e:
            raise oserror(e, src, None, dst) from None

    def abort():
        process.kill(process.pid, 'SIGABRT')
        os._exit(134)

    real_signal = signal.signal

    def signal_(signum, handler):
        name = signal.Signals(int(signum)).name
        if handler is signal.SIG_IGN and name not in ignored:
            ignored[name] = Function.new('')
            process.on(name, ignored[name])
        elif handler is not signal.SIG_IGN and name in ignored:
            process.removeListener(name, ignored.pop(name))
        return real_signal(signum, handler)

    os.kill = kill
    os.link = link
    os.abort = abort
    signal.signal = signal_
_install()
del _install, _seen
`;

// POSIX: "FILE/" is ENOTDIR when FILE is not a directory; Emscripten finds
// FILE (compileall's isfile("a.py/") would be true).
function slashMeansDirectory(FS) {
  const lookupPath = FS.lookupPath;
  FS.lookupPath = function (p, opts, ...rest) {
    const r = lookupPath.call(this, p, opts, ...rest);
    if (typeof p === "string" && p.length > 1 && p.endsWith("/") && r.node &&
        !FS.isDir(r.node.mode) && !FS.isLink(r.node.mode))
      throw new FS.ErrnoError(54); // ENOTDIR
    return r;
  };
}

// Node rounds a file time to the millisecond (1.9996 s is 2.000 s), so
// int(os.stat(f).st_mtime), what pyc headers hold, could be a second more
// than natively.  NODEFS's times are made from the nanoseconds instead, as the
// float CPython makes of them (sec + nsec * 1e-9: 1.999999999 s rounds to
// 2.0 there), cut to the millisecond below.
function truncatedTimes(FS) {
  const NODEFS = FS.filesystems.NODEFS;
  const getattr = NODEFS.node_ops.getattr;
  const date = (ns) => {
    let sec = ns / 1000000000n;
    if (ns < 0n && sec * 1000000000n !== ns) sec -= 1n;
    const f = Number(sec) + Number(ns - sec * 1000000000n) * 1e-9;
    return new Date(Math.floor(f * 1000));
  };
  NODEFS.node_ops.getattr = function (node, ...rest) {
    const attr = getattr.call(this, node, ...rest);
    try {
      const st = fs.lstatSync(NODEFS.realPath(node), { bigint: true });
      attr.atime = date(st.atimeNs);
      attr.mtime = date(st.mtimeNs);
      attr.ctime = date(st.ctimeNs);
    } catch (e) {
      // keep Node's
    }
    return attr;
  };
}

let umaskInOpen = false;

// Make FS.open apply the umask to the mode of a file it creates, when
// applyIt() says the runtime does not (the umask is then the Node process's).
function umaskOnCreate(FS, applyIt) {
  const open = FS.open;
  FS.open = function (p, flags, mode, ...rest) {
    if (applyIt() && typeof flags === "number" && flags & 64 /* O_CREAT */ && typeof mode === "number") {
      const mask = process.umask(0);
      process.umask(mask);
      mode &= ~mask;
    }
    return open.call(this, p, flags, mode, ...rest);
  };
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const dir = path.resolve(o.dir);
  const { loadPyodide } = await import(pathToFileURL(path.join(dir, "pyodide.mjs")).href);
  const cwd = process.cwd();
  const executable = o.executable ? path.resolve(cwd, o.executable) : process.argv[1];
  // Lines Python prints while it starts (a bad option, --version) go out
  // as they are; the binary-safe streams replace these after loading.
  const line = (fd) => (s) => fs.writeSync(fd, s + "\n");
  const opts = scanOptions(o.args);
  // Pyodide asks for inspect mode (keep the interpreter after the main
  // program) unless PYTHONINSPECT says otherwise; FIXUP unsets it.
  const startEnv = Object.assign({}, process.env, { PYTHONINSPECT: process.env.PYTHONINSPECT || "" });
  delete startEnv.PYTHONWARNINGS;
  let py;
  try {
    py = await loadPyodide({
      indexURL: dir + "/",
      stdLibURL: o.stdlib || undefined,
      args: opts.args,
      _sysExecutable: executable,
      env: startEnv,
      stdin: () => null,
      stdout: line(1),
      stderr: line(2),
      checkAPIVersion: true,
      async fsInit(FS) {
        mountHost(FS);
        FS.chdir(cwd);
        for (const fd of o.fds) bridgeFd(FS, fd);
        umaskOnCreate(FS, () => umaskInOpen);
        slashMeansDirectory(FS);
        truncatedTimes(FS);
      },
    });
  } catch (e) {
    if (e && e.constructor && e.constructor.name === "ExitStatus") process.exit(e.status);
    throw e;
  }
  const FS = py.FS;
  // Python's umask is the host's.  Older runtimes (314) keep it in the
  // Node process and create files with the mode asked for, ignoring it.
  const hostUmask = process.umask(0);
  process.umask(hostUmask);
  py._module._umask(hostUmask);
  umaskInOpen = !py._module.___syscall_umask;
  py.setStdin(stdioOps(FS, 0));
  py.setStdout(stdioOps(FS, 1));
  py.setStderr(stdioOps(FS, 2));
  py.registerJsModule("_prepyc_host", { fs });
  py.runPython(FIXUP, { globals: py.toPy({
    host_env: Object.keys(process.env),
    prefix: o.prefix ? path.resolve(o.prefix) : null,
    write_bytecode: !opts.noBytecode,
    env_warnings: process.env.PYTHONWARNINGS || "",
    cmd_warnings: opts.warnOptions,
  }) });
  let code;
  try {
    code = py._module._run_main();
  } catch (e) {
    if (e && e.constructor && e.constructor.name === "ExitStatus") process.exit(e.status);
    throw e;
  }
  try {
    if (py._module._Py_FinalizeEx() < 0 && !code) code = 120;
  } catch (e) {
    if (e && e.constructor && e.constructor.name === "ExitStatus") process.exit(e.status);
    throw e;
  }
  process.exit(code || 0);
}

// A native python that overflows its C stack or aborts dies by a signal:
// so does this one (prepyc reports a worker "killed by signal 11").
main().catch((e) => {
  fs.writeSync(2, `python.mjs: ${e && e.stack ? e.stack.split("\n").slice(0, 4).join("\n") : e}\n`);
  const msg = String(e && e.message);
  if (e instanceof RangeError && /call stack/.test(msg)) process.kill(process.pid, "SIGSEGV");
  if (e instanceof WebAssembly.RuntimeError)
    process.kill(process.pid, /unreachable|Aborted/.test(msg) ? "SIGABRT" : "SIGSEGV");
  process.exit(1);
});
