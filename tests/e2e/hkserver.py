"""Starts and stops a real `hikyaku serve` for end-to-end tests.

Each test run gets its own state directory and free ports on 127.0.0.1;
the server runs with the tests' configuration file and is stopped (and
its log shown on failure) when the test ends. Run as root (CI) with no
`user` in the configuration, the server gets --allow-root: these tests
are about mail, test_privdrop.py about giving up root.
"""
import os
import socket
import subprocess
import sys
import tempfile
import time

HIKYAKU = os.environ.get("HIKYAKU", "build/hikyaku")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    def __init__(self, extra_config="", state=None):
        self.dir = tempfile.mkdtemp(prefix="hk-e2e-")
        self.state = state or os.path.join(self.dir, "var")
        self.ports = {k: free_port() for k in ("mx", "submission", "smtps", "pop3", "pop3s", "imap", "imaps")}
        self.conf = os.path.join(self.dir, "hikyaku.conf")
        with open(self.conf, "w") as f:
            f.write("hostname mail.e2e.test\n")
            f.write("state_dir %s\n" % self.state)
            for k, p in self.ports.items():
                f.write("listen %s 127.0.0.1:%d\n" % (k, p))
            f.write(extra_config)
        self.allow_root = os.geteuid() == 0 and not any(
            line.split()[:1] == ["user"] for line in extra_config.splitlines())
        self.log = open(os.path.join(self.dir, "serve.log"), "w+")
        self.proc = None

    def start(self):
        argv = [HIKYAKU, "serve", "--config", self.conf] + (["--allow-root"] if self.allow_root else [])
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=self.log)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("hikyaku serve exited: " + self.logtext())
            try:
                socket.create_connection(("127.0.0.1", self.ports["mx"]), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("hikyaku serve did not start: " + self.logtext())

    def logtext(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode if self.proc else None

    def kill9(self):
        self.proc.kill()
        self.proc.wait()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class Results:
    """PASS/FAIL lines and the closing 'N passed, N failed' line."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, name, ok, detail=""):
        if ok:
            self.passed += 1
            print("PASS: " + name)
        else:
            self.failed += 1
            print("FAIL: " + name + (": " + str(detail) if detail else ""))
        sys.stdout.flush()

    def done(self):
        print("%d passed, %d failed" % (self.passed, self.failed))
        sys.exit(1 if self.failed else 0)


def raw(port, data, wait=0.3, tls_after=None):
    """Sends bytes on a plain connection and returns everything received."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.recv(1024)
    s.sendall(data)
    time.sleep(wait)
    s.settimeout(1)
    out = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
    except socket.timeout:
        pass
    s.close()
    return out
