"""SMTP protocol behaviour of `hikyaku serve` with real clients (smtplib,
raw sockets, TLS): listeners, EHLO features, STARTTLS (and the discarding
of plaintext pipelined after it), AUTH only after TLS on submission,
relay refused everywhere, limits and the error budget."""
import os
import smtplib
import socket
import ssl
import sys
import time

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from hkserver import Server, Results, raw  # noqa: E402

r = Results()
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE

with Server() as srv:
    mx, sub, smtps = srv.ports["mx"], srv.ports["submission"], srv.ports["smtps"]

    c = smtplib.SMTP("127.0.0.1", mx, timeout=10)
    code, msg = c.ehlo("client.e2e.test")
    feats = set(c.esmtp_features)
    r.check("MX greets and answers EHLO", code == 250, msg)
    for f in ("size", "pipelining", "8bitmime", "enhancedstatuscodes", "smtputf8", "starttls"):
        r.check("MX offers " + f.upper(), f in feats, feats)
    r.check("MX offers no AUTH before TLS", "auth" not in feats, feats)
    c.starttls(context=ctx)
    c.ehlo("client.e2e.test")
    r.check("STARTTLS works on MX", c.sock.version() is not None, c.sock.version())
    r.check("MX offers no AUTH (submission only)", "auth" not in c.esmtp_features, c.esmtp_features)
    code, msg = c.mail("someone@outside.example")
    r.check("MAIL FROM accepted on MX", code == 250, msg)
    code, msg = c.rcpt("victim@elsewhere.example")
    r.check("relay to a foreign domain refused on MX (even over TLS from loopback)", code in (550, 554) and b"5.7.1" in msg, (code, msg))
    c.quit()

    c = smtplib.SMTP("127.0.0.1", sub, timeout=10)
    c.ehlo("client.e2e.test")
    r.check("submission offers no AUTH before TLS", "auth" not in c.esmtp_features, c.esmtp_features)
    code, msg = c.docmd("AUTH", "PLAIN AGZvbwBiYXI=")
    r.check("AUTH before STARTTLS refused on submission", code == 503 and b"STARTTLS" in msg, (code, msg))
    code, msg = c.mail("a@b.example")
    r.check("MAIL without AUTH refused on submission", code == 530, (code, msg))
    c.starttls(context=ctx)
    c.ehlo("client.e2e.test")
    r.check("submission offers AUTH after TLS", "auth" in c.esmtp_features, c.esmtp_features)
    c.quit()

    c = smtplib.SMTP_SSL("127.0.0.1", smtps, timeout=10, context=ctx)
    code, _ = c.ehlo("client.e2e.test")
    r.check("SMTPS: implicit TLS then EHLO", code == 250 and c.sock.version() is not None)
    r.check("SMTPS offers AUTH", "auth" in c.esmtp_features, c.esmtp_features)
    code, msg = c.mail("a@b.example")
    r.check("SMTPS: MAIL without AUTH refused", code == 530, (code, msg))
    c.quit()

    # STARTTLS command injection: what the client pipelines in plaintext
    # after STARTTLS must not be executed inside the TLS session.
    s = socket.create_connection(("127.0.0.1", mx), timeout=5)
    s.recv(1024)
    s.sendall(b"EHLO x.test\r\n")
    time.sleep(0.2)
    s.recv(4096)
    s.sendall(b"STARTTLS\r\nMAIL FROM:<injected@evil.example>\r\n")
    reply = s.recv(1024)
    r.check("STARTTLS answered 220", reply.startswith(b"220"), reply)
    ts = ctx.wrap_socket(s, server_hostname="mail.e2e.test")
    ts.sendall(b"EHLO x.test\r\n")
    time.sleep(0.2)
    ts.recv(4096)
    ts.sendall(b"MAIL FROM:<a@b.example>\r\n")
    reply = ts.recv(1024)
    r.check("plaintext pipelined after STARTTLS was discarded", reply.startswith(b"250"), reply)
    ts.close()

    # state after STARTTLS is reset: HELO must be repeated
    s = socket.create_connection(("127.0.0.1", mx), timeout=5)
    s.recv(1024)
    s.sendall(b"EHLO x.test\r\n")
    time.sleep(0.2)
    s.recv(4096)
    s.sendall(b"STARTTLS\r\n")
    s.recv(1024)
    ts = ctx.wrap_socket(s, server_hostname="mail.e2e.test")
    ts.sendall(b"MAIL FROM:<a@b.example>\r\n")
    reply = ts.recv(1024)
    r.check("EHLO forgotten after STARTTLS (RFC 3207)", reply.startswith(b"503"), reply)
    ts.close()

    out = raw(mx, b"EHLO x.test\r\n" + b"NOOP " + b"x" * 5000 + b"\r\nNOOP\r\nQUIT\r\n")
    r.check("over-long line refused, session goes on", b"500 5.5.2 Line too long" in out and b"221" in out, out[-200:])

    out = raw(mx, b"EHLO x.test\r\n" + b"BOGUS\r\n" * 12)
    r.check("error budget: 421 and disconnect after 10 errors", b"421 4.7.0 Too many errors" in out and out.count(b"500 5.5.1") == 10, out[-200:])

    out = raw(mx, b"EHLO x.test\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<postmaster>\r\nRSET\r\nQUIT\r\n")
    r.check("pipelined commands answered in order", out.count(b"\r\n") >= 5 and out.rstrip().endswith(b"221 2.0.0 Bye"), out)

    out = raw(mx, b"EHLO x.test\r\nMAIL FROM:<a@b.example> SIZE=999999999999\r\nQUIT\r\n")
    r.check("SIZE over the limit refused at MAIL", b"552 5.3.4" in out, out)

    out = raw(mx, b"EHLO x.test\r\nMAIL FROM:<a\x00b@c.example>\r\nQUIT\r\n")
    r.check("NUL in a command is a syntax error", b"501" in out, out)

    r.check("server still running after all of it", srv.proc.poll() is None)
    rc = srv.stop()
    r.check("server stops cleanly on SIGTERM", rc == 0, rc)

# operator rules at connect and helo: a refusal is the greeting, a helo
# rule answers EHLO
srv2 = Server()
os.makedirs(os.path.join(srv2.state, "rules"), exist_ok=True)
with open(os.path.join(srv2.state, "rules", "global.hk"), "w") as f:
    f.write('''on connect {
    rule "no loopback" when client.ip is "127.0.0.1" and tls is false and false { refuse 554 "5.7.1 never" }
}
on helo {
    rule "bad helo" when client.helo is "evil.example" { refuse 550 "5.7.1 Bad HELO" }
}
''')
with srv2:
    out = raw(srv2.ports["mx"], b"EHLO evil.example\r\nEHLO good.example\r\nQUIT\r\n")
    r.check("helo-stage rule refuses a HELO name, the next EHLO is fine", b"550 5.7.1 Bad HELO" in out and b"250-mail.e2e.test" in out, out)
with open(os.path.join(srv2.state, "rules", "global.hk"), "w") as f:
    f.write('''on connect {
    rule "blocked" when client.ip is "127.0.0.1" { refuse 554 "5.7.1 Your address is blocked" }
}
''')
with srv2:
    s = socket.create_connection(("127.0.0.1", srv2.ports["mx"]), timeout=5)
    greeting = s.recv(1024)
    r.check("connect-stage rule refuses the session in the greeting", greeting.startswith(b"554 5.7.1 Your address is blocked"), greeting)
    s.close()

r.done()
