"""swaks, the SMTP swiss-army knife, against `hikyaku serve`: plain MX
delivery, STARTTLS, submission with AUTH PLAIN, LOGIN and CRAM-MD5, SMTPS
(implicit TLS), pipelining, and a relay attempt."""
import glob
import os
import subprocess
import sys

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from hkserver import HIKYAKU, Results, Server  # noqa: E402

r = Results()
srv = Server()
for args, stdin in ((["domain", "add", "example.jp", "--legacy-auth"], None),
                    (["user", "add", "taro@example.jp", "--stdin"], "correct horse battery\n"),
                    (["user", "add", "hanako@example.jp", "--stdin"], "another good password\n")):
    subprocess.run([HIKYAKU] + args + ["--state", srv.state], input=stdin, text=True, check=True, capture_output=True)
inbox = os.path.join(srv.state, "domains", "example.jp", "users", "hanako", "Maildir", "new")


def swaks(*args):
    p = subprocess.run(["swaks", "--server", "127.0.0.1", "--timeout", "20", "--hide-all"] + list(args) + ["--header", "Subject: swaks"],
                       capture_output=True, text=True, timeout=60)
    return p.returncode


def count():
    return len(glob.glob(os.path.join(inbox, "*")))


with srv:
    mx, sub, smtps = str(srv.ports["mx"]), str(srv.ports["submission"]), str(srv.ports["smtps"])
    n = count()
    r.check("swaks: plain MX delivery", swaks("--port", mx, "--from", "f@example.org", "--to", "hanako@example.jp") == 0 and count() == n + 1)
    r.check("swaks: STARTTLS", swaks("--port", mx, "-tls", "--from", "f@example.org", "--to", "hanako@example.jp") == 0 and count() == n + 2)
    r.check("swaks: pipelining", swaks("--port", mx, "--pipeline", "--from", "f@example.org", "--to", "hanako@example.jp") == 0 and count() == n + 3)
    for mech in ("PLAIN", "LOGIN", "CRAM-MD5"):
        r.check("swaks: submission STARTTLS + AUTH %s" % mech,
                swaks("--port", sub, "-tls", "--auth", mech, "--auth-user", "taro@example.jp", "--auth-password", "correct horse battery",
                      "--from", "taro@example.jp", "--to", "hanako@example.jp") == 0)
    r.check("swaks: SMTPS (implicit TLS) + AUTH PLAIN",
            swaks("--port", smtps, "--tls-on-connect", "--auth", "PLAIN", "--auth-user", "taro@example.jp", "--auth-password",
                  "correct horse battery", "--from", "taro@example.jp", "--to", "hanako@example.jp") == 0)
    r.check("swaks: the authenticated mails arrived", count() == n + 7, count() - n)
    r.check("swaks: relay attempt fails", swaks("--port", mx, "-tls", "--from", "f@example.org", "--to", "x@elsewhere.example") != 0)
    r.check("swaks: submission without AUTH fails",
            swaks("--port", sub, "-tls", "--from", "taro@example.jp", "--to", "hanako@example.jp") != 0)
    r.check("server stops cleanly", srv.stop() == 0, srv.logtext()[-1000:])
r.done()
