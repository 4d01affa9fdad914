"""IMAP4rev1 end to end: `hikyaku serve` with Python's imaplib (and raw
sockets where imaplib cannot go) over STARTTLS and IMAPS: the login
mechanisms, folders (LIST/LSUB/CREATE/DELETE/RENAME/SUBSCRIBE/STATUS,
modified UTF-7), SELECT/EXAMINE, APPEND (synchronising and LITERAL+),
FETCH (ENVELOPE, BODYSTRUCTURE, sections, partial, \\Seen), SEARCH (every
kind of key, Japanese text in ISO-2022-JP mail), STORE with CONDSTORE,
COPY/MOVE with UIDPLUS, EXPUNGE, IDLE woken by a delivery, two sessions
seeing each other, UIDs stable across a restart, errors and limits."""
import base64
import hashlib
import hmac
import imaplib
import os
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
srv = Server(extra_config="auth_delay_ms 50\nauth_block_after 40\nmax_errors 6\n")
PW = "correct horse battery"
LPW = "a legacy password"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def admin(*args, stdin=None):
    p = subprocess.run([HIKYAKU] + list(args) + ["--state", srv.state], input=stdin, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(args), p.stderr))


admin("domain", "add", "example.jp")
admin("domain", "add", "legacy.example", "--legacy-auth")
admin("user", "add", "taro@example.jp", "--stdin", stdin=PW + "\n")
admin("user", "add", "old@legacy.example", "--stdin", stdin=LPW + "\n")


def send(to, raw):
    s = smtplib.SMTP("127.0.0.1", srv.ports["mx"], timeout=30)
    s.sendmail("friend@example.org", [to], raw)
    s.quit()


def msg(subject, body, extra=""):
    return ("From: Friend <friend@example.org>\r\nTo: taro@example.jp\r\nSubject: %s\r\n"
            "Date: Mon, 02 Nov 2026 10:00:00 +0900\r\n%s\r\n%s" % (subject, extra, body)).encode()


def imaps(login=True):
    m = imaplib.IMAP4_SSL("127.0.0.1", srv.ports["imaps"], ssl_context=ctx, timeout=30)
    if login:
        m.login("taro@example.jp", PW)
    return m


def code(resp):
    """'NO [X] text' -> 'X'"""
    s = resp[1][0].decode() if resp[1] and resp[1][0] else ""
    mm = re.match(r"\[([A-Z-]+)", s)
    return mm.group(1) if mm else ""


def err(fn, *a):
    try:
        return fn(*a)
    except (imaplib.IMAP4.error, imaplib.IMAP4.abort) as e:
        return ("ERR", [str(e).encode()])


def scram(m, user, password):
    nonce = base64.b64encode(os.urandom(18)).decode()
    first_bare = "n=%s,r=%s" % (user, nonce)
    state = {}

    def step(challenge):
        if "server_first" not in state:
            server_first = challenge.decode()
            state["server_first"] = server_first
            attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
            salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"]))
            ck = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
            fwp = "c=biws,r=%s" % attrs["r"]
            am = ",".join([first_bare, server_first, fwp]).encode()
            proof = bytes(a ^ b for a, b in zip(ck, hmac.new(hashlib.sha256(ck).digest(), am, hashlib.sha256).digest()))
            sk = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
            state["want"] = "v=" + base64.b64encode(hmac.new(sk, am, hashlib.sha256).digest()).decode()
            return (fwp + ",p=" + base64.b64encode(proof).decode()).encode()
        state["verified"] = challenge.decode() == state["want"]
        return b""

    # SASL-IR is not used by imaplib: the empty first challenge asks for client-first
    def first(challenge):
        if "sent_first" not in state:
            state["sent_first"] = True
            return ("n,," + first_bare).encode()
        return step(challenge)
    res = m.authenticate("SCRAM-SHA-256", first)
    return res, state.get("verified", False)


def raw_tls(lines, wait=0.5, port=None):
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port or srv.ports["imaps"]), timeout=10))
    s.recv(4096)
    out = b""
    for ln in lines:
        try:
            s.sendall(ln)
        except (OSError, ssl.SSLError):
            break  # the server closed: what it said is read below
        time.sleep(0.15)
    time.sleep(wait)
    s.settimeout(1)
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
    except (socket.timeout, ssl.SSLError):
        pass
    s.close()
    return out


with srv:
    for i in range(1, 4):
        send("taro@example.jp", msg("hello %d" % i, "line one %d\r\nsecond line\r\n" % i))
    send("taro@example.jp", open(os.path.join(ROOT, "examples/samples/ad-iso2022jp.eml"), "rb").read())

    # --- before TLS -------------------------------------------------------------------------
    m = imaplib.IMAP4("127.0.0.1", srv.ports["imap"], timeout=30)
    caps = m.capabilities
    r.check("greeting: STARTTLS, LOGINDISABLED, no AUTH=PLAIN", "STARTTLS" in caps and "LOGINDISABLED" in caps
            and "AUTH=PLAIN" not in caps and "AUTH=SCRAM-SHA-256" in caps, caps)
    res = err(m.login, "taro@example.jp", PW)
    r.check("LOGIN before STARTTLS refused", res[0] != "OK", res)
    m.starttls(ssl_context=ctx)
    caps = m.capabilities
    r.check("after STARTTLS: AUTH=PLAIN, no LOGINDISABLED, no STARTTLS", "AUTH=PLAIN" in caps and "LOGINDISABLED" not in caps
            and "STARTTLS" not in caps, caps)
    r.check("LOGIN after STARTTLS", m.login("taro@example.jp", PW)[0] == "OK")
    caps = m.capability()[1][0].decode()
    r.check("CAPABILITY after login lists the extensions", all(c in caps for c in
            ("IDLE", "NAMESPACE", "UIDPLUS", "MOVE", "UNSELECT", "ID", "ENABLE", "LITERAL+", "SPECIAL-USE", "CONDSTORE")), caps)
    m.logout()

    # --- mechanisms over IMAPS ------------------------------------------------------------------
    m = imaps(login=False)
    plain = b"\0taro@example.jp\0" + PW.encode()
    typ, data = m._simple_command("AUTHENTICATE", "PLAIN", base64.b64encode(plain).decode())
    r.check("AUTHENTICATE PLAIN with SASL-IR", typ == "OK", data)
    m.logout()
    m = imaps(login=False)
    r.check("AUTHENTICATE PLAIN with a continuation", m.authenticate("PLAIN", lambda c: plain)[0] == "OK")
    m.logout()
    m = imaps(login=False)
    res, verified = scram(m, "taro@example.jp", PW)
    r.check("AUTHENTICATE SCRAM-SHA-256 (server signature verified)", res[0] == "OK" and verified, res)
    m.logout()
    m = imaps(login=False)
    m.user, m.password = "old@legacy.example", LPW
    r.check("AUTHENTICATE CRAM-MD5 (legacy domain)", m.login_cram_md5("old@legacy.example", LPW)[0] == "OK")
    m.logout()
    m = imaps(login=False)
    res = err(m.login, "taro@example.jp", "wrong password")
    r.check("wrong password: NO [AUTHENTICATIONFAILED]", res[0] == "ERR" and b"AUTHENTICATIONFAILED" in res[1][0], res)
    r.check("SELECT before login: BAD", err(m.select, "INBOX")[0] != "OK")
    m.logout()

    # --- folders ------------------------------------------------------------------------------------
    m = imaps()
    typ, lst = m.list()
    names = {x.decode().rsplit(' "/" ', 1)[1].strip('"'): x.decode() for x in lst}
    r.check("LIST *: the standard folders with SPECIAL-USE", {"INBOX", "Sent", "Drafts", "Trash", "Junk", "Rejected"} <= set(names)
            and "\\Sent" in names["Sent"] and "\\Trash" in names["Trash"] and "\\Junk" in names["Junk"], lst)
    typ, d = m.list('""', '""')
    r.check('LIST "" "": the delimiter', d[0] == b'(\\Noselect) "/" ""', d)
    r.check("CREATE Work/Reports", m.create("Work/Reports")[0] == "OK")
    r.check("CREATE an existing one: NO [ALREADYEXISTS]", code(err(m.create, "Work/Reports")) in ("ALREADYEXISTS", "") and
            err(m.create, "Work/Reports")[0] != "OK")
    typ, d = m.list('""', "%")
    top = [x.decode() for x in d]
    r.check("LIST %: Work as a \\Noselect parent with children", any(x.endswith('"/" Work') and "\\Noselect" in x and "\\HasChildren" in x
            for x in top) and not any("Reports" in x for x in top), top)
    typ, d = m.list("Work/", "%")
    r.check("LIST Work/ %", len(d) == 1 and d[0].decode().endswith("Work/Reports"), d)
    jp = "日本語".encode("utf-7").decode().replace("+", "&").replace("/", ",")
    r.check("CREATE a Japanese name (modified UTF-7)", m.create("&ZeVnLIqe-")[0] == "OK")
    typ, d = m.list('""', "&ZeVnLIqe-")
    r.check("LIST gives the name back in modified UTF-7", len(d) == 1 and d[0].decode().endswith("&ZeVnLIqe-"), d)
    maildir = os.path.join(srv.state, "domains/example.jp/users/taro/Maildir")
    r.check("the folder is Maildir++ .&ZeVnLIqe- on disk", os.path.isdir(os.path.join(maildir, ".&ZeVnLIqe-")), os.listdir(maildir))
    r.check("RENAME", m.rename("&ZeVnLIqe-", "Archive")[0] == "OK" and m.list('""', "Archive")[1][0] is not None)
    r.check("DELETE", m.delete("Archive")[0] == "OK" and m.list('""', "Archive")[1] == [None])
    r.check("DELETE INBOX refused", err(m.delete, "INBOX")[0] != "OK")
    m.create("a" * 200)
    t0 = time.time()
    typ, d = m.list('""', "*a*a*a*a*a*a*a*b")
    r.check("LIST with many wildcards against a long name: answered at once (no backtracking blow-up)",
            typ == "OK" and d == [None] and time.time() - t0 < 2, (typ, d, time.time() - t0))
    m.delete("a" * 200)
    typ, d = m.lsub()
    r.check("LSUB: standard folders subscribed by default", len(d) >= 6, d)
    r.check("SUBSCRIBE Work/Reports", m.subscribe("Work/Reports")[0] == "OK" and any(b"Work/Reports" in x for x in m.lsub()[1]))
    r.check("UNSUBSCRIBE Junk", m.unsubscribe("Junk")[0] == "OK" and not any(x.endswith(b" Junk") for x in m.lsub()[1]))
    typ, d = m.status("INBOX", "(MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN)")
    st = d[0].decode()
    r.check("STATUS INBOX", "MESSAGES 4" in st and "UNSEEN 4" in st and "UIDNEXT 5" in st and "UIDVALIDITY" in st, st)
    typ, d = m._simple_command("NAMESPACE")
    r.check("NAMESPACE", typ == "OK" and m.untagged_responses.get("NAMESPACE", [b""])[0] == b'(("" "/")) NIL NIL',
            m.untagged_responses.get("NAMESPACE"))
    typ, d = m.xatom("ID", '("name" "test-client")')
    r.check("ID", typ == "OK" and b"Hikyaku" in m.untagged_responses.get("ID", [b""])[0])

    # --- SELECT / EXAMINE -----------------------------------------------------------------------------
    typ, d = m.select("INBOX")
    u = m.untagged_responses
    r.check("SELECT: EXISTS, RECENT, FLAGS, PERMANENTFLAGS, UIDVALIDITY, UIDNEXT, READ-WRITE", d == [b"4"] and u.get("RECENT") == [b"4"]
            and "FLAGS" in u and "PERMANENTFLAGS" in u and "UIDVALIDITY" in u and u.get("UIDNEXT") == [b"5"] and "READ-WRITE" in u, u)
    uidvalidity = int(u["UIDVALIDITY"][0])
    m2 = imaps()
    typ, d = m2.select("INBOX")
    r.check("a second session: the same messages, none \\Recent for it", d == [b"4"] and m2.untagged_responses.get("RECENT") == [b"0"],
            m2.untagged_responses)
    typ, d = m2.select("INBOX", readonly=True)
    r.check("EXAMINE: READ-ONLY", "READ-ONLY" in m2.untagged_responses)

    # --- FETCH -------------------------------------------------------------------------------------------
    typ, d = m.fetch("1:*", "(UID FLAGS RFC822.SIZE ENVELOPE)")
    env = [x.decode(errors="replace") for x in d if isinstance(x, bytes)]
    r.check("FETCH 1:* (UID FLAGS RFC822.SIZE ENVELOPE)", len(env) == 4 and '"hello 1"' in env[0] and "UID 1 " in env[0]
            and '("Friend" NIL "friend" "example.org")' in env[0], env[:1])
    typ, d = m.fetch("1", "(BODY.PEEK[] RFC822.SIZE)")
    body = d[0][1]
    size = int(re.search(rb"RFC822\.SIZE (\d+)", d[0][0]).group(1))
    r.check("BODY.PEEK[] is RFC822.SIZE bytes, CRLF", len(body) == size and b"\r\nline one 1\r\n" in body and b"\n\n" not in body)
    on_disk = [f for f in os.listdir(os.path.join(maildir, "cur")) if ",U=1:" in f or ",U=1," in f]
    r.check("... and exactly the stored file", on_disk and open(os.path.join(maildir, "cur", on_disk[0]), "rb").read() == body, on_disk)
    typ, d = m.fetch("1", "(FLAGS)")
    r.check("PEEK leaves \\Seen unset", b"\\Seen" not in d[0])
    typ, d = m.fetch("1", "(BODY[TEXT]<0.8>)")
    r.check("BODY[TEXT]<0.8>: partial, and it sets \\Seen", d[0][1] == b"line one" and b"<0>" in d[0][0] and b"\\Seen" in d[0][0], d)
    typ, d = m.fetch("2", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODYSTRUCTURE INTERNALDATE)")
    r.check("HEADER.FIELDS, BODYSTRUCTURE, INTERNALDATE", d[0][1] == b"Subject: hello 2\r\n\r\n" and b'BODYSTRUCTURE ("text" "plain"' in d[0][0]
            and b"INTERNALDATE \"" in d[0][0], d)
    typ, d = m.fetch("4", "(ENVELOPE)")
    flat = b"".join(x if isinstance(x, bytes) else b"".join(x) for x in d if x)
    r.check("ENVELOPE keeps RFC 2047 words as sent", b"=?ISO-2022-JP?B?" in flat, d)
    r.check("FETCH of a number beyond EXISTS: BAD", err(m.fetch, "9", "(FLAGS)")[0] != "OK")
    typ, d = m.uid("FETCH", "2:*", "(FLAGS)")
    r.check("UID FETCH 2:*", typ == "OK" and len([x for x in d if x]) == 3, d)
    typ, d = m.uid("FETCH", "100:*", "(FLAGS)")
    r.check("UID FETCH 100:* names the last message (RFC 3501 6.4.8)", typ == "OK" and len([x for x in d if x]) == 1 and b"UID 4" in d[0], d)

    # --- SEARCH -------------------------------------------------------------------------------------------
    s = lambda *a: m.search(None, *a)[1][0].split()  # noqa: E731
    r.check("SEARCH ALL", s("ALL") == [b"1", b"2", b"3", b"4"])
    r.check("SEARCH SUBJECT", s("SUBJECT", '"hello 2"') == [b"2"])
    r.check("SEARCH FROM and NOT", s("FROM", "friend", "NOT", "SUBJECT", "hello") == [])
    r.check("SEARCH OR, SEEN, UNSEEN", s("OR", "SEEN", "SUBJECT", '"hello 3"') == [b"1", b"3"] and s("UNSEEN") == [b"2", b"3", b"4"])
    r.check("SEARCH HEADER", s("HEADER", "Message-ID", "ad-1@shop") == [b"4"])
    r.check("SEARCH LARGER/SMALLER", s("LARGER", "1") == [b"1", b"2", b"3", b"4"] and s("SMALLER", "10") == [])
    r.check("SEARCH SENTBEFORE/SENTSINCE", s("SENTSINCE", "1-Nov-2026") == [b"1", b"2", b"3", b"4"] and s("SENTBEFORE", "1-Nov-2026") == [])
    r.check("SEARCH SINCE today (INTERNALDATE)", s("SINCE", time.strftime("%d-%b-%Y", time.gmtime(time.time() - 86400))) == [b"1", b"2", b"3", b"4"])
    r.check("SEARCH by sequence set and UID", s("2:3") == [b"2", b"3"] and m.uid("SEARCH", None, "UID", "3:*")[1][0].split() == [b"3", b"4"])
    m.literal = "半額".encode()
    typ, d = m.search("UTF-8", "BODY")
    r.check("SEARCH CHARSET UTF-8 BODY finds Japanese in an ISO-2022-JP body", d[0].split() == [b"4"], d)
    m.literal = "未承諾広告".encode()
    typ, d = m.search("UTF-8", "SUBJECT")
    r.check("... and in an ISO-2022-JP encoded Subject", d[0].split() == [b"4"], d)
    res = err(m.search, "ISO-8859-9", "ALL")
    r.check("SEARCH CHARSET we lack: NO [BADCHARSET]", res[0] != "OK" and b"BADCHARSET" in res[1][0], res)

    # --- STORE, CONDSTORE ---------------------------------------------------------------------------------
    typ, d = m.store("2", "+FLAGS", "(\\Flagged $Important)")
    r.check("STORE +FLAGS with a keyword", typ == "OK" and b"\\Flagged" in d[0] and b"$Important" in d[0], d)
    r.check("SEARCH KEYWORD", s("KEYWORD", "$Important") == [b"2"] and s("UNKEYWORD", "$Important") == [b"1", b"3", b"4"])
    typ, d = m.store("2", "-FLAGS.SILENT", "(\\Flagged)")
    r.check("STORE -FLAGS.SILENT: no FETCH back", typ == "OK" and d == [None], d)
    time.sleep(0.3)
    typ, d = m2.select("INBOX")
    typ, d = m2.noop()
    r.check("the other session sees the flags", b"$Important" in m2.fetch("2", "(FLAGS)")[1][0])
    m3 = imaps()
    typ, d = m3._simple_command("ENABLE", "CONDSTORE")
    r.check("ENABLE CONDSTORE", typ == "OK" and m3.untagged_responses.get("ENABLED") == [b"CONDSTORE"], m3.untagged_responses)
    m3.logout()
    typ, d = m.fetch("2", "(MODSEQ)")  # enables CONDSTORE for this session (RFC 7162 3.1)
    ms = int(re.search(rb"MODSEQ \((\d+)\)", d[0]).group(1))
    typ, d = m._simple_command("STORE", "2", "(UNCHANGEDSINCE %d)" % (ms - 1), "+FLAGS", "(\\Answered)")
    r.check("STORE UNCHANGEDSINCE older than the MODSEQ: [MODIFIED 2]", typ == "OK" and b"MODIFIED 2" in d[0], d)
    typ, d = m._simple_command("STORE", "2", "(UNCHANGEDSINCE %d)" % ms, "+FLAGS", "(\\Answered)")
    r.check("STORE UNCHANGEDSINCE current: done", typ == "OK" and b"MODIFIED" not in d[0], d)
    m.untagged_responses.clear()
    typ, d = m._simple_command("FETCH", "1:*", "(FLAGS)", "(CHANGEDSINCE %d)" % ms)
    fl = m.untagged_responses.get("FETCH", [])
    r.check("FETCH CHANGEDSINCE: only what changed since", typ == "OK" and len(fl) == 1 and fl[0].startswith(b"2 "), fl)

    # --- APPEND, COPY, MOVE, EXPUNGE ----------------------------------------------------------------------
    when = imaplib.Time2Internaldate(time.mktime((2025, 3, 4, 5, 6, 7, 0, 0, -1)))
    typ, d = m.append("Work/Reports", "(\\Seen $Draftish)", when, msg("appended", "appended body\r\n"))
    r.check("APPEND with flags and date: APPENDUID", typ == "OK" and b"APPENDUID" in d[0], d)
    typ, d = m.status("Work/Reports", "(MESSAGES UIDNEXT)")
    r.check("STATUS after APPEND", b"MESSAGES 1" in d[0] and b"UIDNEXT 2" in d[0], d)
    lit = msg("literal plus", "sent with LITERAL+\r\n")
    out = raw_tls([b"a1 LOGIN taro@example.jp \"%s\"\r\n" % PW.encode(),
                   b"a2 APPEND Work/Reports (\\Flagged) {%d+}\r\n" % len(lit) + lit + b"\r\n", b"a3 LOGOUT\r\n"])
    r.check("APPEND with a non-synchronising literal (LITERAL+)", b"a2 OK [APPENDUID" in out and b"+ Ready" not in out, out[-300:])
    res = err(m.append, "Nowhere", None, None, msg("x", "y\r\n"))
    r.check("APPEND to a missing folder: NO [TRYCREATE]", res[0] != "OK" and b"TRYCREATE" in res[1][0], res)
    typ, d = m.copy("1:2", "Work/Reports")
    r.check("COPY: [COPYUID]", typ == "OK" and b"COPYUID" in d[0], d)
    typ, d = m.uid("MOVE", "3", "Trash")
    r.check("UID MOVE: the message leaves INBOX", typ == "OK" and b"3" in m.untagged_responses.get("EXPUNGE", [b""])[0]
            or typ == "OK", (typ, d, m.untagged_responses))
    typ, d = m.select("Trash")
    r.check("... and is in Trash", d == [b"1"])
    typ, d = m.select("INBOX")
    r.check("INBOX has 3 after the MOVE", d == [b"3"], d)
    m.store("1", "+FLAGS", "(\\Deleted)")
    typ, d = m.expunge()
    r.check("EXPUNGE", typ == "OK" and d == [b"1"], d)
    m.store("1", "+FLAGS", "(\\Deleted)")
    m.store("2", "+FLAGS", "(\\Deleted)")
    typ, d = m.uid("EXPUNGE", "4")
    r.check("UID EXPUNGE only the UIDs given", typ == "OK" and m.select("INBOX")[1] == [b"1"], d)
    m.store("1", "-FLAGS", "(\\Deleted)")
    time.sleep(0.3)
    typ, d = m2.noop()
    r.check("the other session got the EXPUNGEs at NOOP", len(m2.untagged_responses.get("EXPUNGE", [])) >= 1 or
            m2.untagged_responses.get("EXISTS"), m2.untagged_responses)

    # --- big responses: streamed literal, chunked FETCH ----------------------------------------------------
    big = "".join("%06d %s\r\n" % (i, "y" * 90) for i in range(30000))  # ~2.9 MB
    send("taro@example.jp", msg("big", big))
    typ, d = m.select("INBOX")
    n = int(d[0])
    typ, d = m.fetch(str(n), "(RFC822.SIZE BODY.PEEK[])")
    size = int(re.search(rb"RFC822\.SIZE (\d+)", d[0][0]).group(1))
    r.check("FETCH BODY[] of a 2.9 MB message: whole and exact", len(d[0][1]) == size and d[0][1].endswith(b"029999 " + b"y" * 90 + b"\r\n"),
            (size, len(d[0][1])))
    typ, d = m.fetch("1:*", "(BODY.PEEK[])")
    bodies = [x[1] for x in d if isinstance(x, tuple)]
    r.check("FETCH 1:* BODY.PEEK[] (several chunks): every message", len(bodies) == n and any(len(b) > 2_000_000 for b in bodies), len(bodies))
    m.store(str(n), "+FLAGS", "(\\Deleted)")
    m.expunge()

    # --- big messages in: SMTP DATA and APPEND literals go through the spool
    # (memory up to 256 KiB, then a file written by workers, reading paused
    # while a write is behind); nothing is left in spool/incoming after
    incoming = os.path.join(srv.state, "spool", "incoming")
    big_in = "".join("%07d %s\r\n" % (i, "z" * 120) for i in range(40000))  # ~5 MB
    raw_big = msg("big append", big_in)
    typ, d = m.append("INBOX", None, None, raw_big)
    appenduid = re.search(rb"APPENDUID \d+ (\d+)", d[0] or b"")
    ok = typ == "OK" and appenduid is not None
    if ok:
        typ, d = m.uid("FETCH", appenduid.group(1).decode(), "(BODY.PEEK[])")
        got = d[0][1] if d and isinstance(d[0], tuple) else b""
        ok = got == raw_big.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    r.check("APPEND of a 5 MB literal: stored byte for byte", ok, (typ, d[0][:1] if d else d))
    send("taro@example.jp", msg("big mail", big_in))
    typ, d = m.select("INBOX")
    typ, d = m.fetch(d[0].decode(), "(BODY.PEEK[TEXT])")
    r.check("SMTP DATA of 5 MB: stored byte for byte", d and isinstance(d[0], tuple) and d[0][1] == big_in.encode(),
            len(d[0][1]) if d and isinstance(d[0], tuple) else d)
    # a client that goes away in the middle of a big APPEND or DATA
    c = ctx.wrap_socket(socket.create_connection(("127.0.0.1", srv.ports["imaps"]), timeout=10))
    c.recv(4096)
    c.sendall(b'l LOGIN taro@example.jp "' + PW.encode() + b'"\r\n')
    login_reply = c.recv(4096)
    c.sendall(b"a APPEND INBOX {4000000+}\r\n" + b"x" * 3_000_000)
    time.sleep(0.3)
    c.close()
    d_ = smtplib.SMTP("127.0.0.1", srv.ports["mx"], timeout=30)
    d_.ehlo("client.example.org")
    d_.mail("friend@example.org")
    d_.rcpt("taro@example.jp")
    d_.putcmd("DATA")
    d_.getreply()
    d_.send(b"Subject: cut\r\n\r\n" + b"w" * 3_000_000)
    time.sleep(0.3)
    d_.close()
    leftover = None
    for _ in range(50):
        leftover = os.listdir(incoming)
        if not leftover:
            break
        time.sleep(0.1)
    r.check("spool/incoming is empty after big messages and clients cut off mid-message",
            login_reply.startswith(b"l OK") and leftover == [], (login_reply, leftover))

    # --- IDLE woken by a delivery --------------------------------------------------------------------------
    m.select("INBOX")
    m.send(b"i1 IDLE\r\n")
    line = m.readline()
    t0 = time.time()
    send("taro@example.jp", msg("during idle", "x\r\n"))
    got = b""
    m.sock.settimeout(5)
    while b"EXISTS" not in got and time.time() - t0 < 5:
        got += m.readline()
    dt = time.time() - t0
    m.send(b"DONE\r\n")
    done = m.readline()
    while not done.startswith(b"i1 "):
        done = m.readline()
    r.check("IDLE: '+ idling', an EXISTS within a second of the delivery, DONE ends it", line.startswith(b"+") and b"EXISTS" in got and dt < 1.5
            and done.startswith(b"i1 OK"), (line, got, dt, done))
    m.sock.settimeout(30)
    typ, d = m.close()
    r.check("CLOSE", typ == "OK")
    typ, d = m.select("Work/Reports")
    typ, d = m._simple_command("UNSELECT")
    r.check("UNSELECT", typ == "OK")

    # a selected folder holds one directory handle (FETCH opens messages
    # relative to it): SELECT, EXAMINE, CLOSE and UNSELECT never leak one
    def server_fds():
        return len(os.listdir("/proc/%d/fd" % srv.proc.pid))
    fds_before = server_fds()
    for i in range(30):
        m.select("INBOX")
        m.fetch("1", "(BODY.PEEK[])")
        m.select("Work/Reports", readonly=True)
        if i % 2:
            m.close()
        else:
            m._simple_command("UNSELECT")
    fds_after = server_fds()
    r.check("SELECT / EXAMINE / CLOSE / UNSELECT x30 keep no folder handle open", fds_after <= fds_before + 1,
            (fds_before, fds_after))

    # --- RENAME INBOX (RFC 3501 6.3.5) --------------------------------------------------------------------
    m2_ = imaps()
    m2_.append("INBOX", "(\\Flagged)", None, msg("to be renamed", "x\r\n"))
    before = int(m2_.status("INBOX", "(MESSAGES)")[1][0].split()[-1].strip(b")"))
    r.check("RENAME INBOX moves its messages into the new folder, INBOX stays", m2_.rename("INBOX", "Old-INBOX")[0] == "OK"
            and m2_.status("INBOX", "(MESSAGES)")[1][0].endswith(b"(MESSAGES 0)")
            and m2_.status("Old-INBOX", "(MESSAGES)")[1][0].endswith(b"(MESSAGES %d)" % before), before)
    m2_.select("Old-INBOX")
    typ, d = m2_.search(None, "FLAGGED", "SUBJECT", '"to be renamed"')
    r.check("... with their flags", d[0] != b"", d)
    m2_.logout()

    # --- errors and limits -------------------------------------------------------------------------------
    out = raw_tls([b"a1 FROB\r\n", b"a2 NOOP\r\n"])
    r.check("unknown command: BAD, the session goes on", b"a1 BAD" in out and b"a2 OK" in out, out)
    out = raw_tls([b"a1 LOGIN {100000}\r\n"])
    r.check("a big literal before login: refused without '+'", b"+ " not in out and (b"a1 BAD" in out or b"a1 NO" in out), out)
    out = raw_tls([b"x%d FROB\r\n" % i for i in range(8)])
    r.check("error budget: BYE after max_errors", b"* BYE Too many errors" in out, out[-200:])
    out = raw_tls([b"a1 SEARCH " + b"(" * 100 + b"ALL" + b")" * 100 + b"\r\n"])
    r.check("nesting is capped", b"a1 BAD" in out, out)
    s_ = socket.create_connection(("127.0.0.1", srv.ports["imap"]), timeout=10)
    s_.recv(4096)
    s_.sendall(b"a1 STARTTLS\r\na2 LOGIN taro@example.jp x\r\n")
    time.sleep(0.3)
    first = s_.recv(4096)
    t = ctx.wrap_socket(s_)
    t.sendall(b"a3 NOOP\r\n")
    t.settimeout(2)
    after = t.recv(4096)
    r.check("STARTTLS drops pipelined plaintext", first.startswith(b"a1 OK") and b"a2" not in first and b"a2" not in after
            and after.startswith(b"a3 OK"), (first, after))
    t.close()
    m.logout()
    m2.logout()

# --- UIDs and UIDVALIDITY survive a restart, and the loss of the index ---------------------------------------
srv.start()
try:
    m = imaps()
    m.select("INBOX")
    u1 = (int(m.untagged_responses["UIDVALIDITY"][0]), m.uid("SEARCH", None, "ALL")[1][0])
    m.logout()
    for dirpath, dirs, files in os.walk(os.path.join(srv.state, "domains/example.jp/users/taro/Maildir")):
        for f in files:
            if f == "hikyaku-uidlist":
                os.unlink(os.path.join(dirpath, f))
    m = imaps()
    m.select("INBOX")
    u2 = (int(m.untagged_responses["UIDVALIDITY"][0]), m.uid("SEARCH", None, "ALL")[1][0])
    m.logout()
    r.check("after a restart: same UIDVALIDITY and UIDs", u1[0] == uidvalidity and u1 == u2, (uidvalidity, u1, u2))
    log = srv.logtext()
    r.check("logins are logged", "[imap]" in log and "logged in" in log, log[-600:])
finally:
    srv.stop()
r.done()
