"""POP3 end to end: `hikyaku serve` with Python's poplib over STLS and
implicit TLS, every login mechanism (USER/PASS, APOP, AUTH PLAIN, LOGIN,
CRAM-MD5, SCRAM-SHA-256), RETR/TOP/UIDL/DELE/RSET against the Maildir
(bytes compared with the stored files), the maildrop lock, the UPDATE
commit, pipelining, STLS plaintext injection, limits, curl pop3s:// and
fetchmail with APOP."""
import base64
import glob
import hashlib
import hmac
import os
import poplib
import re
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from hkserver import HIKYAKU, Results, Server, raw  # noqa: E402

r = Results()
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
srv = Server(extra_config="auth_delay_ms 50\nauth_block_after 30\nmax_errors 5\n")
PW = "correct horse battery"
LPW = "a legacy password"


def admin(*args, stdin=None):
    p = subprocess.run([HIKYAKU] + list(args) + ["--state", srv.state], input=stdin, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(args), p.stderr))


admin("domain", "add", "example.jp")
admin("domain", "add", "legacy.example", "--legacy-auth")
admin("user", "add", "taro@example.jp", "--stdin", stdin=PW + "\n")
admin("user", "add", "hanako@example.jp", "--stdin", stdin=PW + "\n")
admin("user", "add", "old@legacy.example", "--stdin", stdin=LPW + "\n")


def maildir(user, domain):
    return os.path.join(srv.state, "domains", domain, "users", user, "Maildir")


def files(user="taro", domain="example.jp"):
    md = maildir(user, domain)
    return sorted(glob.glob(md + "/new/*") + glob.glob(md + "/cur/*"))


def send(to, subject, body, sender="friend@example.org"):
    s = smtplib.SMTP("127.0.0.1", srv.ports["mx"], timeout=30)
    s.ehlo("client.test")
    msg = "From: %s\r\nTo: %s\r\nSubject: %s\r\n\r\n%s" % (sender, to, subject, body)
    s.sendmail(sender, [to], msg.encode())
    s.quit()


def stls(user="taro@example.jp", pw=PW):
    p = poplib.POP3("127.0.0.1", srv.ports["pop3"], timeout=30)
    p.stls(context=ctx)
    if user:
        p.user(user)
        p.pass_(pw)
    return p


def pop3s():
    return poplib.POP3_SSL("127.0.0.1", srv.ports["pop3s"], context=ctx, timeout=30)


def err_of(fn, *a):
    try:
        fn(*a)
        return b""
    except poplib.error_proto as e:
        return e.args[0]


def scram(p, user, password):
    nonce = base64.b64encode(os.urandom(18)).decode()
    first_bare = "n=%s,r=%s" % (user, nonce)
    resp = p._shortcmd("AUTH SCRAM-SHA-256 " + base64.b64encode(("n,," + first_bare).encode()).decode())
    server_first = base64.b64decode(resp[2:]).decode()
    attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"]))
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    final_wo_proof = "c=biws,r=%s" % attrs["r"]
    auth_msg = ",".join([first_bare, server_first, final_wo_proof]).encode()
    proof = bytes(a ^ b for a, b in zip(client_key, hmac.new(stored_key, auth_msg, hashlib.sha256).digest()))
    resp = p._shortcmd(base64.b64encode((final_wo_proof + ",p=" + base64.b64encode(proof).decode()).encode()).decode())
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    want = "v=" + base64.b64encode(hmac.new(server_key, auth_msg, hashlib.sha256).digest()).decode()
    if base64.b64decode(resp[2:]).decode() != want:
        return b"server signature mismatch"
    return p._shortcmd("")


with srv:
    for i in range(3):
        send("taro@example.jp", "message %d" % i, "line one\r\n.dotted line\r\nlast %d\r\n" % i)
    big = "".join("%06d %s\r\n" % (i, "x" * 70) for i in range(40000))  # ~3 MB
    send("taro@example.jp", "big one", big)
    send("old@legacy.example", "for old", "legacy body\r\n")

    # --- before TLS -----------------------------------------------------------------
    p = poplib.POP3("127.0.0.1", srv.ports["pop3"], timeout=30)
    welcome = p.getwelcome()
    r.check("greeting has an APOP timestamp", b"<" in welcome and b"@" in welcome and welcome.startswith(b"+OK"), welcome)
    capa = p.capa()
    r.check("CAPA before TLS: STLS, no USER, no PLAIN/LOGIN", "STLS" in capa and "USER" not in capa
            and "PLAIN" not in capa.get("SASL", []) and {"SCRAM-SHA-256", "CRAM-MD5"} <= set(capa.get("SASL", [])), capa)
    r.check("USER before TLS refused with [AUTH]", b"[AUTH]" in err_of(p.user, "taro@example.jp"))
    p.stls(context=ctx)
    capa = p.capa()
    r.check("CAPA after STLS: USER, PLAIN, LOGIN, no STLS", "USER" in capa and "STLS" not in capa
            and {"PLAIN", "LOGIN", "SCRAM-SHA-256"} <= set(capa.get("SASL", [])), capa)
    p.user("taro@example.jp")
    r.check("USER/PASS after STLS", p.pass_(PW).startswith(b"+OK"))

    # --- transaction ------------------------------------------------------------------
    count, octets = p.stat()
    stored = files()
    r.check("STAT counts the Maildir", count == 4 and octets == sum(os.path.getsize(f) for f in stored), (count, octets))
    _, listing, _ = p.list()
    sizes = sorted(int(x.split()[1]) for x in listing)
    r.check("LIST sizes are the stored sizes", sizes == sorted(os.path.getsize(f) for f in stored), listing)
    _, uidls, _ = p.uidl()
    uidl = {int(x.split()[0]): x.split()[1].decode() for x in uidls}
    r.check("UIDL: unique, printable, <= 70 chars", len(set(uidl.values())) == 4
            and all(0 < len(u) <= 70 and all(33 <= ord(ch) <= 126 for ch in u) for u in uidl.values()), uidl)
    r.check("UIDL n", p.uidl(2).split()[2].decode() == uidl[2])
    _, lines, _ = p.retr(1)
    by_uidl = {os.path.basename(f).split(",")[0].split(":")[0]: f for f in stored}
    want = open(by_uidl[uidl[1]], "rb").read()
    r.check("RETR returns the stored bytes (dot-stuffing undone by poplib)", b"\r\n".join(lines) + b"\r\n" == want)
    r.check("messages numbered in delivery order", b"Subject: message 0" in want)
    _, lines, _ = p.top(2, 1)
    body_at = lines.index(b"")
    r.check("TOP 2 1: header, blank line, one body line", lines[body_at + 1:] == [b"line one"], lines[-3:])
    _, lines, _ = p.top(2, 0)
    r.check("TOP 2 0: header only", lines[-1] == b"" and b"line one" not in lines)
    _, lines, octs = p.retr(4)
    r.check("RETR of a 3 MB message streams it whole", b"\r\n".join(lines).endswith(b"039999 " + b"x" * 70)
            and len(lines) > 40000, len(lines))
    r.check("RETR of a missing message", err_of(p.retr, 9).startswith(b"-ERR"))
    r.check("DELE 1", p.dele(1).startswith(b"+OK"))
    r.check("RETR of a deleted message refused", b"deleted" in err_of(p.retr, 1))
    r.check("STAT leaves out deleted messages", p.stat()[0] == 3)
    r.check("RSET undeletes", p.rset().startswith(b"+OK") and p.stat()[0] == 4)
    p.dele(1)
    p.dele(2)

    # --- the lock: a second POP3 session waits; IMAP/webmail would not -------------------
    q = stls(user=None)
    q.user("taro@example.jp")
    r.check("second POP3 login gets [IN-USE]", b"[IN-USE]" in err_of(q.pass_, PW))
    r.check("other users are not locked", stls("hanako@example.jp").quit().startswith(b"+OK"))
    r.check("QUIT commits", p.quit().startswith(b"+OK"))
    left = files()
    r.check("deleted files are gone from the Maildir", len(left) == 2 and not any(uidl[1] in f or uidl[2] in f for f in left), left)
    seen = [f for f in left if ":2," in f and "S" in f.split(":2,")[1]]
    r.check("retrieved, kept message marked \\Seen (message 4)", len(seen) == 1 and uidl[4] in seen[0], left)
    q.user("taro@example.jp")
    r.check("login works once the lock is free", q.pass_(PW).startswith(b"+OK") and q.stat()[0] == 2)
    r.check("UIDL stable across sessions", q.uidl(2).split()[2].decode() == uidl[4])
    q.dele(1)
    q.file.close()
    q.sock.close()  # disconnect without QUIT: no UPDATE
    time.sleep(0.3)
    r.check("DELE without QUIT deletes nothing", len(files()) == 2)

    # --- implicit TLS and the SASL mechanisms --------------------------------------------
    p = pop3s()
    plain = base64.b64encode(b"\0taro@example.jp\0" + PW.encode()).decode()
    r.check("POP3S AUTH PLAIN with initial response", p._shortcmd("AUTH PLAIN " + plain).startswith(b"+OK"))
    p.quit()
    p = pop3s()
    resp = p._shortcmd("AUTH PLAIN")
    r.check("AUTH PLAIN without initial response: empty challenge", resp.strip() == b"+")
    r.check("... then the credentials", p._shortcmd(plain).startswith(b"+OK"))
    p.quit()
    p = pop3s()
    c1 = p._shortcmd("AUTH LOGIN")
    c2 = p._shortcmd(base64.b64encode(b"taro@example.jp").decode())
    ok = p._shortcmd(base64.b64encode(PW.encode()).decode())
    r.check("AUTH LOGIN", base64.b64decode(c1[2:]) == b"Username:" and base64.b64decode(c2[2:]) == b"Password:" and ok.startswith(b"+OK"))
    p.quit()
    p = pop3s()
    r.check("AUTH SCRAM-SHA-256 (server signature verified)", scram(p, "taro@example.jp", PW).startswith(b"+OK"))
    p.quit()
    p = pop3s()
    ch = base64.b64decode(p._shortcmd("AUTH CRAM-MD5")[2:])
    dig = hmac.new(LPW.encode(), ch, hashlib.md5).hexdigest()
    r.check("AUTH CRAM-MD5 (legacy domain)", p._shortcmd(base64.b64encode(b"old@legacy.example " + dig.encode()).decode()).startswith(b"+OK"))
    p.quit()
    p = pop3s()
    r.check("APOP (legacy domain)", p.apop("old@legacy.example", LPW).startswith(b"+OK") and p.stat()[0] == 1)
    p.quit()
    p = pop3s()
    r.check("APOP for a domain without legacy mechanisms fails", b"[AUTH]" in err_of(p.apop, "taro@example.jp", PW))
    r.check("wrong password: -ERR [AUTH]", b"[AUTH]" in err_of(lambda: (p.user("taro@example.jp"), p.pass_("nope"))))
    p.quit()
    p = pop3s()
    p._putcmd("AUTH PLAIN")
    p._getresp()
    r.check("SASL cancelled with *", p._shortcmd("*") == b"" if False else err_of(p._shortcmd, "*").startswith(b"-ERR"))
    r.check("malformed base64 refused", err_of(p._shortcmd, "AUTH PLAIN %%%%").startswith(b"-ERR"))
    r.check("unknown mechanism refused", err_of(p._shortcmd, "AUTH GSSAPI").startswith(b"-ERR"))
    p.quit()

    # --- pipelining, injection, limits -------------------------------------------------
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", srv.ports["pop3s"]), timeout=5))
    s.recv(1024)
    s.sendall(("USER taro@example.jp\r\nPASS %s\r\nSTAT\r\nUIDL 1\r\nNOOP\r\nQUIT\r\n" % PW).encode())
    out = b""
    deadline = time.time() + 10
    while out.count(b"\r\n") < 6 and time.time() < deadline:
        d = s.recv(4096)
        if not d:
            break
        out += d
    s.close()
    resp = out.split(b"\r\n")
    r.check("pipelined commands answered in order", len(resp) >= 6 and resp[0].startswith(b"+OK") and resp[2].startswith(b"+OK 2 ")
            and resp[3].startswith(b"+OK 1 ") and resp[5].startswith(b"+OK Bye"), resp)
    s = socket.create_connection(("127.0.0.1", srv.ports["pop3"]), timeout=5)
    s.recv(1024)
    s.sendall(b"STLS\r\nCAPA\r\n")
    time.sleep(0.3)
    first = s.recv(4096)
    t = ctx.wrap_socket(s)
    t.sendall(b"NOOP\r\n")
    t.settimeout(2)
    after = t.recv(4096)
    r.check("plaintext pipelined after STLS is dropped", first.startswith(b"+OK Begin TLS") and b"Capability" not in first
            and after.startswith(b"-ERR Not logged in"), (first, after))
    t.close()
    out = raw(srv.ports["pop3"], b"USER " + b"a" * 10000 + b"\r\nNOOP\r\n", wait=0.5)
    r.check("over-long line refused, session goes on", b"-ERR Line too long" in out and out.count(b"-ERR") == 2, out[:200])
    out = raw(srv.ports["pop3"], b"FOO\r\n" * 8, wait=0.5)
    r.check("error budget closes the session", out.count(b"-ERR Unknown command") == 5 and b"Too many errors" in out, out)
    out = raw(srv.ports["pop3"], b"STAT\r\nRETR 1\r\n", wait=0.5)
    r.check("transaction commands before login refused", out.count(b"-ERR Not logged in") == 2, out)

    # --- read-ahead: 120 pipelined RETRs, a TOP and QUIT while a background read runs ----
    for i in range(120):
        send("hanako@example.jp", "bulk %03d" % i, "body of %03d\r\n" % i)
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", srv.ports["pop3s"]), timeout=10))
    s.recv(1024)
    req = ("USER hanako@example.jp\r\nPASS %s\r\n" % PW) + "".join("RETR %d\r\n" % i for i in range(1, 121)) + "TOP 60 0\r\nQUIT\r\n"
    s.sendall(req.encode())
    out = b""
    s.settimeout(10)
    while not out.endswith(b"+OK Bye\r\n"):
        d = s.recv(65536)
        if not d:
            break
        out += d
    s.close()
    bodies = re.findall(rb"Subject: bulk (\d{3})", out)
    r.check("120 pipelined RETRs answered in order (read-ahead in the background)",
            [int(b) for b in bodies[:120]] == list(range(120)) and b"body of 119" in out, len(bodies))
    r.check("TOP and QUIT that waited for the read-ahead are answered", out.count(b"+OK Top of message follows") == 1
            and out.endswith(b"+OK Bye\r\n"), out[-200:])

    # --- real clients -------------------------------------------------------------------
    send("taro@example.jp", "for curl", "hello curl\r\n")
    cu = subprocess.run(["curl", "-sSk", "--max-time", "20", "pop3s://127.0.0.1:%d/" % srv.ports["pop3s"], "-u", "taro@example.jp:" + PW],
                        capture_output=True, text=True)
    r.check("curl pop3s:// lists", cu.returncode == 0 and len(cu.stdout.strip().splitlines()) == 3, cu.stdout + cu.stderr)
    cu = subprocess.run(["curl", "-sSk", "--max-time", "20", "--ssl-reqd", "pop3://127.0.0.1:%d/3" % srv.ports["pop3"], "-u", "taro@example.jp:" + PW],
                        capture_output=True, text=True)
    r.check("curl pop3:// with STLS retrieves", cu.returncode == 0 and "hello curl" in cu.stdout, cu.stderr)
    cu = subprocess.run(["curl", "-sSk", "--max-time", "20", "--login-options", "AUTH=SCRAM-SHA-256", "pop3s://127.0.0.1:%d/3" % srv.ports["pop3s"],
                         "-u", "taro@example.jp:" + PW], capture_output=True, text=True)
    # curl has no SCRAM: it must fail cleanly rather than fall back to plaintext
    r.check("curl with a mechanism it lacks fails cleanly", cu.returncode != 0)
    cu = subprocess.run(["curl", "-sS", "-v", "--max-time", "20", "pop3://127.0.0.1:%d/1" % srv.ports["pop3"],
                         "-u", "old@legacy.example:" + LPW], capture_output=True, text=True)
    r.check("curl without TLS logs in with CRAM-MD5 (no password on the wire)", cu.returncode == 0 and "legacy body" in cu.stdout
            and "AUTH CRAM-MD5" in cu.stderr and LPW not in cu.stderr, cu.stderr[-500:])

    home = tempfile.mkdtemp(prefix="hk-fetchmail-")
    out_dir = os.path.join(home, "got")
    os.mkdir(out_dir)
    rc = os.path.join(home, "fetchmailrc")
    with open(rc, "w") as f:
        f.write('set no bouncemail\npoll 127.0.0.1 service %d protocol apop\n'
                '  user "old@legacy.example" password "%s" ssl no sslcertck\n'
                '  mda "/bin/sh -c \'cat > %s/msg.$$\'"\n' % (srv.ports["pop3s"], LPW, out_dir))
    os.chmod(rc, 0o600)
    fm = subprocess.run(["fetchmail", "-f", rc, "--nosyslog", "-i", os.path.join(home, "ids"), "--pidfile", os.path.join(home, "pid")],
                        capture_output=True, text=True, env=dict(os.environ, HOME=home), timeout=60)
    got = [open(f, "rb").read() for f in glob.glob(out_dir + "/msg.*")]
    r.check("fetchmail with APOP over POP3S fetches the message", fm.returncode == 0 and len(got) == 1 and b"legacy body" in got[0],
            fm.stdout + fm.stderr)
    r.check("... and deleted it on the server", files("old", "legacy.example") == [])
    log = srv.logtext()
    r.check("logins and logouts are logged", "[pop3]" in log and "logged in" in log and "logged out" in log)

# --- idle timeout: autologout without UPDATE ---------------------------------------------
srv2 = Server(extra_config="timeout_pop3 1\n")
admin2 = lambda *a, stdin=None: subprocess.run([HIKYAKU] + list(a) + ["--state", srv2.state], input=stdin, capture_output=True, text=True)
admin2("domain", "add", "example.jp")
admin2("user", "add", "taro@example.jp", "--stdin", stdin=PW + "\n")
with srv2:
    s = smtplib.SMTP("127.0.0.1", srv2.ports["mx"], timeout=30)
    s.sendmail("a@example.org", ["taro@example.jp"], b"Subject: t\r\n\r\nx\r\n")
    s.quit()
    p = poplib.POP3_SSL("127.0.0.1", srv2.ports["pop3s"], context=ctx, timeout=30)
    p.user("taro@example.jp")
    p.pass_(PW)
    p.dele(1)
    time.sleep(2)
    try:
        line = p.file.readline()
    except OSError as e:
        line = str(e).encode()
    left = glob.glob(os.path.join(srv2.state, "domains/example.jp/users/taro/Maildir/*/*"))
    r.check("idle session autologged out, DELE not committed", b"Autologout" in line and len([f for f in left if "/new/" in f or "/cur/" in f]) == 1, (line, left))
r.done()
