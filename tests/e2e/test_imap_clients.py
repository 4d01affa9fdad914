"""IMAP end to end with the mail programs people use: curl imaps:// and
imap:// with STARTTLS (LIST, UID FETCH, APPEND), mbsync (isync)
synchronising a local Maildir with the server both ways (new messages,
a subfolder, flags, expunges), mutt reading a folder over IMAPS, and
fetchmail fetching and deleting over IMAPS. Every check looks at what
the program saw or did and at the server's Maildir (or its IMAP view
through imaplib) on the other side. Protocol coverage with imaplib alone
is tests/e2e/test_imap.py; several sessions at once and hostile input are
test_imap_concurrent.py."""
import email
import glob
import imaplib
import mailbox
import os
import re
import shutil
import smtplib
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from hkserver import HIKYAKU, Results, Server  # noqa: E402

r = Results()
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
srv = Server(extra_config="auth_delay_ms 50\n")
USER = "taro@example.jp"
PW = "correct horse battery"
work = tempfile.mkdtemp(prefix="hk-imapclients-")


def admin(*args, stdin=None):
    p = subprocess.run([HIKYAKU] + list(args) + ["--state", srv.state], input=stdin, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(args), p.stderr))


admin("domain", "add", "example.jp")
admin("user", "add", USER, "--stdin", stdin=PW + "\n")
admin("user", "add", "jiro@example.jp", "--stdin", stdin=PW + "\n")
admin("domain", "add", "legacy.example", "--legacy-auth")
LPW = "a legacy password"
admin("user", "add", "old@legacy.example", "--stdin", stdin=LPW + "\n")
MAILDIR = os.path.join(srv.state, "domains", "example.jp", "users", "taro", "Maildir")


def server_files(folder="INBOX", user="taro"):
    md = os.path.join(srv.state, "domains", "example.jp", "users", user, "Maildir")
    if folder != "INBOX":
        md = os.path.join(md, "." + folder)
    return sorted(glob.glob(md + "/new/*") + glob.glob(md + "/cur/*"))


def maildir_flags(path):
    return path.rsplit(":2,", 1)[1] if ":2," in path else ""


def send(to, subject, body, sender="friend@example.org"):
    s = smtplib.SMTP("127.0.0.1", srv.ports["mx"], timeout=30)
    msg = "From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@example.org>\r\n\r\n%s" % (
        sender, to, subject, re.sub(r"\W", "", subject), body)
    s.sendmail(sender, [to], msg.encode())
    s.quit()


def imap(user=USER):
    m = imaplib.IMAP4_SSL("127.0.0.1", srv.ports["imaps"], ssl_context=ctx, timeout=30)
    m.login(user, PW)
    return m


def subjects(m, folder):
    """Subject -> (uid, flags) of every message in the folder, through IMAP."""
    typ, _ = m.select(folder)
    if typ != "OK":
        return None
    typ, data = m.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    out = {}
    for item in data:
        if not isinstance(item, tuple):
            continue
        uid = int(re.search(rb"UID (\d+)", item[0]).group(1))
        flags = re.search(rb"FLAGS \(([^)]*)\)", item[0]).group(1).decode().split()
        subj = email.message_from_bytes(item[1])["Subject"]
        out[subj] = (uid, set(flags))
    m.close()
    return out


def run(argv, **kw):
    kw.setdefault("timeout", 120)
    return subprocess.run(argv, capture_output=True, text=True, **kw)


def curl(url, *extra):
    return run(["curl", "-sSk", "--max-time", "30", "-u", "%s:%s" % (USER, PW)] + list(extra) + [url])


with srv:
    cert = os.path.join(srv.state, "tls", "default.crt")
    for i in range(3):
        send(USER, "inbox %d" % i, "inbox body %d\r\n" % i)
    m = imap()
    m.create("Work")
    for i in range(2):
        m.append("Work", "(\\Seen)", None,
                 ("From: boss@example.jp\r\nSubject: work %d\r\nMessage-ID: <work%d@example.jp>\r\n\r\nwork body %d\r\n"
                  % (i, i, i)).encode())
    m.logout()

    # --- curl ---------------------------------------------------------------------
    imaps = "imaps://127.0.0.1:%d" % srv.ports["imaps"]
    cu = curl(imaps + "/")
    names = [ln.rsplit(" ", 1)[-1].strip('"') for ln in cu.stdout.splitlines()]
    r.check("curl imaps:// lists the folders", cu.returncode == 0 and "INBOX" in names and "Work" in names
            and cu.stdout.startswith("* LIST"), cu.stdout + cu.stderr)
    cu = curl(imaps + "/INBOX;UID=2")
    stored = open(server_files()[1], "rb").read().decode()
    r.check("curl imaps:// UID FETCH of message 2 gives the stored bytes", cu.returncode == 0
            and cu.stdout.replace("\n", "\r\n") == stored and "inbox body 1" in cu.stdout, cu.stdout + cu.stderr)
    cu = curl(imaps + "/INBOX;UID=2/;SECTION=HEADER.FIELDS%20(SUBJECT)")
    r.check("curl imaps:// fetches one header field by section", cu.returncode == 0
            and cu.stdout.strip() == "Subject: inbox 1", cu.stdout + cu.stderr)
    cu = curl(imaps + "/INBOX;UID=99")
    r.check("curl imaps:// of a missing UID fails", cu.returncode != 0, cu.stdout + cu.stderr)
    cu = curl(imaps + "/INBOX", "-X", "SEARCH UNSEEN")
    r.check("curl imaps:// custom SEARCH: its FETCH of message 2 set \\Seen", cu.returncode == 0
            and cu.stdout.split() == ["*", "SEARCH", "1", "3"], cu.stdout + cu.stderr)
    up = os.path.join(work, "upload.eml")
    with open(up, "wb") as f:
        f.write(b"From: taro@example.jp\r\nTo: hanako@example.jp\r\nSubject: uploaded by curl\r\n\r\nappended body\r\n")
    cu = curl(imaps + "/Work", "-T", up)
    work_files = server_files("Work")
    r.check("curl imaps:// -T appends to a folder (in the server's Maildir)", cu.returncode == 0 and len(work_files) == 3
            and any(open(f, "rb").read() == open(up, "rb").read() for f in work_files), cu.stdout + cu.stderr)
    cu = curl("imap://127.0.0.1:%d/Work;UID=3" % srv.ports["imap"], "--ssl-reqd", "-v")
    r.check("curl imap:// --ssl-reqd (STARTTLS) fetches the appended message", cu.returncode == 0
            and "appended body" in cu.stdout and "STARTTLS" in cu.stderr, cu.stdout + cu.stderr[-800:])
    cu = run(["curl", "-sS", "-v", "--max-time", "30", "-u", "%s:%s" % (USER, PW), "imap://127.0.0.1:%d/" % srv.ports["imap"]])
    r.check("curl imap:// without TLS cannot log in, password never sent", cu.returncode != 0 and PW not in cu.stderr,
            cu.stderr[-800:])
    send("old@legacy.example", "for old", "legacy body\r\n")
    cu = run(["curl", "-sS", "-v", "--max-time", "30", "-u", "old@legacy.example:" + LPW,
              "imap://127.0.0.1:%d/INBOX;UID=1" % srv.ports["imap"]])
    r.check("curl imap:// without TLS logs in with CRAM-MD5 (legacy domain, no password on the wire)", cu.returncode == 0
            and "legacy body" in cu.stdout and "AUTHENTICATE CRAM-MD5" in cu.stderr and LPW not in cu.stderr, cu.stderr[-800:])
    cu = run(["curl", "-sSk", "--max-time", "30", "-u", "%s:wrong" % USER, imaps + "/"])
    r.check("curl with a wrong password fails (login denied)", cu.returncode == 67, cu.returncode)

    # --- mbsync (isync) --------------------------------------------------------------
    home = os.path.join(work, "mbsync")
    local = os.path.join(home, "mail")
    os.makedirs(local)
    rc = os.path.join(home, "mbsyncrc")
    with open(rc, "w") as f:
        f.write("""IMAPAccount hk
Host localhost
Port %d
User %s
Pass "%s"
SSLType IMAPS
CertificateFile %s

IMAPStore remote
Account hk

MaildirStore local
Path %s/
Inbox %s/INBOX
SubFolders Verbatim

Channel hk
Far :remote:
Near :local:
Patterns INBOX Work
Create Both
Expunge Both
SyncState *
""" % (srv.ports["imaps"], USER, PW, cert, local, local))

    def mbsync():
        return run(["mbsync", "-c", rc, "-a"], env=dict(os.environ, HOME=home))

    def local_files(folder):
        return sorted(glob.glob(os.path.join(local, folder, "new", "*")) + glob.glob(os.path.join(local, folder, "cur", "*")))

    def local_by_subject(folder):
        return {email.message_from_bytes(open(p, "rb").read())["Subject"]: p for p in local_files(folder)}

    ms = mbsync()
    inbox = local_by_subject("INBOX")
    workl = local_by_subject("Work")
    r.check("mbsync pulls INBOX and a subfolder", ms.returncode == 0 and set(inbox) == {"inbox 0", "inbox 1", "inbox 2"}
            and set(workl) == {"work 0", "work 1", "uploaded by curl"}, ms.stdout + ms.stderr)
    # mbsync stores LF line ends locally and adds its X-TUID header; the server keeps CRLF
    pulled = re.sub(rb"X-TUID: [^\n]*\n", b"", open(inbox["inbox 1"], "rb").read())
    r.check("... with the server's bytes", pulled.replace(b"\n", b"\r\n") == open(server_files()[1], "rb").read(), pulled)
    r.check("... and the server's flags (\\Seen from APPEND)", maildir_flags(workl["work 0"]) == "S"
            and maildir_flags(inbox["inbox 0"]) == "", (workl, inbox))

    # a new message written locally is pushed to the server
    newpath = os.path.join(local, "INBOX", "new", "%d.hktest.local" % int(time.time()))
    with open(newpath, "wb") as f:
        f.write(b"From: taro@example.jp\r\nSubject: written locally\r\nMessage-ID: <local1@example.jp>\r\n\r\nlocal body\r\n")
    ms = mbsync()
    m = imap()
    seen = subjects(m, "INBOX")
    r.check("mbsync pushes a local message (APPEND) to the server", ms.returncode == 0 and "written locally" in seen,
            ms.stdout + ms.stderr + repr(seen))
    r.check("... it is in the server's Maildir", any(b"local body" in open(p, "rb").read() for p in server_files()))
    r.check("... and gets its UID locally (UIDPLUS APPENDUID in the file name)",
            any(",U=%d" % seen["written locally"][0] in p for p in local_files("INBOX")), local_files("INBOX"))

    # flags both ways: \Seen on the server, \Flagged locally
    m.select("INBOX")
    m.uid("STORE", str(seen["inbox 0"][0]), "+FLAGS.SILENT", "(\\Seen)")
    m.close()
    p = local_by_subject("INBOX")["inbox 1"]
    flagged = p.split(":2,")[0] + ":2," + "".join(sorted(set(maildir_flags(p) + "F")))
    if "/new/" in flagged:
        flagged = flagged.replace("/new/", "/cur/")
    os.rename(p, flagged)
    ms = mbsync()
    inbox = local_by_subject("INBOX")
    seen = subjects(m, "INBOX")
    r.check("mbsync: \\Seen set on the server reaches the local Maildir", ms.returncode == 0
            and "S" in maildir_flags(inbox["inbox 0"]), ms.stderr + repr(inbox))
    r.check("mbsync: \\Flagged set locally reaches the server (IMAP), \\Seen kept", seen["inbox 1"][1] == {"\\Flagged", "\\Seen"}, seen)
    srvfile = [f for f in server_files() if b"inbox body 1" in open(f, "rb").read()]
    r.check("... and the server's Maildir file name", len(srvfile) == 1 and maildir_flags(srvfile[0]) == "FS", srvfile)

    # delete on the server with expunge: gone locally
    m.select("INBOX")
    m.uid("STORE", str(seen["inbox 2"][0]), "+FLAGS.SILENT", "(\\Deleted)")
    m.expunge()
    m.close()
    ms = mbsync()
    inbox = local_by_subject("INBOX")
    r.check("mbsync: a message expunged on the server is removed locally", ms.returncode == 0 and "inbox 2" not in inbox
            and len(inbox) == 3, ms.stderr + repr(inbox))
    # delete locally (the file goes): expunged on the server
    os.unlink(local_by_subject("Work")["work 1"])
    ms = mbsync()
    workr = subjects(m, "Work")
    r.check("mbsync: a message deleted locally is expunged on the server", ms.returncode == 0 and "work 1" not in workr
            and len(workr) == 2 and len(server_files("Work")) == 2, ms.stderr + repr(workr))
    # a folder created locally is created on the server
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(local, "Projects", sub))
    rc_text = open(rc).read().replace("Patterns INBOX Work", "Patterns INBOX Work Projects")
    with open(rc, "w") as f:
        f.write(rc_text)
    with open(os.path.join(local, "Projects", "new", "1.hktest.proj"), "wb") as f:
        f.write(b"Subject: project plan\r\n\r\nplan\r\n")
    ms = mbsync()
    projects = subjects(m, "Projects")
    r.check("mbsync creates a local folder on the server (CREATE) and fills it", ms.returncode == 0 and projects is not None
            and list(projects) == ["project plan"] and len(server_files("Projects")) == 1, ms.stderr + repr(projects))
    # large messages both ways: a 2 MB APPEND literal from mbsync, a 3 MB FETCH (sent in chunks) to it
    big_local = b"Subject: big local\n\n" + b"".join(b"%06d %s\n" % (i, b"l" * 60) for i in range(30000))
    with open(os.path.join(local, "Projects", "new", "2.hktest.big"), "wb") as f:
        f.write(big_local)
    big_server = b"Subject: big server\r\n\r\n" + b"".join(b"%06d %s\r\n" % (i, b"s" * 90) for i in range(30000))
    m.append("Projects", None, None, big_server)
    ms = mbsync()
    on_server = [open(f, "rb").read() for f in server_files("Projects")]
    here = local_by_subject("Projects")
    pulled = re.sub(rb"X-TUID: [^\n]*\n", b"", open(here["big server"], "rb").read()) if "big server" in here else b""
    r.check("mbsync pushes a 2 MB message whole", ms.returncode == 0
            and big_local.replace(b"\n", b"\r\n") in [re.sub(rb"X-TUID: [^\r]*\r\n", b"", x) for x in on_server],
            ms.stderr + repr([len(x) for x in on_server]))
    r.check("mbsync pulls a 3 MB message whole", pulled.replace(b"\n", b"\r\n") == big_server, (len(pulled), len(big_server)))
    ms = mbsync()
    r.check("mbsync: a second run with no changes changes nothing", ms.returncode == 0 and len(local_files("INBOX")) == 3
            and len(server_files()) == 3 and len(subjects(m, "INBOX")) == 3, ms.stderr)
    m.logout()

    # --- mutt ---------------------------------------------------------------------------
    # mutt needs a terminal even when driven by `push`: script(1) gives it a pty.
    mhome = os.path.join(work, "mutt")
    os.makedirs(mhome)
    certs = os.path.join(mhome, "certificates")
    shutil.copy(cert, certs)
    out_mbox = os.path.join(mhome, "copied.mbox")
    muttrc = os.path.join(mhome, "muttrc")
    with open(muttrc, "w") as f:
        f.write('''set imap_user="%s"
set imap_pass="%s"
set folder="imaps://localhost:%d/"
set spoolfile="+INBOX"
set certificate_file="%s"
set ssl_verify_host=no
set header_cache=""
set message_cachedir=""
set confirmcreate=no
set confirmappend=no
set move=no
set mark_old=no
set delete=yes
set quit=yes
set wait_key=no
set mbox_type=mbox
set sort=subject
''' % (USER, PW, srv.ports["imaps"], certs))

    def mutt(folder, keys):
        cmd = "mutt -n -F %s -f '=%s' -e 'push \"%s\"'" % (muttrc, folder, keys)
        return run(["script", "-qec", cmd, "/dev/null"], stdin=subprocess.DEVNULL,
                   env=dict(os.environ, HOME=mhome, TERM="vt100", LINES="40", COLUMNS="132"), timeout=60)

    mu = mutt("INBOX", "<tag-pattern>~A<enter><tag-prefix><copy-message>%s<enter><quit>" % out_mbox)
    got = [msg for msg in mailbox.mbox(out_mbox)] if os.path.exists(out_mbox) else []
    r.check("mutt reads INBOX over IMAPS and copies every message to an mbox", mu.returncode == 0
            and sorted(g["Subject"] for g in got) == ["inbox 0", "inbox 1", "written locally"], mu.stdout[-1500:])
    body = [g.get_payload() for g in got if g["Subject"] == "inbox 0"]
    r.check("... with the bodies the server stored", body and body[0].strip() == "inbox body 0", body)
    mu = mutt("Work", "<search>uploaded<enter><delete-message><sync-mailbox><quit>")
    workr = subjects(imap(), "Work")
    r.check("mutt deletes a message and expunges it on the server", mu.returncode == 0 and workr is not None
            and set(workr) == {"work 0"} and len(server_files("Work")) == 1, mu.stdout[-1500:] + repr(workr))

    # --- fetchmail over IMAPS ----------------------------------------------------------
    for i in range(3):
        send("jiro@example.jp", "for fetchmail %d" % i, "fetchmail body %d\r\n" % i)
    fhome = os.path.join(work, "fetchmail")
    got_dir = os.path.join(fhome, "got")
    os.makedirs(got_dir)
    frc = os.path.join(fhome, "fetchmailrc")
    with open(frc, "w") as f:
        f.write('set no bouncemail\npoll localhost service %d protocol imap\n'
                '  user "jiro@example.jp" password "%s" ssl sslcertfile "%s" sslcertck\n'
                '  folder INBOX fetchall\n'
                '  mda "/bin/sh -c \'cat > %s/msg.$$\'"\n' % (srv.ports["imaps"], PW, cert, got_dir))
    os.chmod(frc, 0o600)
    fm = run(["fetchmail", "-f", frc, "--nosyslog", "-i", os.path.join(fhome, "ids"), "--pidfile", os.path.join(fhome, "pid")],
             env=dict(os.environ, HOME=fhome))
    got = sorted(open(f, "rb").read() for f in glob.glob(got_dir + "/msg.*"))
    r.check("fetchmail over IMAPS (certificate checked) fetches every message", fm.returncode == 0 and len(got) == 3
            and all(b"fetchmail body %d" % i in b"".join(got) for i in range(3)), fm.stdout + fm.stderr)
    r.check("... and deletes them on the server (expunged from the Maildir)", server_files(user="jiro") == [],
            server_files(user="jiro"))
    fm = run(["fetchmail", "-f", frc, "--nosyslog", "-i", os.path.join(fhome, "ids"), "--pidfile", os.path.join(fhome, "pid")],
             env=dict(os.environ, HOME=fhome))
    r.check("fetchmail again: no mail (exit 1), nothing fetched twice", fm.returncode == 1
            and len(glob.glob(got_dir + "/msg.*")) == 3, fm.stdout + fm.stderr)

    m = imaplib.IMAP4_SSL("127.0.0.1", srv.ports["imaps"], ssl_context=ctx, timeout=30)
    typ, data = m.authenticate("PLAIN", lambda _: ("\0%s\0%s" % (USER, PW)).encode())
    r.check("imaplib AUTHENTICATE PLAIN (response after the continuation)", typ == "OK", data)
    m.logout()
    log = srv.logtext()
    r.check("IMAP logins of every program are logged", log.count("logged in") >= 10, log[-2000:])

r.done()
