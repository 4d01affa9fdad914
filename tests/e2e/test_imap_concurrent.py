"""IMAP sessions sharing a mailbox, and IMAP against hostile input, on a
real `hikyaku serve`.

Concurrency (issue 4): two imaplib clients with INBOX selected and a
poplib client on the same mailbox. IDLE wakes within a second of an SMTP
delivery and of a file dropped into the Maildir by another program; one
client's STORE reaches the other as an untagged FETCH; an EXPUNGE reaches
the other at its next NOOP but never during a FETCH (RFC 3501 7.4.1); a
POP3 session's deletions reach both IMAP clients once it QUITs; a second
POP3 login gets [IN-USE] while IMAP goes on. UIDs and UIDVALIDITY survive
a restart, and a restart with the index files deleted.

Hostile input: literals over the pre-login cap ({n} refused without a
continuation, {n+} discarded, a huge {n+} ends the connection), nesting
past the limit, a 100 KB line, the error budget, plaintext pipelined after
STARTTLS, and failed-login accounting across a successful login."""
import glob
import imaplib
import os
import poplib
import re
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
USER = "taro@example.jp"
PW = "correct horse battery"
CONF = "auth_delay_ms 50\nauth_block_after 4\nmax_errors 5\n"
srv = Server(extra_config=CONF)


def admin(*args, stdin=None):
    p = subprocess.run([HIKYAKU] + list(args) + ["--state", srv.state], input=stdin, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(args), p.stderr))


admin("domain", "add", "example.jp")
admin("user", "add", USER, "--stdin", stdin=PW + "\n")
admin("user", "add", "jiro@example.jp", "--stdin", stdin=PW + "\n")
MAILDIR = os.path.join(srv.state, "domains", "example.jp", "users", "taro", "Maildir")


def send(subject, to=USER):
    s = smtplib.SMTP("127.0.0.1", srv.ports["mx"], timeout=30)
    s.sendmail("friend@example.org", [to], ("From: friend@example.org\r\nTo: %s\r\nSubject: %s\r\n\r\nbody of %s\r\n"
                                            % (to, subject, subject)).encode())
    s.quit()


def imap():
    m = imaplib.IMAP4_SSL("127.0.0.1", srv.ports["imaps"], ssl_context=ctx, timeout=30)
    m.login(USER, PW)
    return m


def command(m, line):
    """Sends one command and returns (untagged lines, tagged line) as bytes, read raw."""
    tag = m._new_tag()
    m.send(tag + b" " + line.encode() + b"\r\n")
    untagged = []
    while True:
        ln = m.readline()
        if not ln:
            return untagged, b""
        if ln.startswith(tag + b" "):
            return untagged, ln.rstrip()
        untagged.append(ln.rstrip())
        lit = re.search(rb"\{(\d+)\}$", ln.rstrip())
        if lit:
            untagged.append(m.read(int(lit.group(1))))


def idle_start(m):
    tag = m._new_tag()
    m.send(tag + b" IDLE\r\n")
    cont = m.readline()
    return tag, cont


def idle_wait(m, pattern, timeout):
    """Reads untagged lines in IDLE until one matches; (line, seconds) or (None, lines seen)."""
    t0 = time.time()
    seen = []
    m.sock.settimeout(timeout)
    try:
        while time.time() - t0 < timeout:
            ln = m.readline()
            if not ln:
                break
            seen.append(ln.rstrip())
            if re.search(pattern, ln):
                return ln.rstrip(), time.time() - t0
    except (socket.timeout, TimeoutError, ssl.SSLError):
        pass
    finally:
        m.sock.settimeout(30)
    return None, seen


def idle_done(m, tag):
    m.send(b"DONE\r\n")
    lines = []
    while True:
        ln = m.readline()
        lines.append(ln.rstrip())
        if not ln or ln.startswith(tag + b" "):
            return lines


def uid_map(m):
    """UID -> sequence number, and UIDVALIDITY, of the selected INBOX (EXAMINE: nothing changes)."""
    m.select("INBOX", readonly=True)
    _, uvd = m.response("UIDVALIDITY")  # imaplib keeps "* OK [UIDVALIDITY n]" under its code
    uv = int(uvd[0]) if uvd and uvd[0] else None
    typ, data = m.fetch("1:*", "(UID)")
    out = {}
    for d in data:
        mt = re.match(rb"(\d+) \(UID (\d+)\)", d or b"")
        if mt:
            out[int(mt.group(2))] = int(mt.group(1))
    m.close()
    return uv, out


with srv:
    for i in range(5):
        send("first %d" % i)
    a = imap()
    b = imap()
    a.select("INBOX")
    b.select("INBOX")

    # --- IDLE wakes on an SMTP delivery ------------------------------------------------
    tag, cont = idle_start(a)
    r.check("IDLE answers with a continuation", cont.startswith(b"+"), cont)
    t0 = time.time()
    send("during idle")
    line, took = idle_wait(a, rb"^\* 6 EXISTS", 5)
    total = time.time() - t0
    r.check("IDLE wakes with * 6 EXISTS within 1.5 s of the end of the SMTP delivery", line is not None and took < 1.5,
            (line, took, total))

    # --- a file another program drops into the Maildir (inotify) ------------------------
    now = time.time()  # a name in the usual form: POP3 numbers by its time
    name = "%d.M%06dP1.otherprogram" % (int(now), int(now * 1e6) % 1000000)
    with open(os.path.join(MAILDIR, "tmp", name), "wb") as f:
        f.write(b"From: other@example.org\r\nSubject: dropped in\r\n\r\nby another program\r\n")
    t0 = time.time()
    os.rename(os.path.join(MAILDIR, "tmp", name), os.path.join(MAILDIR, "new", name))
    line, took = idle_wait(a, rb"^\* 7 EXISTS", 5)
    r.check("IDLE wakes within 1.5 s of a message another program moved into new/", line is not None and took < 1.5,
            (line, took))

    # --- B's STORE reaches A (still in IDLE) as an untagged FETCH ----------------------------
    _, tagged = command(b, "STORE 2 +FLAGS (\\Flagged)")
    line, took = idle_wait(a, rb"^\* 2 FETCH \(.*\\Flagged", 5)
    r.check("B's STORE \\Flagged: A in IDLE gets * 2 FETCH (FLAGS (\\Flagged))", tagged.split()[1] == b"OK"
            and line is not None and took < 1.5, (tagged, line, took))
    done = idle_done(a, tag)
    r.check("DONE ends IDLE with OK", done[-1].split()[1:2] == [b"OK"], done)

    # --- B expunges: A learns at NOOP, never during FETCH ---------------------------------
    _, tagged = command(b, "STORE 3 +FLAGS.SILENT (\\Deleted)")
    bu, bt = command(b, "EXPUNGE")
    r.check("B: EXPUNGE answers * 3 EXPUNGE", b"* 3 EXPUNGE" in bu and bt.split()[1] == b"OK", (bu, bt))
    time.sleep(0.3)
    fu, ft = command(a, "FETCH 1:* (FLAGS)")
    r.check("A: FETCH right after B's EXPUNGE carries no EXPUNGE (RFC 3501 7.4.1)", ft.split()[1] == b"OK"
            and not any(b"EXPUNGE" in x for x in fu) and sum(1 for x in fu if b" FETCH " in x) == 7, (fu, ft))
    nu, nt = command(a, "NOOP")
    r.check("A: the next NOOP gets * 3 EXPUNGE", b"* 3 EXPUNGE" in nu and nt.split()[1] == b"OK", (nu, nt))
    su, st = command(a, "SEARCH ALL")
    r.check("A and B agree: 6 messages", su == [b"* SEARCH 1 2 3 4 5 6"], su)

    # --- a POP3 session on the same mailbox ------------------------------------------------
    p = poplib.POP3_SSL("127.0.0.1", srv.ports["pop3s"], context=ctx, timeout=30)
    p.user(USER)
    p.pass_(PW)
    count = p.stat()[0]
    r.check("POP3 logs in while both IMAP clients have INBOX selected", count == 6, count)
    _, lines, _ = p.top(1, 0)
    r.check("POP3 message 1 is IMAP's message 1", b"Subject: first 0" in lines, lines)
    p.dele(1)
    q = poplib.POP3_SSL("127.0.0.1", srv.ports["pop3s"], context=ctx, timeout=30)
    q.user(USER)
    try:
        q.pass_(PW)
        in_use = b""
    except poplib.error_proto as e:
        in_use = e.args[0]
    q.quit()
    r.check("a second POP3 login gets [IN-USE]", b"[IN-USE]" in in_use, in_use)
    au, at = command(a, "UID FETCH 1:* (UID)")
    bu2, bt2 = command(b, "STORE 1 +FLAGS (\\Seen)")
    r.check("IMAP keeps working while POP3 holds its lock", at.split()[1] == b"OK" and bt2.split()[1] == b"OK"
            and len(au) == 6, (au, at, bt2))
    nu, nt = command(a, "NOOP")
    r.check("A's NOOP: B's \\Seen as * 1 FETCH, no expunge before POP3 QUIT (DELE is not committed)",
            not any(b"EXPUNGE" in x for x in nu) and any(re.match(rb"\* 1 FETCH \(.*\\Seen", x) for x in nu), nu)
    r.check("POP3 QUIT commits", p.quit().startswith(b"+OK"))
    time.sleep(0.3)
    nu, nt = command(a, "NOOP")
    r.check("after POP3 QUIT, A gets * 1 EXPUNGE at NOOP", b"* 1 EXPUNGE" in nu, nu)
    nu, nt = command(b, "NOOP")
    r.check("... and so does B", b"* 1 EXPUNGE" in nu, nu)
    su, _ = command(a, "UID SEARCH ALL")
    sb, _ = command(b, "UID SEARCH ALL")
    r.check("A and B hold the same UIDs", su == sb and len(su[0].split()) == 2 + 5, (su, sb))

    # --- IDLE with both: a delivery wakes both ----------------------------------------------
    ta, _ = idle_start(a)
    tb, _ = idle_start(b)
    send("two idlers")
    la, tka = idle_wait(a, rb"^\* 6 EXISTS", 5)
    lb, tkb = idle_wait(b, rb"^\* 6 EXISTS", 5)
    r.check("a delivery wakes both IDLE sessions", la is not None and lb is not None, (la, lb))
    idle_done(a, ta)
    idle_done(b, tb)

    # --- a POP3 commit wakes an IDLE session with EXPUNGE (IDLE allows it) -----------------
    ta, _ = idle_start(a)
    p = poplib.POP3_SSL("127.0.0.1", srv.ports["pop3s"], context=ctx, timeout=30)
    p.user(USER)
    p.pass_(PW)
    p.dele(1)
    p.quit()
    la, tk = idle_wait(a, rb"^\* 1 EXPUNGE", 5)
    r.check("a POP3 QUIT with DELE: A in IDLE gets * 1 EXPUNGE within 1.5 s", la is not None and tk < 1.5, (la, tk))
    idle_done(a, ta)
    command(b, "NOOP")

    # --- B's APPEND and MOVE ------------------------------------------------------------
    b.create("Work")
    ta, _ = idle_start(a)
    typ, data = b.append("INBOX", None, None, b"From: b@example.jp\r\nSubject: appended by B\r\n\r\nx\r\n")
    la, tk = idle_wait(a, rb"^\* 6 EXISTS", 5)
    r.check("B's APPEND to INBOX wakes A in IDLE (* 6 EXISTS)", typ == "OK" and la is not None and tk < 1.5, (data, la, tk))
    idle_done(a, ta)
    uid = re.search(rb"APPENDUID \d+ (\d+)", data[0]).group(1).decode()
    mu, mt = command(b, "UID MOVE %s Work" % uid)
    r.check("B: UID MOVE to Work answers COPYUID and * 6 EXPUNGE", mt.split()[1] == b"OK"
            and any(b"COPYUID" in x for x in mu + [mt]) and b"* 6 EXPUNGE" in mu, (mu, mt))
    nu, nt = command(a, "NOOP")
    r.check("A: NOOP after B's MOVE gets * 6 EXPUNGE", b"* 6 EXPUNGE" in nu, nu)
    su, _ = command(a, "STATUS Work (MESSAGES)")
    r.check("A: STATUS Work counts the moved message", su == [b"* STATUS Work (MESSAGES 1)"], su)
    a.logout()
    b.logout()

    m = imap()
    uv_before, uids_before = uid_map(m)
    m.logout()

# --- restarts: UIDs and UIDVALIDITY are kept ----------------------------------------------
with srv:
    m = imap()
    uv, uids = uid_map(m)
    m.logout()
    r.check("after a restart: same UIDVALIDITY and UIDs", uv == uv_before and uids == uids_before and len(uids) == 5,
            (uv_before, uv, uids_before, uids))
index = glob.glob(os.path.join(MAILDIR, "hikyaku-uidlist*"))
for f in index:
    os.unlink(f)
with srv:
    m = imap()
    uv, uids = uid_map(m)
    typ, data = m.select("INBOX")
    send("after rebuild")
    m.noop()
    typ, data = m.uid("SEARCH", "ALL")
    m.logout()
    r.check("index files deleted (%d), restart: same UIDVALIDITY and UIDs" % len(index), len(index) >= 1
            and uv == uv_before and uids == uids_before, (uv_before, uv, uids_before, uids))
    newest = int(data[0].split()[-1])
    r.check("... and a new delivery gets a UID above every earlier one", newest > max(uids_before), (data, uids_before))

    # --- hostile input ------------------------------------------------------------------
    def raw(data, port="imap", wait=0.5, tls=False, sock=None):
        s = sock or socket.create_connection(("127.0.0.1", srv.ports[port]), timeout=5)
        if tls:
            s = ctx.wrap_socket(s)
        if not sock:
            s.recv(4096)
        out = b""
        for chunk in data if isinstance(data, list) else [data]:
            try:
                s.sendall(chunk)
            except OSError:
                break
            time.sleep(wait)
        s.settimeout(1)
        try:
            while True:
                d = s.recv(65536)
                if not d:
                    break
                out += d
        except (socket.timeout, TimeoutError, ConnectionResetError):
            pass
        s.close()
        return out

    out = raw([b"a1 LOGIN {20000}\r\n", b"x" * 100 + b"\r\n", b"a2 NOOP\r\n"])
    r.check("LOGIN {20000} before login: refused without '+', session goes on",
            b"a1 BAD" in out and b"too large" in out.lower() and b"\r\n+ " not in out and b"a2 OK" in out, out)
    out = raw([b"a1 LOGIN {20000+}\r\n" + b"x" * 20000 + b" pw\r\n", b"a2 NOOP\r\n"])
    r.check("LOGIN {20000+} before login: literal discarded, BAD, session goes on",
            b"a1 BAD" in out and b"a2 OK" in out, out)
    out = raw([b"a1 APPEND INBOX {10}\r\n", b"0123456789\r\n", b"a2 NOOP\r\n"])
    r.check("APPEND before login: BAD without '+'", b"a1 BAD" in out and b"\r\n+ " not in out and b"a2 OK" in out, out)
    big = 2 * 1024 * 1024
    s = socket.create_connection(("127.0.0.1", srv.ports["imap"]), timeout=5)
    s.recv(4096)
    s.sendall(b"a1 LOGIN {%d+}\r\n" % big)
    sent = 0
    try:
        while sent < big:
            s.sendall(b"x" * 65536)
            sent += 65536
    except OSError:
        pass
    out = raw(b"", sock=s)
    r.check("a {2 MiB+} literal before login ends the connection with BYE", b"* BYE" in out, (sent, out))
    out = raw(b"a1 CAPABILITY\r\n" + b"a2 NOOP " + b"x" * 100000 + b"\r\na3 NOOP\r\n")
    r.check("a 100 KB line: BAD, then the session goes on", b"a1 OK" in out and b"BAD" in out and b"a3 OK" in out, out[-300:])
    out = raw(b"".join(b"e%d FOO\r\n" % i for i in range(8)))
    r.check("error budget (max_errors 5) closes the session", out.count(b" BAD ") == 5 and b"* BYE" in out
            and b"e5 " not in out, out)
    login = ("l1 LOGIN %s \"%s\"\r\n" % (USER, PW)).encode()
    out = raw([login, b"s1 SEARCH " + b"(" * 100 + b"ALL" + b")" * 100 + b"\r\n", b"s2 SELECT INBOX\r\n",
               b"s3 SEARCH " + b"NOT " * 100 + b"ALL\r\n", b"s4 NOOP\r\n"], port="imaps", tls=True)
    r.check("SEARCH nested 100 deep: BAD, session goes on", b"l1 OK" in out and b"s1 BAD" in out and b"s2 OK" in out, out[-400:])
    r.check("NOT NOT ... 100 deep: BAD", b"s3 BAD" in out and b"s4 OK" in out, out[-400:])
    out = raw([login, b"p1 APPEND INBOX {999999999}\r\n", b"p2 NOOP\r\n"], port="imaps", tls=True)
    r.check("APPEND of 1 GB after login: NO [TOOBIG] without '+', session goes on", b"p1 NO [TOOBIG]" in out
            and b"\r\n+ " not in out and b"p2 OK" in out, out[-400:])

    # STARTTLS with a command pipelined in plaintext behind it
    s = socket.create_connection(("127.0.0.1", srv.ports["imap"]), timeout=5)
    s.recv(4096)
    s.sendall(b"t1 STARTTLS\r\n" + login.replace(b"l1", b"x1") + b"x2 SELECT INBOX\r\n")
    time.sleep(0.3)
    first = s.recv(4096)
    t = ctx.wrap_socket(s)
    t.sendall(b"t2 SELECT INBOX\r\nt3 CAPABILITY\r\n")
    after = raw(b"", sock=t)
    r.check("plaintext pipelined after STARTTLS is dropped (the injected LOGIN never runs)",
            first.startswith(b"t1 OK") and b"x1" not in first + after and b"x2" not in first + after
            and (b"t2 BAD" in after or b"t2 NO" in after), (first, after))
    r.check("... and the session after TLS is not logged in", b"t3 OK" in after and b"AUTH=PLAIN" in after, after)

    # failed logins (auth_block_after 4): the client's count is not cleared
    # by one success, so a guesser holding one valid account cannot reset it
    def try_login(pw):
        m = imaplib.IMAP4_SSL("127.0.0.1", srv.ports["imaps"], ssl_context=ctx, timeout=30)
        try:
            m.login("jiro@example.jp", pw)
            m.logout()
            return "OK"
        except imaplib.IMAP4.error as e:
            return str(e)

    res = [try_login("wrong") for _ in range(3)] + [try_login(PW)]
    r.check("3 failed logins: NO [AUTHENTICATIONFAILED]; the right password still works",
            all("AUTHENTICATIONFAILED" in x for x in res[:3]) and res[3] == "OK", res)
    res = [try_login("wrong"), try_login(PW)]
    r.check("the 4th failure blocks the client, even with the right password", "AUTHENTICATIONFAILED" in res[0]
            and "UNAVAILABLE" in res[1], res)
    log = srv.logtext()
    r.check("logins and failures are logged", "jiro@example.jp logged in" in log and "authentication failed" in log)

r.done()
