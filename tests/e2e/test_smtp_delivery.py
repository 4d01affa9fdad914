"""Delivery through `hikyaku serve` with real clients: mail for a hosted
user lands in its Maildir (fsync-ed before the 250), unknown users and
relaying are refused, submission needs AUTH and the sender's own address,
the user's rules run at delivery (fileinto, discard, reject into the
Rejected folder, forward/notify/reply queued), and the SMTP smuggling
variants never end the data early."""
import glob
import os
import smtplib
import socket
import ssl
import subprocess
import sys
import time

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from hkserver import HIKYAKU, Results, Server  # noqa: E402

r = Results()
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE

# the queue runner stays idle (one scan at start, none later): this test
# looks at what is spooled; test_queue.py covers sending it
# outbound mail goes nowhere (a closed port): entries stay queued or deferred
srv = Server(extra_config="queue_interval 86400\ntransport 127.0.0.1:9\n")


def admin(*args, stdin=None):
    p = subprocess.run([HIKYAKU] + list(args) + ["--state", srv.state], input=stdin, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(args), p.stderr))
    return p.stdout


admin("domain", "add", "example.jp")
admin("user", "add", "taro@example.jp", "--stdin", stdin="correct horse battery\n")
admin("user", "add", "hanako@example.jp", "--stdin", stdin="another good password\n")
admin("alias", "add", "team@example.jp", "taro@example.jp", "hanako@example.jp")
maildir = os.path.join(srv.state, "domains", "example.jp", "users")


def inbox(user, folder=""):
    d = os.path.join(maildir, user, "Maildir", folder)
    return sorted(glob.glob(os.path.join(d, "new", "*")) + glob.glob(os.path.join(d, "cur", "*")))


def entry_head(path):
    # the runner may move an entry between listing and reading it
    for d in ("new", "deferred"):
        p = os.path.join(srv.state, "queue", d, os.path.basename(path))
        try:
            with open(p) as f:
                return f.read(200)
        except FileNotFoundError:
            continue
    return ""


def queued():
    # entries waiting (new/) or already tried and deferred (deferred/, not
    # the .st state files): the runner is woken after every delivery
    q = os.path.join(srv.state, "queue")
    return sorted(glob.glob(os.path.join(q, "new", "*")) +
                  [f for f in glob.glob(os.path.join(q, "deferred", "*")) if not f.endswith(".st")],
                  key=lambda p: [int(x) if x.isdigit() else x for x in os.path.basename(p).split(".")])


# personal rules for taro: file quotes, discard ads, reject one sender, forward and notify VIPs
os.makedirs(os.path.join(maildir, "taro"), exist_ok=True)
with open(os.path.join(maildir, "taro", "personal.hk"), "w") as f:
    f.write('''import "warpmail"
on deliver {
    rule "ads" when is_unsolicited_ad { discard }
    rule "refuse" when from is "abc@kyohi.example.jp" { reject "not wanted" }
    rule "quotes" when subject contains "quote" { fileinto "Quotes" }
    rule "vip" when from is "vip@otokui.example.jp" {
        forward "taro.mobile@docomo.example"
        notify "taro.pager@docomo.example"
    }
}
''')

MSG = "From: %s\r\nTo: taro@example.jp\r\nSubject: %s\r\nMessage-ID: <%s@test>\r\n\r\nbody line\r\n"

os.makedirs(os.path.join(maildir, "hanako"), exist_ok=True)
with open(os.path.join(maildir, "hanako", "personal.hk"), "w") as f:
    f.write('''on deliver {
    rule "away" { reply subject "away" body "back on Monday" every 7 days }
}
''')

with srv:
    mx = srv.ports["mx"]
    c = smtplib.SMTP("127.0.0.1", mx, timeout=30)
    c.ehlo("client.e2e.test")
    c.starttls(context=ctx)
    c.ehlo("client.e2e.test")
    refused = c.sendmail("friend@example.org", ["taro@example.jp"], MSG % ("friend@example.org", "hello", "m1"))
    r.check("mail to a hosted user accepted over STARTTLS", refused == {})
    files = inbox("taro")
    r.check("it is in taro's INBOX (new/)", len(files) == 1, files)
    body = open(files[0], "rb").read() if files else b""
    r.check("stored with Return-Path, Delivered-To and our Received header",
            body.startswith(b"Return-Path: <friend@example.org>") and b"Delivered-To: taro@example.jp" in body and b"by mail.e2e.test (Hikyaku) with ESMTPS" in body, body[:300])
    r.check("no temporary files left in tmp/", glob.glob(os.path.join(maildir, "taro", "Maildir", "tmp", "*")) == [])

    try:
        c.sendmail("friend@example.org", ["nobody@example.jp"], MSG % ("friend@example.org", "x", "m2"))
        r.check("unknown user refused", False)
    except smtplib.SMTPRecipientsRefused as e:
        r.check("unknown user refused with 550 5.1.1", e.recipients["nobody@example.jp"][0] == 550, e.recipients)
    try:
        c.sendmail("friend@example.org", ["someone@elsewhere.example"], MSG % ("friend@example.org", "x", "m3"))
        r.check("relay refused", False)
    except smtplib.SMTPRecipientsRefused as e:
        r.check("relay to a foreign domain refused (554 5.7.1)", e.recipients["someone@elsewhere.example"][0] == 554, e.recipients)

    c.sendmail("friend@example.org", ["team@example.jp"], MSG % ("friend@example.org", "team news", "m4"))
    r.check("alias delivers to every member", len(inbox("taro")) == 2 and len(inbox("hanako")) == 1, (inbox("taro"), inbox("hanako")))

    c.sendmail("friend@example.org", ["taro@example.jp"], MSG % ("friend@example.org", "a quote for you", "m5"))
    r.check("personal rule: fileinto Quotes", len(inbox("taro", ".Quotes")) == 1, inbox("taro", ".Quotes"))

    ad = "From: shop@example.net\r\nTo: taro@example.jp\r\nSubject: =?ISO-2022-JP?B?GyRCTCQ+NUJ6OS05cCIoGyhC?=\r\n\r\nsale\r\n"
    before = len(inbox("taro"))
    c.sendmail("shop@example.net", ["taro@example.jp"], ad)
    r.check("personal rule: ad with ISO-2022-JP subject 未承諾広告※ discarded", len(inbox("taro")) == before, inbox("taro"))

    try:
        c.sendmail("abc@kyohi.example.jp", ["taro@example.jp"], MSG % ("abc@kyohi.example.jp", "hi", "m6"))
        r.check("rejected by every recipient's rules gives 550 at end of DATA", False)
    except smtplib.SMTPDataError as e:
        r.check("rejected by every recipient's rules gives 550 at end of DATA", e.smtp_code == 550, e)
    rej = inbox("taro", ".Rejected")
    r.check("the rejected message's headers are in the Rejected folder", len(rej) == 1 and b"X-Hikyaku-Rejected" in open(rej[0], "rb").read(), rej)

    q0 = len(queued())
    c.sendmail("vip@otokui.example.jp", ["taro@example.jp"], MSG % ("vip@otokui.example.jp", "order", "m7"))
    q = queued()
    kinds = sorted(entry_head(f).split("\n")[1] for f in q[q0:])
    r.check("forward and notify are queued durably (and the local copy kept)", kinds == ["kind forward", "kind notify"] and len(inbox("taro")) == before + 1, kinds)
    c.quit()

    # smuggling: bare LF / bare CR variants never end the data; the message is refused
    for name, fake in (("LF.LF", b"\n.\n"), ("CR.CR", b"\r.\r"), ("LF.CRLF", b"\n.\r\n"), ("CRLF.LF", b"\r\n.\n")):
        s = socket.create_connection(("127.0.0.1", mx), timeout=10)
        s.recv(1024)
        s.sendall(b"EHLO x.test\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<taro@example.jp>\r\nDATA\r\n")
        time.sleep(0.3)
        s.recv(4096)
        before = len(inbox("taro"))
        s.sendall(b"Subject: smuggle\r\n\r\nx" + fake + b"MAIL FROM:<evil@example.org>\r\nRCPT TO:<hanako@example.jp>\r\nDATA\r\nsmuggled\r\n.\r\n")
        s.settimeout(10)
        try:
            out = s.recv(4096)
        except socket.timeout:
            out = b""
        r.check("smuggling %s: no early end of data, message refused 550 5.6.11" % name, out.startswith(b"550 5.6.11") and len(inbox("taro")) == before, out)
        s.close()

    # auto-reply: one per sender per interval, the log listable and clearable
    HMSG = "From: pal@example.org\r\nTo: hanako@example.jp\r\nSubject: hi\r\nMessage-ID: <%s@t>\r\n\r\nx\r\n"
    c = smtplib.SMTP("127.0.0.1", mx, timeout=30)

    def replies():
        return [f for f in queued() if "kind reply" in entry_head(f)]

    q0 = len(replies())
    c.sendmail("pal@example.org", ["hanako@example.jp"], HMSG % "r1")
    c.sendmail("pal@example.org", ["hanako@example.jp"], HMSG % "r2")
    r.check("auto-reply: one reply for two messages from the same sender", len(replies()) == q0 + 1, len(replies()) - q0)
    out = admin("replies", "list")
    r.check("hikyaku replies list shows who was answered", "hanako@example.jp answered pal@example.org" in out, out)
    out = admin("replies", "clear", "hanako@example.jp")
    r.check("hikyaku replies clear forgets it", "forgot 1" in out, out)
    c.sendmail("pal@example.org", ["hanako@example.jp"], HMSG % "r3")
    r.check("after clearing, the sender is answered again", len(replies()) == q0 + 2, len(replies()) - q0)
    c.quit()

    # submission: AUTH mandatory, then MAIL FROM must be the user's
    sub = smtplib.SMTP("127.0.0.1", srv.ports["submission"], timeout=30)
    sub.ehlo("c.test")
    sub.starttls(context=ctx)
    sub.ehlo("c.test")
    try:
        sub.login("taro@example.jp", "wrong password")
        r.check("AUTH with a wrong password refused", False)
    except smtplib.SMTPAuthenticationError as e:
        r.check("AUTH with a wrong password refused (535)", e.smtp_code == 535, e)
    code, _ = sub.login("taro@example.jp", "correct horse battery")
    r.check("AUTH PLAIN with the right password", code == 235)
    try:
        sub.sendmail("someone-else@example.org", ["hanako@example.jp"], MSG % ("x@x", "y", "m8"))
        r.check("MAIL FROM another's address refused", False)
    except smtplib.SMTPSenderRefused as e:
        r.check("MAIL FROM another's address refused (553 5.7.1)", e.smtp_code == 553, e)
    q0, h0 = len(queued()), len(inbox("hanako"))
    sub.sendmail("taro@example.jp", ["hanako@example.jp", "friend@example.org"], MSG % ("taro@example.jp", "from taro", "m9"))
    # the remote copy is queued; hanako's auto-reply is not sent: she is
    # not in the message's To/Cc (RFC 3834), only in the envelope
    r.check("authenticated user sends to a local and a remote recipient", len(inbox("hanako")) == h0 + 1 and len(queued()) == q0 + 1,
            (len(inbox("hanako")) - h0, len(queued()) - q0))
    sub.quit()

    ssl_c = smtplib.SMTP_SSL("127.0.0.1", srv.ports["smtps"], timeout=30, context=ctx)
    ssl_c.ehlo("c.test")
    ssl_c.login("hanako@example.jp", "another good password")
    ssl_c.sendmail("hanako@example.jp", ["taro@example.jp"], MSG % ("hanako@example.jp", "over smtps", "m10"))
    r.check("SMTPS: AUTH LOGIN-free PLAIN login and delivery", any(b"over smtps" in open(f, "rb").read() for f in inbox("taro")))
    ssl_c.quit()

    r.check("server still running", srv.proc.poll() is None, srv.logtext()[-2000:])
    rc = srv.stop()
    r.check("server stops cleanly", rc == 0, srv.logtext()[-2000:])

r.done()
