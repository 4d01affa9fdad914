"""The outbound queue of `hikyaku serve`, observed through a tiny SMTP
sink on 127.0.0.1 (the `transport` route): a forward leaves with an SRS
sender, an auto-reply with the null sender; a 451 defers and a retry
delivers; a 550 bounces (RFC 3464) into the hosted sender's mailbox; a
deferred entry survives kill -9; `hikyaku queue list|delete|flush`; an
entry older than queue_lifetime bounces with 5.4.7; a broken STARTTLS
falls back to plaintext. The
bounce to a hosted sender goes to our own MX listener over STARTTLS.

The sink answers by recipient: soft-N@... gets 451 the first N times,
hard@... gets 550, anything else 250."""
import email
import glob
import os
import re
import smtplib
import socket
import ssl
import subprocess
import sys
import threading
import time

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from hkserver import HIKYAKU, Results, Server  # noqa: E402

r = Results()
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE


class Sink:
    def __init__(self, broken_tls=False):
        self.broken_tls = broken_tls  # offers STARTTLS, then answers the handshake with junk
        self.starttls = 0
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.mails = []        # (mail_from, rcpt, data)
        self.tries = {}        # rcpt -> RCPT attempts seen
        self.lock = threading.Lock()
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.session, args=(c,), daemon=True).start()

    def session(self, c):
        f = c.makefile("rb")
        c.sendall(b"220 sink.test ESMTP\r\n")
        mail_from, rcpt = None, None
        try:
            while True:
                line = f.readline()
                if not line:
                    return
                cmd = line.decode("latin-1").rstrip("\r\n")
                up = cmd.upper()
                if up.startswith("EHLO"):
                    tls = b"250-STARTTLS\r\n" if self.broken_tls else b""
                    c.sendall(b"250-sink.test\r\n" + tls + b"250-SIZE 10000000\r\n250-8BITMIME\r\n250 PIPELINING\r\n")
                elif up == "STARTTLS" and self.broken_tls:
                    with self.lock:
                        self.starttls += 1
                    c.sendall(b"220 go ahead\r\n")
                    c.sendall(b"this is not a TLS record\r\n")
                    return
                elif up.startswith("HELO"):
                    c.sendall(b"250 sink.test\r\n")
                elif up.startswith("MAIL FROM:"):
                    mail_from = re.match(r"MAIL FROM:<([^>]*)>", cmd, re.I).group(1)
                    c.sendall(b"250 ok\r\n")
                elif up.startswith("RCPT TO:"):
                    rcpt = re.match(r"RCPT TO:<([^>]*)>", cmd, re.I).group(1)
                    with self.lock:
                        n = self.tries[rcpt] = self.tries.get(rcpt, 0) + 1
                    m = re.match(r"soft-(\d+)@", rcpt)
                    if m and n <= int(m.group(1)):
                        c.sendall(b"451 4.3.0 try again later\r\n")
                    elif rcpt.startswith("hard@"):
                        c.sendall(b"550 5.1.1 no such user here\r\n")
                    else:
                        c.sendall(b"250 ok\r\n")
                elif up == "DATA":
                    c.sendall(b"354 go\r\n")
                    data = b""
                    while True:
                        l2 = f.readline()
                        if not l2 or l2 == b".\r\n":
                            break
                        data += l2[1:] if l2.startswith(b".") else l2
                    with self.lock:
                        self.mails.append((mail_from, rcpt, data))
                    c.sendall(b"250 2.0.0 queued\r\n")
                elif up == "QUIT":
                    c.sendall(b"221 bye\r\n")
                    return
                elif up == "RSET" or up == "NOOP":
                    c.sendall(b"250 ok\r\n")
                else:
                    c.sendall(b"500 what\r\n")
        except OSError:
            pass
        finally:
            c.close()

    def to(self, rcpt):
        with self.lock:
            return [m for m in self.mails if m[1] == rcpt]


def wait_for(fn, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.1)
    return fn()


sink = Sink()
CONF = ("transport 127.0.0.1:%d\nqueue_interval 1\nqueue_retry 2\nqueue_retry_max 4\nqueue_timeout 10\n" % sink.port)
srv = Server(extra_config=CONF)


def admin(*args, stdin=None, check=True):
    p = subprocess.run([HIKYAKU] + list(args) + ["--state", srv.state], input=stdin, capture_output=True, text=True)
    if check and p.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(args), p.stderr))
    return p


admin("domain", "add", "example.jp")
admin("user", "add", "taro@example.jp", "--stdin", stdin="correct horse battery\n")
admin("user", "add", "hanako@example.jp", "--stdin", stdin="another good password\n")
maildir = os.path.join(srv.state, "domains", "example.jp", "users")


def inbox(user):
    d = os.path.join(maildir, user, "Maildir")
    return sorted(glob.glob(os.path.join(d, "new", "*")) + glob.glob(os.path.join(d, "cur", "*")))


os.makedirs(os.path.join(maildir, "taro"), exist_ok=True)
with open(os.path.join(maildir, "taro", "personal.hk"), "w") as f:
    f.write('''on deliver {
    rule "fwd" when subject contains "forward me" { forward "taro.mobile@docomo.example" }
    rule "away" when subject contains "away" { reply subject "away" body "back on Monday" every 7 days }
}
''')

MSG = "From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@test>\r\n\r\nbody line\r\n.starts with a dot\r\n"


cur = [srv]  # the running server (a new one after the restart)


def submit(rcpts, subject, mid):
    s = smtplib.SMTP("127.0.0.1", cur[0].ports["submission"], timeout=30)
    s.ehlo("c.test")
    s.starttls(context=ctx)
    s.ehlo("c.test")
    s.login("hanako@example.jp", "another good password")
    s.sendmail("hanako@example.jp", rcpts, MSG % ("hanako@example.jp", ", ".join(rcpts), subject, mid))
    s.quit()


def qlist():
    return admin("queue", "list").stdout


srv.start()
try:
    mx = srv.ports["mx"]
    c = smtplib.SMTP("127.0.0.1", mx, timeout=30)
    c.sendmail("friend@example.org", ["taro@example.jp"], MSG % ("friend@example.org", "taro@example.jp", "please forward me", "f1"))
    got = wait_for(lambda: sink.to("taro.mobile@docomo.example"))
    r.check("forward delivered to the target through the queue", len(got) == 1, sink.mails)
    frm = got[0][0] if got else ""
    r.check("forward leaves with an SRS0 envelope sender for the original sender",
            re.match(r"^SRS0=[A-Z2-7]{6}=[A-Z2-7]{2}=example\.org=friend@mail\.e2e\.test$", frm) is not None, frm)
    r.check("forwarded data is dot-stuffed correctly and complete",
            got and b"\r\n.starts with a dot\r\n" in got[0][2] and b"Subject: please forward me" in got[0][2], got[0][2][-200:] if got else "")
    r.check("delivered forward leaves the queue", wait_for(lambda: "0 entries" in qlist(), 5), qlist())
    key = os.path.join(srv.state, "keys", "srs.key")
    r.check("SRS key created 0600", os.path.exists(key) and (os.stat(key).st_mode & 0o777) == 0o600)

    c.sendmail("pal@example.org", ["taro@example.jp"], MSG % ("pal@example.org", "taro@example.jp", "are you away?", "a1"))
    got = wait_for(lambda: sink.to("pal@example.org"))
    r.check("auto-reply delivered with the null envelope sender", len(got) == 1 and got[0][0] == "", got)
    r.check("auto-reply carries Auto-Submitted: auto-replied", got and b"Auto-Submitted: auto-replied" in got[0][2], got[0][2][:500] if got else "")
    c.quit()

    # 451 once: deferred, then the retry (queue_retry 2 s) delivers
    submit(["soft-1@remote.example"], "soft once", "s1")
    r.check("a 451 defers the entry (queue list shows attempts and the error)",
            wait_for(lambda: "451 4.3.0" in qlist() and "attempts 1" in qlist()), qlist())
    got = wait_for(lambda: sink.to("soft-1@remote.example"))
    r.check("the retry after the back-off delivers", len(got) == 1 and sink.tries.get("soft-1@remote.example") == 2,
            (got, sink.tries))
    r.check("the delivered entry and its state file are gone", wait_for(lambda: "soft-1@" not in qlist())
            and glob.glob(os.path.join(srv.state, "queue", "deferred", "*")) == [],
            glob.glob(os.path.join(srv.state, "queue", "*", "*")))

    # 550: a DSN into hanako's INBOX
    before = len(inbox("hanako"))
    submit(["hard@remote.example"], "doomed", "h1")
    files = wait_for(lambda: inbox("hanako")[before:])
    r.check("a 550 bounces into the hosted sender's mailbox", len(files) == 1, files)
    raw = open(files[0], "rb").read() if files else b""
    m = email.message_from_bytes(raw)
    r.check("the bounce went to our own MX over opportunistic STARTTLS", b"with ESMTPS" in raw, raw[:400])
    r.check("the bounce comes from the null sender", raw.startswith(b"Return-Path: <>"), raw[:200])
    r.check("the bounce is multipart/report; report-type=delivery-status",
            m.get_content_type() == "multipart/report" and m.get_param("report-type") == "delivery-status", m.get("Content-Type"))
    parts = [p.get_content_type() for p in m.get_payload()] if m.is_multipart() else []
    r.check("parts: text/plain, message/delivery-status, text/rfc822-headers",
            parts == ["text/plain", "message/delivery-status", "text/rfc822-headers"], parts)
    r.check("delivery-status fields", all(x in raw for x in (
        b"Reporting-MTA: dns; mail.e2e.test", b"Final-Recipient: rfc822; hard@remote.example", b"Action: failed",
        b"Status: 5.1.1", b"Diagnostic-Code: smtp; 550 5.1.1 no such user here")), raw.decode("latin-1")[-1500:])
    r.check("original headers included", b"Subject: doomed" in raw and b"Message-ID: <h1@test>" in raw)
    r.check("the bounce is Auto-Submitted", m.get("Auto-Submitted") == "auto-replied", m.get("Auto-Submitted"))
    r.check("no bounce of the bounce, nothing left in the queue", wait_for(lambda: "0 entries" in qlist(), 5), qlist())

    # a deferred entry survives kill -9 and is delivered after the restart
    submit(["soft-2@remote.example"], "survivor", "k1")
    r.check("entry deferred before the crash", wait_for(lambda: "soft-2@" in qlist() and "deferred" in qlist()), qlist())
    srv.kill9()
    srv2 = Server(extra_config=CONF, state=srv.state)
    srv2.start()
    cur[0] = srv2
    try:
        got = wait_for(lambda: sink.to("soft-2@remote.example"), 30)
        r.check("after kill -9 and restart the deferred entry is delivered", len(got) == 1 and sink.tries["soft-2@remote.example"] == 3,
                (got, sink.tries))

        # list, delete, flush
        submit(["soft-999@remote.example"], "stuck", "d1")
        out = wait_for(lambda: re.search(r"deferred .*soft-999@", qlist()) and qlist())
        line = [ln for ln in out.splitlines() if "soft-999@" in ln]
        r.check("queue list shows the deferred entry: kind, sender, recipient, attempts, next, error",
                line and " deferred " in line[0] and " relay " in line[0] and "<hanako@example.jp> -> <soft-999@remote.example>" in line[0]
                and "attempts 1" in line[0] and " next 20" in line[0] and "error: 451" in line[0], out)
        n0 = sink.tries.get("soft-999@remote.example", 0)
        out = admin("queue", "flush").stdout
        r.check("queue flush retries deferred entries now", wait_for(lambda: sink.tries.get("soft-999@remote.example", 0) > n0, 5),
                (out, sink.tries))
        qid = line[0].split()[0] if line else "x"
        p = admin("queue", "delete", qid, check=False)
        r.check("queue delete removes the entry", p.returncode == 0 and wait_for(lambda: "soft-999@" not in qlist(), 3), (p.stdout, p.stderr, qlist()))
        p = admin("queue", "delete", qid, check=False)
        r.check("deleting it again: exit 1", p.returncode == 1, p.returncode)
        r.check("server still running", srv2.proc.poll() is None, srv2.logtext()[-2000:])
        r.check("server stops cleanly", srv2.stop() == 0, srv2.logtext()[-2000:])
    finally:
        srv2.stop()

    # expiry: a recipient that only ever answers 451 is bounced once
    # queue_lifetime has passed, with the RFC 3463 "delivery time expired"
    srv3 = Server(extra_config=CONF + "queue_lifetime 3\n", state=srv.state)
    srv3.start()
    cur[0] = srv3
    try:
        before = len(inbox("hanako"))
        submit(["soft-99999@remote.example"], "never lands", "e1")
        files = wait_for(lambda: inbox("hanako")[before:], 30)
        raw = open(files[0], "rb").read() if files else b""
        r.check("after queue_lifetime a deferred entry bounces into the sender's mailbox", len(files) == 1, files)
        r.check("the expiry bounce says 5.4.7, action failed, and keeps the last remote error", all(x in raw for x in (
            b"Final-Recipient: rfc822; soft-99999@remote.example", b"Action: failed", b"Status: 5.4.7",
            b"delivery time expired", b"451 4.3.0 try again later")), raw.decode("latin-1")[-1500:])
        r.check("the remote was tried more than once before expiry", sink.tries.get("soft-99999@remote.example", 0) >= 2, sink.tries)
        r.check("nothing left in the queue after the expiry bounce", wait_for(lambda: "0 entries" in qlist(), 5), qlist())
        r.check("expiry is logged", "(expired)" in srv3.logtext(), srv3.logtext()[-2000:])
        r.check("server stops cleanly after the expiry", srv3.stop() == 0, srv3.logtext()[-2000:])
    finally:
        srv3.stop()

    # a server whose STARTTLS is broken still gets the mail, in plaintext,
    # on an immediate second connection (opportunistic TLS, RFC 7435)
    bad = Sink(broken_tls=True)
    srv4 = Server(extra_config=CONF.replace("127.0.0.1:%d" % sink.port, "127.0.0.1:%d" % bad.port), state=srv.state)
    srv4.start()
    cur[0] = srv4
    try:
        submit(["plain@remote.example"], "tls is broken there", "t1")
        got = wait_for(lambda: bad.to("plain@remote.example"))
        r.check("a failed STARTTLS handshake is retried at once without TLS and delivers",
                len(got) == 1 and bad.starttls == 1 and bad.tries.get("plain@remote.example") == 1, (got, bad.starttls, bad.tries))
        r.check("the fallback is logged", "trying again without TLS" in srv4.logtext(), srv4.logtext()[-2000:])
        r.check("nothing left in the queue after the plaintext delivery", wait_for(lambda: "0 entries" in qlist(), 5), qlist())
    finally:
        srv4.stop()
finally:
    if r.failed:
        print(srv.logtext()[-3000:])
    srv.stop()
r.done()
