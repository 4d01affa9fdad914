"""The IMAP message cache and the directory stamp end to end: `hikyaku serve`
with Python's imaplib on a folder of awkward messages (bare LF, a header
over the cache's 16 KiB bound, a garbage header line, an mbox From line,
encoded words, no body). The first session's FETCH and SEARCH read the
files and fill <folder>/hikyaku-cache; the next ones must answer the same
bytes from it (shown by a message rewritten in place, which the cache
still answers for), a damaged cache file must change nothing but be
rewritten, and once the folder has settled SELECT leaves hikyaku-dirstamp,
after which deliveries, flag changes and expunges made by another program
(plain file operations) are still seen."""
import imaplib
import os
import subprocess
import sys
import time

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from hkserver import HIKYAKU, Results, Server  # noqa: E402

r = Results()
srv = Server(extra_config="allow_plaintext_auth yes\n")
PW = "correct horse battery"


def admin(*args, stdin=None):
    p = subprocess.run([HIKYAKU] + list(args) + ["--state", srv.state], input=stdin, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(args), p.stderr))


admin("domain", "add", "example.jp")
admin("user", "add", "taro@example.jp", "--stdin", stdin=PW + "\n")
MAILDIR = os.path.join(srv.state, "domains", "example.jp", "users", "taro", "Maildir")
CACHE = os.path.join(MAILDIR, "hikyaku-cache")
STAMP = os.path.join(MAILDIR, "hikyaku-dirstamp")

pad = "".join("X-Pad-%04d: %s\r\n" % (i, "p" * 60) for i in range(300))  # ~22 KiB
MESSAGES = [
    b"From: Friend <friend@example.org>\r\nTo: taro@example.jp\r\nSubject: Quarterly report\r\n"
    b"X-Campaign: needle-7\r\nDate: Mon, 02 Nov 2026 10:00:00 +0900\r\n\r\nbody one\r\n",
    b"From: lf@example.org\nTo: taro@example.jp\nSubject: bare LF report\nDate: Tue, 03 Nov 2026 10:00:00 +0000\n\n"
    b"body\nwith bare LF\n",
    ("From: big@example.org\r\nSubject: big header report\r\n%sX-Campaign: needle-7\r\n"
     "Date: Wed, 04 Nov 2026 10:00:00 +0000\r\n\r\nbody\r\n" % pad).encode(),
    b"From: g@example.org\r\nthis line is garbage\r\nSubject: after garbage\r\nX-Campaign: other\r\n\r\nbody\r\n",
    b"From g@example.org Mon Jan  1 00:00:00 2024\r\nFrom: mbox@example.org\r\nSubject: mbox line\r\n\r\nbody\r\n",
    b"From: =?ISO-2022-JP?B?GyRCRUQ1fhsoQg==?= <tokyo@example.jp>\r\nSubject: =?UTF-8?B?5pel5pys6Kqe?=\r\n"
    b"Date: Thu, 05 Nov 2026 10:00:00 +0900\r\n\r\n\xe6\x97\xa5\xe6\x9c\xac body\r\n",
    b"Subject: no body at all\r\nFrom: nobody@example.org\r\n",
]
FETCH = ("(UID INTERNALDATE RFC822.SIZE ENVELOPE BODY.PEEK[HEADER] BODY.PEEK[HEADER.FIELDS (Subject X-Campaign)] "
         "BODY.PEEK[HEADER.FIELDS.NOT (Subject)] RFC822.HEADER)")
SEARCHES = [
    ("SUBJECT", '"report"'), ("HEADER", "X-Campaign", "needle-7"), ("FROM", "example.org"),
    ("SUBJECT", '"\xe6\x97\xa5\xe6\x9c\xac"'), ("SENTSINCE", "3-Nov-2026"), ("SENTBEFORE", "4-Nov-2026"),
    ("BEFORE", "1-Jan-2025"), ("SINCE", "1-Jan-2025"), ("ON", "10-Oct-2024"), ("TEXT", "body"),
    ("NOT", "HEADER", "X-Campaign", "\"\""),
]


def session():
    m = imaplib.IMAP4("127.0.0.1", srv.ports["imap"], timeout=30)
    m.login("taro@example.jp", PW)
    return m


def answers(m):
    """Everything FETCH and SEARCH say about the folder, as bytes."""
    typ, data = m.select("INBOX")
    assert typ == "OK", data
    typ, fetched = m.fetch("1:*", FETCH)
    assert typ == "OK", fetched
    out = [repr(fetched)]
    for keys in SEARCHES:
        charset = "UTF-8" if any("\xe6" in k for k in keys) else None
        if charset:
            m._encoding = "utf-8"
            typ, data = m.uid("SEARCH", "CHARSET", "UTF-8", *[k.encode("latin-1") for k in keys])
        else:
            typ, data = m.uid("SEARCH", *keys)
        assert typ == "OK", (keys, data)
        out.append("%s -> %s" % (keys, data))
    return out


def file_of(uid):
    for sub in ("cur", "new"):
        for name in os.listdir(os.path.join(MAILDIR, sub)):
            if (",U=%d:" % uid) in name or name.endswith(",U=%d" % uid):
                return os.path.join(MAILDIR, sub, name)
    raise KeyError(uid)


with srv:
    m = session()
    for i, raw in enumerate(MESSAGES):
        when = imaplib.Time2Internaldate(time.mktime((2024, 10, 10, 12, 0, 0, 0, 0, -1)) if i % 2
                                         else time.mktime((2026, 11, 2, 12, 0, 0, 0, 0, -1)))
        typ, data = m.append("INBOX", None, when, raw)
        r.check("APPEND message %d" % i, typ == "OK", data)
    m.logout()

    m = session()
    first = answers(m)
    m.logout()
    r.check("the first FETCH/SEARCH session fills hikyaku-cache",
            os.path.exists(CACHE) and os.path.getsize(CACHE) > 16 + 6 * 64, os.path.exists(CACHE))
    r.check("SEARCH SUBJECT / HEADER found what they should",
            "SUBJECT', '\"report\"') -> [b'1 2 3']" in first[1] and "-> [b'1 3']" in first[2], first[1:3])
    r.check("the big header is answered whole", b"X-Pad-0299" in first[0].encode("latin-1"))

    m = session()
    second = answers(m)
    m.logout()
    r.check("from the cache: the same bytes for every FETCH item and SEARCH", second == first,
            [(a, b) for a, b in zip(first, second) if a != b][:2])

    # a file rewritten in place (Maildir forbids it): the cache still answers
    # for it, which shows it is not read
    path = file_of(1)
    orig = open(path, "rb").read()
    st = os.stat(path)
    changed = orig.replace(b"Quarterly report", b"Quarterly RETORT")
    assert len(changed) == len(orig)
    open(path, "r+b").write(changed)
    m = session()
    m.select("INBOX")
    typ, data = m.fetch("1", "(ENVELOPE)")
    r.check("ENVELOPE comes from the cache, not the file", b"Quarterly report" in data[0], data)
    typ, data = m.fetch("1", "(BODY.PEEK[TEXT])")
    r.check("a body section still reads the file", typ == "OK" and b"body one" in data[0][1], data)
    m.logout()
    open(path, "r+b").write(orig)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # INTERNALDATE back too

    # a damaged cache: the same answers, and the file rewritten sound
    size = os.path.getsize(CACHE)
    with open(CACHE, "r+b") as f:
        f.seek(size // 2)
        f.write(b"\0garbage\0" * 40)
    ino = os.stat(CACHE).st_ino
    m = session()
    third = answers(m)
    m.logout()
    r.check("a damaged cache changes no answer", third == first,
            [(a, b) for a, b in zip(first, third) if a != b][:2])
    r.check("a damaged cache is rewritten", os.stat(CACHE).st_ino != ino)
    with open(CACHE, "wb") as f:
        f.write(b"not a cache at all")
    m = session()
    fourth = answers(m)
    m.logout()
    def diff(a, b):
        for x, y in zip(a, b):
            if x != y:
                i = next(k for k in range(min(len(x), len(y))) if x[k] != y[k])
                return (x[max(0, i - 300):i + 200], y[max(0, i - 300):i + 200])
        return None
    r.check("garbage instead of a cache changes no answer", fourth == first, diff(first, fourth))
    m = session()
    fifth = answers(m)
    m.logout()
    r.check("and after its rebuild", fifth == first, [(a, b) for a, b in zip(first, fifth) if a != b][:2])

    # the directory stamp: once the folder has settled, SELECT leaves one;
    # other programs' changes are still seen
    time.sleep(1.1)
    m = session()
    m.select("INBOX")
    m.logout()
    r.check("a settled folder gets hikyaku-dirstamp", os.path.exists(STAMP))
    m = session()
    typ, data = m.select("INBOX")
    r.check("SELECT with the stamp: the same count", data == [str(len(MESSAGES)).encode()], data)
    m.logout()
    with open(os.path.join(MAILDIR, "new", "1800000000.M1P1.foreign,S=60"), "wb") as f:
        f.write(b"From: x@example.org\r\nSubject: dropped in by hand\r\n\r\nhello\r\n")
    m = session()
    typ, data = m.select("INBOX")
    r.check("a file put in new/ by another program is seen", data == [str(len(MESSAGES) + 1).encode()], data)
    typ, data = m.uid("SEARCH", "SUBJECT", '"by hand"')
    r.check("and found by SEARCH", typ == "OK" and data[0] != b"", data)
    m.logout()
    time.sleep(1.1)
    m = session()
    m.select("INBOX")  # stamp again
    m.logout()
    p2 = file_of(2)
    os.rename(p2, p2.rsplit(":2,", 1)[0] + ":2,FS" if ":2," in p2 else p2 + ":2,FS")
    os.unlink(file_of(4))
    m = session()
    typ, data = m.select("INBOX")
    r.check("an expunge by another program is seen", data == [str(len(MESSAGES)).encode()], data)
    typ, data = m.uid("FETCH", "2", "(FLAGS)")
    r.check("a flag change by another program is seen", b"\\Flagged" in data[0], data)
    m.logout()
    r.check("no errors logged", "error" not in srv.logtext().lower(), srv.logtext()[-500:])

r.done()
