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
//   (atexit, flushing sys.stdout) before Node exits;
// - --stdlib ZIP replaces python_stdlib.zip, which holds only sources: the
//   installer makes one holding unchecked hash-based pycs too, compiled by
//   this very runtime, so that the standard library is not compiled again
//   at every start (2.7 s to 1 s a start);
// - --prefix DIR becomes sys.prefix (and base_prefix, exec_prefix...): the
//   installer extracts the standard library's sources into DIR/lib/python3.X,
//   so sysconfig's "stdlib" is a directory the host sees at the same path
//   (Pyodide's own /lib/python3.X holds no sources).  Modules are still
//   imported from the zip.
//
// What Pyodide cannot do, so the tests skip it (support.py, pyodide_lacks):
// - no processes: no fork, no subprocess, no multiprocessing (compileall -j
//   falls back to serial compiling), os.getpid() is a constant;
// - no signals as a real process: os.kill() on itself, signal handlers and
//   alarms do nothing useful; the Node process itself is killed normally
//   (SIGKILL, SIGTERM), which is how prepyc stops a worker;
// - no threads;
// - file permissions: Emscripten checks mode bits itself and does not know
//   that root may write to a read-only file; there are no users or groups
//   (os.getuid() is 0), and chmod/utime go to the host through NODEFS;
// - a 32-bit build: sys.maxsize and str hashes differ from a 64-bit build.
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

// Whether the options before the program (-c, -m, a script) include -B.
function noBytecode(args) {
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--check-hash-based-pycs") {
      i++;
      continue;
    }
    if (a === "--" || a === "-" || !a.startsWith("-") || a.startsWith("--")) return false;
    for (let j = 1; j < a.length; j++) {
      const c = a[j];
      if (c === "B") return true;
      if (c === "c" || c === "m") return false;
      if (VALUE_OPTS.has(c)) {
        if (j === a.length - 1) i++;
        break;
      }
    }
  }
  return false;
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
if prefix:
    sys.prefix = sys.base_prefix = sys.exec_prefix = sys.base_exec_prefix = prefix

# Processes and signals: the Node process stands for the Python process.
# Its pid is the real one; a signal sent to it, or os.abort(), ends it the
# way it would end a native python (a SIGSEGV kills it, status 139 in a
# shell); SIG_IGN for a signal makes Node ignore it (prepyc's workers ignore
# SIGINT), SIG_DFL restores Node's default.  A Python handler is never called.
def _install():
    import errno, signal
    from js import Function, process
    ignored = {}
    os.getpid = lambda: process.pid
    os.getppid = lambda: process.ppid

    def kill(pid, sig):
        sig = int(sig)
        try:
            process.kill(pid, signal.Signals(sig).name if sig else 0)
        except Exception as e:
            code = getattr(getattr(e, 'js_error', None), 'code', None) or 'EPERM'
            raise OSError(getattr(errno, code, errno.EPERM), os.strerror(getattr(errno, code, errno.EPERM)))

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
    os.abort = abort
    signal.signal = signal_
_install()
del _install, _seen
`;

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
  let py;
  try {
    py = await loadPyodide({
      indexURL: dir + "/",
      stdLibURL: o.stdlib || undefined,
      args: o.args,
      _sysExecutable: executable,
      // Pyodide asks for inspect mode (keep the interpreter after the main
      // program) unless PYTHONINSPECT says otherwise; unset below.
      env: Object.assign({}, process.env, { PYTHONINSPECT: process.env.PYTHONINSPECT || "" }),
      stdin: () => null,
      stdout: line(1),
      stderr: line(2),
      checkAPIVersion: true,
      async fsInit(FS) {
        mountHost(FS);
        FS.chdir(cwd);
        for (const fd of o.fds) bridgeFd(FS, fd);
        umaskOnCreate(FS, () => umaskInOpen);
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
  py.runPython(FIXUP, { globals: py.toPy({ host_env: Object.keys(process.env), prefix: o.prefix ? path.resolve(o.prefix) : null, write_bytecode: !noBytecode(o.args) }) });
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

main().catch((e) => {
  process.stderr.write(`python.mjs: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
