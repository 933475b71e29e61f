# prepyc worker: compiles Python sources sent by the prepyc core, in the
# target interpreter itself, and sends back the marshalled code objects.
#
# Embedded into the prepyc binary at build time and run as
#     python -S -s -B -c <this file>
# with the request pipe on fd 3 and the response pipe on fd 4.  The frame
# grammar is in src/python/proto.h.  The worker only compiles: it never executes
# the code it compiles, never reads or writes files, and exits at the end
# of its input.  It must run on CPython 3.6-3.14 and PyPy 3.
import marshal
import os
import signal
import sys
import time
import warnings

PROTO_VERSION = 2
REQ_FD = 3
RESP_FD = 4
OUT_FD = 2
# Ends what the interpreter printed (fd 1 and 2, one pipe) while compiling a
# file; written before the file's reply (src/python/proto.h).
OUTPUT_MARK = b"\0prepyc:end-of-output\0"


def read_exact(n):
    chunks = []
    while n:
        chunk = os.read(REQ_FD, n if n < 1048576 else 1048576)
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def send(*parts):
    body = b"".join(parts)
    data = memoryview(len(body).to_bytes(4, "little") + body)
    while data:
        n = os.write(RESP_FD, data)
        data = data[n:]


def text(s):
    return s.encode("utf-8", "backslashreplace")


def describe(exc, dfile):
    # The message py_compile.PyCompileError would carry.
    if type(exc) is SyntaxError:
        import traceback
        msg = "".join(traceback.format_exception_only(type(exc), exc))
        return msg.replace('File "<string>"', 'File "%s"' % dfile)
    return "Sorry: %s: %s" % (type(exc).__name__, exc)


def source_line(source, lineno):
    # The line `lineno` of the source, as linecache would show it from the
    # file (the core decides whether it is shown: when the file exists).
    if not lineno:
        return ""
    try:
        import io
        import tokenize
        encoding = tokenize.detect_encoding(io.BytesIO(source).readline)[0]
        return source.decode(encoding, "replace").splitlines()[lineno - 1]
    except Exception:
        return ""


def part(s):
    b = text(s)
    return len(b).to_bytes(4, "little") + b


def warning_body(w, dfile, source):
    # formatwarning()'s parts (src/python/proto.h): flags, filename, lineno,
    # category, message, then the stripped line.
    at_dfile = w.filename == dfile
    line = source_line(source, w.lineno) if at_dfile else ""
    flags = (1 if at_dfile else 0) | (2 if line else 0)
    return (bytes([flags]) + part("%s" % (w.filename,)) + part("%s" % (w.lineno,)) +
            part(w.category.__name__) + part("%s" % (w.message,)) +
            text(line.strip() if line else ""))


def compile_one(ident, optimize, dfile, source):
    idb = ident.to_bytes(4, "little")
    with warnings.catch_warnings(record=True) as caught:
        try:
            code = compile(source, dfile, "exec", dont_inherit=True,
                           optimize=optimize)
            data = marshal.dumps(code)
            code = None
        except Exception as exc:  # what py_compile catches
            kind = text(type(exc).__name__)[:255]
            message = text(describe(exc, dfile))
            data = None
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os.write(OUT_FD, OUTPUT_MARK)
    for w in caught:
        send(b"W", idb, warning_body(w, dfile, source))
    if data is None:
        send(b"E", idb, bytes([len(kind)]), kind, message)
    else:
        send(b"K", idb, data)


def test_fault(dfile):
    # Test hook, for prepyc's own robustness tests only: PREPYC_TEST_WORKER_FAULT
    # is "KIND:NAME[:MARKER]"; a worker compiling a file whose dfile ends in NAME
    # crashes (KIND crash: SIGSEGV; abort: SIGABRT), exits (exit), hangs (hang)
    # writes garbage (garbage), or prints to its stdout and stderr as the
    # interpreter's own C-level messages do, then compiles (print).  With MARKER (a path), only while MARKER does
    # not exist, which the fault creates: once.  "nostart:" exits before hello.
    spec = os.environ.get("PREPYC_TEST_WORKER_FAULT")
    if not spec:
        return
    parts = spec.split(":")
    if len(parts) < 2 or not dfile.endswith(parts[1]):
        return
    if len(parts) > 2:
        if os.path.exists(parts[2]):
            return
        open(parts[2], "w").close()
    if parts[0] == "crash":
        os.kill(os.getpid(), signal.SIGSEGV)
    elif parts[0] == "abort":
        os.abort()
    elif parts[0] == "exit":
        os._exit(3)
    elif parts[0] == "hang":
        while True:
            time.sleep(60)
    elif parts[0] == "print":
        os.write(2, b"worker-noise " * 400)
        os.write(1, b"worker-stdout\n")
        os.write(2, b"end-of-noise\n")
    elif parts[0] == "garbage":
        os.write(RESP_FD, b"\xff" * 64)
        time.sleep(60)


def main():
    testing = "PREPYC_TEST_WORKER_FAULT" in os.environ
    if testing and os.environ["PREPYC_TEST_WORKER_FAULT"].startswith("nostart:"):
        os._exit(5)  # test hook (test_fault): a target that cannot run workers
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    send(b"H", PROTO_VERSION.to_bytes(4, "little"))
    while True:
        head = read_exact(4)
        if head is None:
            return
        payload = read_exact(int.from_bytes(head, "little"))
        if payload is None or payload[:1] != b"C":
            return
        ident = int.from_bytes(payload[1:5], "little")
        optimize = int.from_bytes(payload[5:9], "little", signed=True)
        dlen = int.from_bytes(payload[9:13], "little")
        dfile = os.fsdecode(payload[13:13 + dlen])
        if testing:
            test_fault(dfile)
        compile_one(ident, optimize, dfile, payload[13 + dlen:])


try:
    main()
except BrokenPipeError:
    # the core went away (killed, or done with us): nothing left to say
    os._exit(0)
