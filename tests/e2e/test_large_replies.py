"""Replies just over 16 KiB are not held by Nagle: `hikyaku serve` sets
TCP_NODELAY on client sockets (servers/core/conn.c). libevent writes at
most 16 KiB per write, so such a reply leaves as 16 KiB plus a small rest;
with Nagle the rest waited for the client's delayed ACK, 40 ms per reply
(found by `make bench-imap`: 36 such RETRs cost 1.4 s of a 3 s session).
Real clients (poplib, imaplib) against a real server: 30 messages of
~17 KiB, retrieved one after another; the median time per reply must be
far below 40 ms (it is about 1 ms), and the bytes must be the stored ones."""
import imaplib
import os
import poplib
import smtplib
import statistics
import subprocess
import sys
import time

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from hkserver import HIKYAKU, Results, Server  # noqa: E402

r = Results()
srv = Server(extra_config="allow_plaintext_auth yes\n")
PW = "correct horse battery"
N = 30
LIMIT_S = 0.020  # median per reply; a Nagle stall is >= 40 ms


def admin(*args, stdin=None):
    p = subprocess.run([HIKYAKU] + list(args) + ["--state", srv.state], input=stdin, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(args), p.stderr))


admin("domain", "add", "example.jp")
admin("user", "add", "taro@example.jp", "--stdin", stdin=PW + "\n")

with srv:
    # 16,900-byte bodies: with the header and CRLF the replies are 17-18 KiB
    s = smtplib.SMTP("127.0.0.1", srv.ports["mx"], timeout=30)
    s.ehlo("client.test")
    bodies = []
    for i in range(N):
        body = "".join("%04d %s\r\n" % (k, chr(97 + (i + k) % 26) * 60) for k in range(260))
        bodies.append(body)
        msg = "From: a@example.org\r\nTo: taro@example.jp\r\nSubject: large %d\r\n\r\n%s" % (i, body)
        s.sendmail("a@example.org", ["taro@example.jp"], msg.encode())
    s.quit()
    md = os.path.join(srv.state, "domains", "example.jp", "users", "taro", "Maildir")
    for _ in range(100):
        if len(os.listdir(os.path.join(md, "new"))) + len(os.listdir(os.path.join(md, "cur"))) >= N:
            break
        time.sleep(0.1)

    p = poplib.POP3("127.0.0.1", srv.ports["pop3"], timeout=30)
    p.user("taro@example.jp")
    p.pass_(PW)
    count, _ = p.stat()
    r.check("POP3: %d large messages" % N, count == N, count)
    times, sizes, ok = [], [], True
    for i in range(1, count + 1):
        t = time.monotonic()
        _, lines, octets = p.retr(i)
        times.append(time.monotonic() - t)
        sizes.append(octets)
        # the body after the empty line, byte for byte (CRLF lines)
        subj = [ln for ln in lines if ln.startswith(b"Subject: large ")]
        body = b"\r\n".join(lines[lines.index(b"") + 1:]) + b"\r\n"
        ok = ok and len(subj) == 1 and body == bodies[int(subj[0].split()[-1])].encode()
    p.quit()
    r.check("POP3: every reply is over 16 KiB", min(sizes) > 16384, min(sizes))
    r.check("POP3: every reply is its message, byte for byte", ok)
    med = statistics.median(times)
    r.check("POP3: median RETR %.1f ms (< %d ms: no delayed-ACK stall)" % (med * 1000, LIMIT_S * 1000),
            med < LIMIT_S, ["%.1f" % (x * 1000) for x in times])

    m = imaplib.IMAP4("127.0.0.1", srv.ports["imap"], timeout=30)
    m.login("taro@example.jp", PW)
    typ, data = m.select("INBOX")
    n = int(data[0])
    times, lens = [], []
    for i in range(1, n + 1):
        t = time.monotonic()
        typ, d = m.fetch(str(i), "BODY.PEEK[TEXT]")
        times.append(time.monotonic() - t)
        lens.append(len(d[0][1]) if d and isinstance(d[0], tuple) else 0)
    m.logout()
    r.check("IMAP: %d messages, every BODY[TEXT] over 16 KiB" % N, n == N and min(lens) > 16384, (n, min(lens or [0])))
    med = statistics.median(times)
    r.check("IMAP: median FETCH %.1f ms (< %d ms: no delayed-ACK stall)" % (med * 1000, LIMIT_S * 1000),
            med < LIMIT_S, ["%.1f" % (x * 1000) for x in times])

r.done()
