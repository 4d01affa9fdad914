"""Delivery status notifications (RFC 3461/3464) end to end: a real
`hikyaku serve`, Python smtplib clients, and an SMTP sink on 127.0.0.1
(the `transport` route) that can offer DSN or not.

- EHLO offers DSN on the MX, submission and SMTPS listeners;
- RET/ENVID/NOTIFY/ORCPT syntax, xtext and limits: 501 5.5.4, duplicates 501;
- NOTIFY=NEVER on a 550: no bounce;
- NOTIFY=SUCCESS to a hosted mailbox: a "delivered" DSN in the sender's mailbox;
- NOTIFY=SUCCESS relayed to a sink without DSN: a "relayed" DSN;
- to a sink with DSN: the parameters are passed on and we send no DSN;
- RET=HDRS: headers only; RET=FULL: the whole message; ENVID and ORCPT in it;
- NOTIFY=DELAY with queue_delay_warning 1: exactly one "delayed" DSN.

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
    def __init__(self):
        self.dsn = False  # offer DSN in EHLO
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.mails = []  # (MAIL line, RCPT line, rcpt, data)
        self.tries = {}
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
        mail, rcpt_line, rcpt = None, None, None
        try:
            while True:
                line = f.readline()
                if not line:
                    return
                cmd = line.decode("latin-1").rstrip("\r\n")
                up = cmd.upper()
                if up.startswith("EHLO"):
                    dsn = b"250-DSN\r\n" if self.dsn else b""
                    c.sendall(b"250-sink.test\r\n" + dsn + b"250-8BITMIME\r\n250 PIPELINING\r\n")
                elif up.startswith("MAIL FROM:"):
                    mail = cmd
                    c.sendall(b"250 ok\r\n")
                elif up.startswith("RCPT TO:"):
                    rcpt_line = cmd
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
                        self.mails.append((mail, rcpt_line, rcpt, data))
                    c.sendall(b"250 2.0.0 queued\r\n")
                elif up == "QUIT":
                    c.sendall(b"221 bye\r\n")
                    return
                else:
                    c.sendall(b"250 ok\r\n" if up in ("RSET", "NOOP") else b"500 what\r\n")
        except OSError:
            pass
        finally:
            c.close()

    def to(self, rcpt):
        with self.lock:
            return [m for m in self.mails if m[2] == rcpt]


def wait_for(fn, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.1)
    return fn()


sink = Sink()
CONF = ("transport 127.0.0.1:%d\nqueue_interval 1\nqueue_retry 2\nqueue_retry_max 3\nqueue_timeout 10\n"
        "queue_delay_warning 1\n" % sink.port)
srv = Server(extra_config=CONF)


def admin(*args, stdin=None):
    p = subprocess.run([HIKYAKU] + list(args) + ["--state", srv.state], input=stdin, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(args), p.stderr))
    return p.stdout


admin("domain", "add", "example.jp")
admin("user", "add", "taro@example.jp", "--stdin", stdin="correct horse battery\n")
admin("user", "add", "hanako@example.jp", "--stdin", stdin="another good password\n")
maildir = os.path.join(srv.state, "domains", "example.jp", "users")


def inbox(user):
    d = os.path.join(maildir, user, "Maildir")
    return sorted(glob.glob(os.path.join(d, "new", "*")) + glob.glob(os.path.join(d, "cur", "*")),
                  key=lambda p: os.stat(p).st_mtime_ns)


MSG = ("From: hanako@example.jp\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@test>\r\n\r\n"
       "the secret body line\r\n")


def submit(rcpt, subject, mail_options=(), rcpt_options=()):
    s = smtplib.SMTP("127.0.0.1", srv.ports["submission"], timeout=30)
    s.ehlo("c.test")
    s.starttls(context=ctx)
    s.ehlo("c.test")
    s.login("hanako@example.jp", "another good password")
    s.sendmail("hanako@example.jp", [rcpt], MSG % (rcpt, subject, subject.replace(" ", "-")),
               mail_options=list(mail_options), rcpt_options=list(rcpt_options))
    s.quit()


def new_dsns(before, n=1, timeout=20):
    """The messages that arrived in hanako's mailbox after `before` files."""
    files = wait_for(lambda: len(inbox("hanako")) >= before + n and inbox("hanako")[before:], timeout) or []
    return [open(f, "rb").read() for f in files]


def qempty():
    return "0 entries" in admin("queue", "list")


def status_part(raw):
    """(the parsed DSN, the bytes of its message/delivery-status part, the part types)"""
    m = email.message_from_bytes(raw)
    parts = [p.get_content_type() for p in m.get_payload()] if m.is_multipart() else []
    i = raw.find(b"Content-Type: message/delivery-status")
    j = raw.find(b"\r\n--", i)
    return m, raw[i:j] if i >= 0 else b"", parts


srv.start()
try:
    # --- EHLO on every listener ---
    c = smtplib.SMTP("127.0.0.1", srv.ports["mx"], timeout=30)
    c.ehlo("c.test")
    r.check("EHLO on the MX listener offers DSN", c.has_extn("dsn"), c.esmtp_features)
    c.quit()
    c = smtplib.SMTP("127.0.0.1", srv.ports["submission"], timeout=30)
    c.ehlo("c.test")
    c.starttls(context=ctx)
    c.ehlo("c.test")
    r.check("EHLO on submission (after STARTTLS) offers DSN", c.has_extn("dsn"), c.esmtp_features)
    c.quit()
    c = smtplib.SMTP_SSL("127.0.0.1", srv.ports["smtps"], timeout=30, context=ctx)
    c.ehlo("c.test")
    r.check("EHLO on SMTPS offers DSN", c.has_extn("dsn"), c.esmtp_features)
    c.quit()

    # --- syntax (a session per command: each 501 counts against the error budget) ---
    def try_cmd(rcpt_params=None, mail_params=""):
        c = smtplib.SMTP("127.0.0.1", srv.ports["mx"], timeout=30)
        c.ehlo("c.test")
        res = c.docmd("MAIL FROM:<friend@example.org>" + (" " + mail_params if mail_params else ""))
        if rcpt_params is not None and res[0] == 250:
            res = c.docmd("RCPT TO:<taro@example.jp> " + rcpt_params)
        c.docmd("RSET")
        c.quit()
        return res

    bad_mail = [
        ("RET=BOGUS", "RET other than FULL/HDRS"),
        ("RET", "RET without a value"),
        ("ENVID=" + "x" * 101, "ENVID over 100 characters"),
        ("ENVID=a+zz", "ENVID with a bad xtext escape"),
        ("ENVID=a+0A", "ENVID decoding to a control character"),
        ("ENVID=a+2b", "ENVID with lower-case hex"),
        ("ENVID=a+2", "ENVID with a cut escape"),
        ("RET=FULL RET=HDRS", "RET twice"),
        ("ENVID=a ENVID=b", "ENVID twice"),
    ]
    for params, what in bad_mail:
        code, msg = try_cmd(mail_params=params)
        r.check("MAIL with %s: 501 5.5.4" % what, code == 501 and msg.startswith(b"5.5.4"), (code, msg))
    code, msg = try_cmd(mail_params="RET=hdrs ENVID=" + "Q" * 97 + "+2B")
    r.check("MAIL with RET=hdrs and a 100-character ENVID is accepted", code == 250, (code, msg))
    bad_rcpt = [
        ("NOTIFY=FOO", "an unknown NOTIFY keyword"),
        ("NOTIFY=NEVER,SUCCESS", "NEVER combined with another keyword"),
        ("NOTIFY=SUCCESS,SUCCESS", "a repeated NOTIFY keyword"),
        ("NOTIFY=SUCCESS,", "an empty NOTIFY item"),
        ("ORCPT=taro@example.jp", "ORCPT without addr-type"),
        ("ORCPT=rfc822;", "ORCPT with an empty address"),
        ("ORCPT=rfc822;" + "a" * 494, "ORCPT over 500 characters"),
        ("ORCPT=rfc822;a+ZZ@b", "ORCPT with a bad xtext escape"),
        ("NOTIFY=SUCCESS NOTIFY=FAILURE", "NOTIFY twice"),
    ]
    for params, what in bad_rcpt:
        code, msg = try_cmd(rcpt_params=params)
        r.check("RCPT with %s: 501 5.5.4" % what, code == 501 and msg.startswith(b"5.5.4"), (code, msg))
    code, msg = try_cmd(rcpt_params="NOTIFY=failure,Delay ORCPT=rfc822;" + "a" * 482 + "@example.jp")
    r.check("RCPT with NOTIFY=failure,Delay and a 500-character ORCPT is accepted", code == 250, (code, msg))

    # --- NOTIFY=NEVER on a 550: no bounce ---
    before = len(inbox("hanako"))
    submit("hard@remote.example", "never tell", rcpt_options=["NOTIFY=NEVER"])
    r.check("NOTIFY=NEVER: the 550 happened", wait_for(lambda: sink.tries.get("hard@remote.example")), sink.tries)
    r.check("NOTIFY=NEVER: the entry leaves the queue", wait_for(qempty, 10))
    time.sleep(2)
    r.check("NOTIFY=NEVER: no bounce in the sender's mailbox", len(inbox("hanako")) == before, inbox("hanako")[before:])
    r.check("NOTIFY=NEVER: the log says why", "dropped (NOTIFY without FAILURE)" in srv.logtext())

    # --- NOTIFY=SUCCESS to a hosted mailbox: delivered ---
    before_t = len(inbox("taro"))
    before = len(inbox("hanako"))
    submit("taro@example.jp", "local success", mail_options=["ENVID=env+2Blocal"],
           rcpt_options=["NOTIFY=SUCCESS", "ORCPT=rfc822;taro+2Balias@example.jp"])
    got = new_dsns(before)
    raw = got[0] if got else b""
    m, ds, parts = status_part(raw)
    r.check("NOTIFY=SUCCESS to a hosted mailbox: one DSN in the sender's mailbox", len(got) == 1, got)
    r.check("the message itself reached the recipient", len(inbox("taro")) == before_t + 1)
    r.check("the DSN is multipart/report with text/rfc822-headers",
            parts == ["text/plain", "message/delivery-status", "text/rfc822-headers"], parts)
    r.check("Action: delivered, Status: 2.0.0", b"Action: delivered" in ds and b"Status: 2.0.0" in ds, ds)
    r.check("ENVID decoded into Original-Envelope-Id", b"Original-Envelope-Id: env+local" in ds, ds)
    r.check("ORCPT decoded into Original-Recipient", b"Original-Recipient: rfc822;taro+alias@example.jp" in ds, ds)
    r.check("Final-Recipient is the hosted address", b"Final-Recipient: rfc822; taro@example.jp" in ds, ds)
    r.check("the delivered DSN comes from the null sender", raw.startswith(b"Return-Path: <>"), raw[:100])
    r.check("the delivered DSN quotes headers only", b"Subject: local success" in raw and b"secret body line" not in raw)

    # NOTIFY=SUCCESS from the null sender: nothing to send a DSN to
    q0 = admin("queue", "list")
    c = smtplib.SMTP("127.0.0.1", srv.ports["mx"], timeout=30)
    c.sendmail("", ["taro@example.jp"], MSG % ("taro@example.jp", "null success", "ns"), rcpt_options=["NOTIFY=SUCCESS"])
    c.quit()
    r.check("NOTIFY=SUCCESS with the null sender: delivered, and no DSN queued (to nobody)",
            wait_for(lambda: any(b"Subject: null success" in open(f, "rb").read() for f in inbox("taro")), 5)
            and "0 entries" in q0 and qempty() and "unusable entry" not in srv.logtext(), admin("queue", "list"))

    # --- NOTIFY=SUCCESS relayed to a next hop without DSN ---
    before = len(inbox("hanako"))
    submit("someone@remote.example", "relayed success", rcpt_options=["NOTIFY=SUCCESS,FAILURE"])
    got = new_dsns(before)
    raw = got[0] if got else b""
    m, ds, parts = status_part(raw)
    sent = sink.to("someone@remote.example")
    r.check("relayed: the message reached the sink", len(sent) == 1, sink.mails)
    r.check("relayed: no DSN parameters to a server that does not offer DSN",
            sent and "NOTIFY" not in sent[0][1].upper() and "RET=" not in sent[0][0].upper(), sent[0][:2] if sent else "")
    r.check("relayed: one DSN with Action: relayed", len(got) == 1 and b"Action: relayed" in ds, ds or got)
    r.check("relayed: Remote-MTA names the next hop", b"Remote-MTA: dns; 127.0.0.1" in ds, ds)
    r.check("relayed: the subject says so", m.get("Subject") == "Relayed Mail Delivery Report", m.get("Subject"))

    # --- a next hop with DSN: parameters passed on, no DSN from us ---
    sink.dsn = True
    before = len(inbox("hanako"))
    submit("dsnhop@remote.example", "passed on", mail_options=["RET=HDRS", "ENVID=E+2B1"],
           rcpt_options=["NOTIFY=SUCCESS,DELAY", "ORCPT=rfc822;orig+40x@remote.example"])
    sent = wait_for(lambda: sink.to("dsnhop@remote.example"))
    mail_line, rcpt_line = (sent[0][0], sent[0][1]) if sent else ("", "")
    r.check("DSN next hop: MAIL carries RET=HDRS and ENVID (xtext as given)",
            " RET=HDRS" in mail_line and " ENVID=E+2B1" in mail_line, mail_line)
    r.check("DSN next hop: RCPT carries NOTIFY and ORCPT",
            " NOTIFY=SUCCESS,DELAY" in rcpt_line and " ORCPT=rfc822;orig+40x@remote.example" in rcpt_line, rcpt_line)
    r.check("DSN next hop: the entry leaves the queue", wait_for(qempty, 10))
    time.sleep(2)
    r.check("DSN next hop: no relayed DSN from us", len(inbox("hanako")) == before, inbox("hanako")[before:])
    sink.dsn = False

    # --- failures: RET=HDRS, RET=FULL, ENVID, ORCPT ---
    before = len(inbox("hanako"))
    submit("hard@remote.example", "hdrs bounce", mail_options=["RET=HDRS", "ENVID=bounce-1"],
           rcpt_options=["ORCPT=rfc822;hard+2Bx@remote.example"])
    got = new_dsns(before)
    raw = got[0] if got else b""
    m, ds, parts = status_part(raw)
    r.check("RET=HDRS: a bounce with text/rfc822-headers", len(got) == 1
            and parts == ["text/plain", "message/delivery-status", "text/rfc822-headers"], parts)
    r.check("RET=HDRS: the body is not returned", b"Subject: hdrs bounce" in raw and b"secret body line" not in raw)
    r.check("the bounce has Action: failed and the remote's status", b"Action: failed" in ds and b"Status: 5.1.1" in ds, ds)
    r.check("the bounce has Original-Envelope-Id and Original-Recipient",
            b"Original-Envelope-Id: bounce-1" in ds and b"Original-Recipient: rfc822;hard+x@remote.example" in ds, ds)

    before = len(inbox("hanako"))
    submit("hard@remote.example", "full bounce", mail_options=["RET=FULL"])
    got = new_dsns(before)
    raw = got[0] if got else b""
    m, ds, parts = status_part(raw)
    r.check("RET=FULL: the bounce returns the message as message/rfc822",
            parts == ["text/plain", "message/delivery-status", "message/rfc822"], parts)
    r.check("RET=FULL: the body is in it", b"secret body line" in raw and b"Subject: full bounce" in raw)
    r.check("no ENVID/ORCPT given: no such fields", b"Original-Envelope-Id" not in ds and b"Original-Recipient" not in ds, ds)

    # --- NOTIFY=DELAY: one delayed DSN, then the delivery ---
    before = len(inbox("hanako"))
    submit("soft-3@remote.example", "slow one", rcpt_options=["NOTIFY=DELAY"])
    got = wait_for(lambda: sink.to("soft-3@remote.example"), 40)
    r.check("NOTIFY=DELAY: delivered after three 451s", len(got) == 1 and sink.tries.get("soft-3@remote.example") == 4,
            sink.tries)
    r.check("NOTIFY=DELAY: the entry leaves the queue", wait_for(qempty, 10))
    time.sleep(2)
    got = [open(f, "rb").read() for f in inbox("hanako")[before:]]
    delayed = [g for g in got if b"Action: delayed" in g]
    r.check("NOTIFY=DELAY: exactly one delayed DSN (not one per retry)", len(delayed) == 1 and len(got) == 1,
            [g[:300] for g in got])
    raw = delayed[0] if delayed else b""
    m, ds, parts = status_part(raw)
    r.check("delayed DSN: Status 4.3.0 from the remote reply, Will-Retry-Until",
            b"Status: 4.3.0" in ds and b"Will-Retry-Until: " in ds and b"Diagnostic-Code: smtp; 451 4.3.0" in ds, ds)
    r.check("delayed DSN: subject says it is still retried", m.get("Subject") == "Delayed Mail (still being retried)",
            m.get("Subject"))
    r.check("NOTIFY=DELAY alone: no success DSN when it is finally delivered", not [g for g in got if b"Action: relayed" in g])

    # default NOTIFY (none): no delay notice, however long it waits
    before = len(inbox("hanako"))
    submit("soft-2@remote.example", "slow default")
    r.check("no NOTIFY: delivered after the retries", wait_for(lambda: sink.to("soft-2@remote.example"), 30))
    r.check("no NOTIFY: the entry leaves the queue", wait_for(qempty, 10))
    time.sleep(2)
    r.check("no NOTIFY: no delayed DSN (the default is FAILURE only)", len(inbox("hanako")) == before,
            inbox("hanako")[before:])
finally:
    rc = srv.stop()
r.check("server stops cleanly", rc == 0, rc)
r.done()
