"""Retention and refilter end to end: a real `hikyaku serve` with the stock
operator rule (import "retention"), mail delivered over SMTP and aged with
os.utime on the Maildir files; a POP3 login (poplib over STLS) no longer
offers expired mail (strict plans delete it even when flagged, others keep
flagged mail); the periodic sweep (retention_interval 1) expunges without
any login; `hikyaku retention run --dry-run` and the real run;
`hikyaku refilter --dry-run` prints the table and changes nothing, the real
run moves and deletes, a second run moves nothing, and a forward is only
reported."""
import glob
import os
import poplib
import smtplib
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
PW = "correct horse battery"
DAY = 86400

srv = Server(extra_config="retention_interval 0\nauth_delay_ms 50\n")


def cli(*args, state=None):
    p = subprocess.run([HIKYAKU] + list(args) + ["--state", state or srv.state], capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def admin(*args, stdin=None):
    p = subprocess.run([HIKYAKU] + list(args) + ["--state", srv.state], input=stdin, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(args), p.stderr))


def maildir(user, folder=None):
    md = os.path.join(srv.state, "domains", "example.jp", "users", user, "Maildir")
    return md if folder is None else os.path.join(md, "." + folder)


def files(user, folder=None):
    md = maildir(user, folder)
    return sorted(glob.glob(md + "/new/*") + glob.glob(md + "/cur/*"))


def subject_of(path):
    with open(path, "rb") as f:
        for line in f.read().split(b"\r\n"):
            if line.startswith(b"Subject: "):
                return line[9:].decode()
    return ""


def by_subject(user, subject, folder=None):
    for p in files(user, folder):
        if subject_of(p) == subject:
            return p
    return None


def send(to, subject, sender="friend@example.org"):
    s = smtplib.SMTP("127.0.0.1", srv.ports["mx"], timeout=30)
    s.ehlo("client.test")
    msg = "From: Friend <%s>\r\nTo: %s\r\nSubject: %s\r\n\r\nHello.\r\n" % (sender, to, subject)
    s.sendmail(sender, [to], msg.encode())
    s.quit()


def age(user, subject, days, flagged=False):
    """Sets the delivery time (mtime) back and, optionally, flags it."""
    p = by_subject(user, subject)
    assert p, subject
    if flagged:
        base = os.path.basename(p).split(":")[0]
        q = os.path.join(maildir(user), "cur", base + ":2,F")
        os.rename(p, q)
        p = q
    t = time.time() - days * DAY
    os.utime(p, (t, t))


def pop3_subjects(user):
    p = poplib.POP3("127.0.0.1", srv.ports["pop3"], timeout=30)
    p.stls(context=ctx)
    p.user(user)
    p.pass_(PW)
    n, _ = p.stat()
    subjects = []
    for i in range(1, n + 1):
        _, lines, _ = p.top(i, 0)
        subjects += [ln[9:].decode() for ln in lines if ln.startswith(b"Subject: ")]
    p.quit()
    return sorted(subjects)


admin("domain", "add", "example.jp")
for u, plan in (("taro", "light"), ("hanako", "standard"), ("jiro", "entry")):
    admin("user", "add", "%s@example.jp" % u, "--stdin", "--plan", plan, stdin=PW + "\n")
os.makedirs(os.path.join(srv.state, "rules"), exist_ok=True)
with open(os.path.join(srv.state, "rules", "global.hk"), "w") as f:
    f.write('import "retention"\n')

try:
    srv.start()

    # --- POP3 login: expired mail is not offered ---------------------------------
    for s in ("old", "old flagged", "fresh"):
        send("taro@example.jp", s)
        send("hanako@example.jp", s)
    r.check("delivered", len(files("taro")) == 3 and len(files("hanako")) == 3, files("taro"))
    # light: 90 days; standard: 365 days
    for u, days in (("taro", 120), ("hanako", 400)):
        age(u, "old", days)
        age(u, "old flagged", days, flagged=True)
    got = pop3_subjects("taro@example.jp")
    r.check("light plan: POP3 offers only the fresh message (flagged old mail deleted too)", got == ["fresh"], got)
    r.check("light plan: the expired files are gone from the Maildir", len(files("taro")) == 1, files("taro"))
    got = pop3_subjects("hanako@example.jp")
    r.check("standard plan: flagged old mail is kept, unflagged expired", got == ["fresh", "old flagged"], got)
    log = srv.logtext()
    r.check("the login run is logged with the rule and counts",
            'taro@example.jp INBOX' in log and 'rule "plan retention period", operator' in log
            and "taro@example.jp at login: 3 messages evaluated, 2 expunged" in log, log[-2000:])
    # a second login does nothing more and logs nothing new
    before = srv.logtext().count("at login")
    got = pop3_subjects("taro@example.jp")
    r.check("a second login offers the same message", got == ["fresh"], got)
    r.check("and logs no retention counts (nothing changed)", srv.logtext().count("at login") == before)

    # --- hikyaku retention run ------------------------------------------------------
    send("hanako@example.jp", "old again")
    age("hanako", "old again", 400)
    rc, out, err = cli("retention", "run", "--all", "--dry-run")
    r.check("retention run --all --dry-run exits 0", rc == 0, err)
    r.check("the dry run says what would be deleted, and by which rule",
            "would delete" in out and 'rule "plan retention period" (operator)' in out and "INBOX" in out, out)
    r.check("the dry run sums up over every mailbox",
            "# 3 mailboxes," in out and "would be 1 deleted" in out, out)
    r.check("the dry run deleted nothing", by_subject("hanako", "old again") is not None)
    rc, out, err = cli("retention", "run", "hanako@example.jp")
    r.check("retention run USER deletes it", rc == 0 and by_subject("hanako", "old again") is None
            and "# 1 mailbox, 3 messages evaluated: 1 deleted" in out, out + err)
    rc, out, err = cli("retention", "run", "nobody@example.jp")
    r.check("an unknown user is exit 1 with a message", rc == 1 and "no user nobody@example.jp" in err, (rc, err))
    rc, out, err = cli("retention", "run")
    r.check("retention run without USER or --all is a usage error (2)", rc == 2, (rc, err))
    rc, out, err = cli("retention", "run", "--all", "--limit", "0")
    r.check("--limit 0 is refused", rc == 2, (rc, err))

    # --- refilter ------------------------------------------------------------------
    for s in ("[news] weekly", "[news] daily", "spam offer", "urgent: call", "hello"):
        send("hanako@example.jp", s)
    pdir = os.path.join(srv.state, "domains", "example.jp", "users", "hanako")
    with open(os.path.join(pdir, "personal.hk"), "w") as f:
        f.write('on deliver {\n'
                '    rule "news" when subject starts with "[news]" { fileinto "News" }\n'
                '    rule "spam" when subject contains "spam" { discard }\n'
                '    rule "phone" when subject starts with "urgent" { forward "hanako.mobile@phone.example" }\n'
                '}\n')
    n_inbox = len(files("hanako"))
    rc, out, err = cli("refilter", "hanako@example.jp", "--dry-run")
    lines = out.splitlines()
    r.check("refilter --dry-run exits 0 with a table header", rc == 0 and lines and lines[0].startswith("RECEIVED"), out + err)
    news = [ln for ln in lines if "[news] weekly" in ln]
    r.check("the table has date, sender, subject, what would happen and the rule",
            len(news) == 1 and "friend@example.org" in news[0] and 'would move to "News"' in news[0]
            and 'rule "news" (personal)' in news[0] and news[0][:4].isdigit(), out)
    r.check("a discard would delete", any("spam offer" in ln and "would delete" in ln for ln in lines), out)
    r.check("a forward is reported as skipped, never sent",
            any("urgent: call" in ln and "skipped: forward to hanako.mobile@phone.example" in ln for ln in lines), out)
    r.check("the dry run sums up", "would be 1 deleted, 2 moved" in out, out)
    r.check("the dry run changed nothing", len(files("hanako")) == n_inbox and not os.path.exists(maildir("hanako", "News")))
    rc, out, err = cli("refilter", "hanako@example.jp")
    r.check("refilter moves and deletes", rc == 0 and len(files("hanako", "News")) == 2
            and by_subject("hanako", "spam offer") is None and by_subject("hanako", "hello") is not None
            and by_subject("hanako", "urgent: call") is not None, out + err)
    rc, out, err = cli("refilter", "hanako@example.jp")
    r.check("a second refilter moves nothing", rc == 0 and "0 deleted, 0 moved" in out
            and len(files("hanako", "News")) == 2, out)
    rc, out, err = cli("refilter", "hanako@example.jp", "--folder", "News", "--dry-run")
    r.check("refilter --folder News: filed where they are, nothing to do",
            rc == 0 and "2 messages evaluated: would be 0 deleted, 0 moved" in out, out + err)
    rc, out, err = cli("refilter", "hanako@example.jp", "--folder", "Nope")
    r.check("refilter of a missing folder is exit 1", rc == 1 and "no folder 'Nope'" in err, (rc, err))
    r.check("nothing was queued for sending",
            not glob.glob(os.path.join(srv.state, "queue", "new", "*")) and
            not glob.glob(os.path.join(srv.state, "queue", "deferred", "*")))
finally:
    srv.stop()

# --- the periodic sweep: no login needed ---------------------------------------------
srv2 = Server(extra_config="retention_interval 1\n", state=srv.state)
srv = srv2
try:
    srv.start()
    for s in ("sweep old", "sweep fresh"):
        send("jiro@example.jp", s)
    age("jiro", "sweep old", 100, flagged=True)
    deadline = time.time() + 15
    while time.time() < deadline and by_subject("jiro", "sweep old") is not None:
        time.sleep(0.2)
    r.check("the sweep expunged the expired message (entry plan, flagged)",
            by_subject("jiro", "sweep old") is None and by_subject("jiro", "sweep fresh") is not None, files("jiro"))
    time.sleep(1.5)
    log = srv.logtext()
    r.check("the sweep logs each changed mailbox and its totals",
            "sweep: jiro@example.jp: 2 messages evaluated, 1 expunged" in log and "sweep done: 3 mailboxes" in log,
            log[-2000:])
finally:
    rc = srv.stop()
log = srv.logtext()
r.check("serve stops cleanly with the sweep timer running", rc == 0, log[-1000:])
r.done()
