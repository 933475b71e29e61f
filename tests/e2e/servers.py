"""Cache servers for the remote-cache tests and the bench: real ones
(redis-server, nginx with WebDAV PUT) started on 127.0.0.1 with an
ephemeral port in a temporary directory, as the current user, and stopped
by the caller; and misbehaving ones in a thread of this process (one that
accepts and never answers, one that answers HTTP 500, one that answers
garbage).  Standard library only.

A Debian nginx installed as a service does not matter: ours runs from its
own prefix and configuration (-p PREFIX -c CONF -e LOG), on its own port.
"""

import os
import shutil
import signal
import socket
import subprocess
import threading
import time


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _wait_port(port, proc, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            socket.create_connection(('127.0.0.1', port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.02)
    return False


class Server(object):
    """A child process (in a session of its own, with its children: nginx's
    workers) serving on 127.0.0.1:port; stop() kills them all."""
    proc = None

    def stop(self):
        if self.proc:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
            self.proc.wait()
        self.proc = None


def redis_binary():
    return shutil.which('redis-server') or (
        '/usr/bin/redis-server' if os.access('/usr/bin/redis-server', os.X_OK) else None)


def nginx_binary():
    for p in (shutil.which('nginx'), '/usr/sbin/nginx'):
        if p and os.access(p, os.X_OK):
            return p
    return None


class Redis(Server):
    """redis-server with no persistence; url is redis://127.0.0.1:PORT."""

    def __init__(self, tmp):
        self.port = free_port()
        self.dir = os.path.join(tmp, 'redis-%d' % self.port)
        os.makedirs(self.dir)
        self.proc = subprocess.Popen(
            [redis_binary(), '--port', str(self.port), '--bind', '127.0.0.1', '--save', '',
             '--appendonly', 'no', '--daemonize', 'no', '--dir', self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        if not _wait_port(self.port, self.proc):
            self.stop()
            raise OSError('redis-server did not start')
        self.url = 'redis://127.0.0.1:%d' % self.port

    def command(self, *args):
        """One command (RESP); the decoded reply (bytes, int, list, None)."""
        s = socket.create_connection(('127.0.0.1', self.port), timeout=10)
        try:
            out = b'*%d\r\n' % len(args)
            for a in args:
                a = a if isinstance(a, bytes) else str(a).encode()
                out += b'$%d\r\n%s\r\n' % (len(a), a)
            s.sendall(out)
            f = s.makefile('rb')
            return _resp(f)
        finally:
            s.close()

    def keys(self):
        return sorted(self.command('KEYS', 'prepyc:*') or [])


def _resp(f):
    line = f.readline().rstrip(b'\r\n')
    kind, rest = line[:1], line[1:]
    if kind == b'+':
        return rest
    if kind == b'-':
        raise OSError(rest.decode())
    if kind == b':':
        return int(rest)
    if kind == b'$':
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)
        return data[:-2]
    if kind == b'*':
        n = int(rest)
        return None if n < 0 else [_resp(f) for _ in range(n)]
    raise OSError('bad reply %r' % line)


NGINX_CONF = """
daemon off;
worker_processes 1;
%(user)s
pid %(prefix)s/nginx.pid;
error_log %(prefix)s/error.log;
events { worker_connections 1024; }
http {
    access_log %(prefix)s/access.log;
    client_body_temp_path %(prefix)s/tmp/body;
    proxy_temp_path %(prefix)s/tmp/proxy;
    fastcgi_temp_path %(prefix)s/tmp/fastcgi;
    uwsgi_temp_path %(prefix)s/tmp/uwsgi;
    scgi_temp_path %(prefix)s/tmp/scgi;
    client_max_body_size 0;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:%(port)d;
        root %(prefix)s/data;
        location /cache/ {
            dav_methods PUT;
            create_full_put_path on;
            dav_access user:rw;
        }
    }
}
"""


class Nginx(Server):
    """nginx serving PREFIX/data with WebDAV PUT; url is http://127.0.0.1:PORT/cache."""

    def __init__(self, tmp):
        self.port = free_port()
        self.prefix = os.path.join(tmp, 'nginx-%d' % self.port)
        for d in ('tmp', 'data/cache'):
            os.makedirs(os.path.join(self.prefix, d))
        user = ''
        if os.geteuid() == 0:  # workers would otherwise drop to nobody
            import pwd
            user = 'user %s;' % pwd.getpwuid(0).pw_name
        conf = os.path.join(self.prefix, 'nginx.conf')
        with open(conf, 'w') as f:
            f.write(NGINX_CONF % {'prefix': self.prefix, 'port': self.port, 'user': user})
        self.proc = subprocess.Popen(
            [nginx_binary(), '-p', self.prefix, '-c', conf, '-e', self.prefix + '/error.log'],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        if not _wait_port(self.port, self.proc):
            self.stop()
            raise OSError('nginx did not start')
        self.url = 'http://127.0.0.1:%d/cache' % self.port
        self.data = os.path.join(self.prefix, 'data', 'cache')

    def entries(self):
        out = []
        for dirpath, dirnames, filenames in os.walk(self.data):
            out.extend(os.path.join(dirpath, n) for n in filenames)
        return sorted(out)

    def requests(self, method):
        try:
            with open(os.path.join(self.prefix, 'access.log')) as f:
                return sum(1 for line in f if '"%s ' % method in line)
        except OSError:
            return 0


class Misbehaving(object):
    """A TCP server in a thread: mode 'silent' accepts and never answers,
    '500' answers every request HTTP 500, 'garbage' answers bytes that are
    neither HTTP nor Redis.  url_http / url_redis point at it."""

    def __init__(self, mode):
        self.mode = mode
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.url_http = 'http://127.0.0.1:%d/cache' % self.port
        self.url_redis = 'redis://127.0.0.1:%d' % self.port
        self.held = []
        self.accepted = 0
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            if self.mode == 'silent':
                self.held.append(conn)   # never read, never answered
                continue
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn):
        conn.settimeout(5)
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                if self.mode == '500':
                    body = b'oops'
                    conn.sendall(b'HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n'
                                 b'Connection: keep-alive\r\n\r\n' + body)
                else:
                    conn.sendall(b'\x00\x01garbage\xff\xfe not a protocol at all\r\n' * 4)
                    break
        except OSError:
            pass
        finally:
            conn.close()

    def stop(self):
        self.stopping = True
        try:
            self.sock.close()
        except OSError:
            pass
        for c in self.held:
            c.close()
