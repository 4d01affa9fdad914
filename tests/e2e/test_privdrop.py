"""Privilege separation: `hikyaku serve` started as root with `user` set
gives up root for good (real, effective, saved and filesystem ids, no
group 0, not dumpable) after binding its listeners and reading its TLS
key, which stays root's 0600; delivered mail and everything the admin
commands write (run as root with --config) belong to that user; root
without `user` is refused, and so is a non-root start naming someone
else. Needs root: without it, prints SKIP.

The test account is a dedicated system user made with useradd (removed
at the end); without useradd it falls back to `nobody`."""
import glob
import os
import pwd
import secrets
import smtplib
import ssl
import subprocess
import sys
import time

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from hkserver import HIKYAKU, Results, Server  # noqa: E402

if os.geteuid() != 0:
    print("SKIP: test_privdrop.py needs root (it starts hikyaku serve as root and checks it drops to a user)")
    print("0 passed, 0 failed")
    sys.exit(0)

r = Results()
HIKYAKU = os.path.abspath(HIKYAKU)
made_user = None
if subprocess.run(["sh", "-c", "command -v useradd && command -v userdel"], capture_output=True).returncode == 0:
    name = "hk-e2e-" + secrets.token_hex(3)
    p = subprocess.run(["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
                        "--shell", "/usr/sbin/nologin", name], capture_output=True, text=True)
    if p.returncode == 0:
        made_user = name
    else:
        print("note: useradd failed (%s); using nobody" % p.stderr.strip())
user = made_user or "nobody"
pw = pwd.getpwnam(user)
uid, gid = pw.pw_uid, pw.pw_gid
print("test account: %s (uid %d, gid %d)" % (user, uid, gid))

ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE

srv = Server(extra_config="user %s\nqueue_interval 86400\ntransport 127.0.0.1:9\n" % user)
# mkdtemp made the test folder 0700 root: the user must be able to reach
# the state directory inside it (a real state_dir's parent is 0755 too)
os.chmod(srv.dir, 0o755)
state = srv.state


def run(*args, stdin=None, **kw):
    return subprocess.run([HIKYAKU] + list(args), input=stdin, capture_output=True, text=True, **kw)


def admin(*args, stdin=None):
    p = run(*args, "--config", srv.conf, stdin=stdin)
    if p.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(args), p.stderr))
    return p.stdout


def not_users(top):
    """Paths under top (tls/ aside) that are not owned by the test account."""
    bad = []
    for dirpath, dirnames, filenames in os.walk(top):
        if dirpath == top and "tls" in dirnames:
            dirnames.remove("tls")
        for n in [""] + dirnames + filenames:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            if st.st_uid != uid or st.st_gid != gid:
                bad.append("%s %d:%d" % (p, st.st_uid, st.st_gid))
    return bad


def ids(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("Uid", "Gid", "Groups"):
                out[k] = [int(x) for x in v.split()]
    return out


def inbox(local):
    d = os.path.join(state, "domains", "e2e.test", "users", local, "Maildir")
    return sorted(glob.glob(os.path.join(d, "new", "*")) + glob.glob(os.path.join(d, "cur", "*")))


def wait_for(fn, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.05)
    return fn()


try:
    # --- serve as root without `user` is refused, and names the fix ---------------------------
    bare = os.path.join(srv.dir, "bare.conf")
    with open(bare, "w") as f:
        f.write("state_dir %s\nlisten mx 127.0.0.1:9\n" % os.path.join(srv.dir, "bare-var"))
    p = run("serve", "--config", bare, timeout=10)
    r.check("root without `user`: serve refuses", p.returncode == 1, p.returncode)
    r.check("root without `user`: the message says what to do",
            "running as root: set `user` in the configuration" in p.stderr, p.stderr)
    r.check("root without `user`: nothing was created", not os.path.exists(os.path.join(srv.dir, "bare-var")))

    # --- the admin commands as root with --config: everything is the user's --------------------
    admin("domain", "add", "e2e.test")
    admin("user", "add", "taro@e2e.test", "--stdin", stdin="correct horse battery\n")
    st = os.lstat(state)
    r.check("admin as root: the state directory was created for the user", st.st_uid == uid and st.st_gid == gid,
            "%d:%d" % (st.st_uid, st.st_gid))
    acc = os.lstat(os.path.join(state, "accounts.gdbm"))
    r.check("admin as root: accounts.gdbm (replaced by rename) is the user's", acc.st_uid == uid, acc.st_uid)
    r.check("admin as root: no file in the state directory is root's", not_users(state) == [], not_users(state))
    # without the configuration, root is refused on the user's state directory
    p = run("user", "add", "jiro@e2e.test", "--stdin", "--state", state, stdin="correct horse battery\n")
    r.check("admin as root without --config on the user's state: refused (exit 3)", p.returncode == 3, p.returncode)
    r.check("admin as root without --config: the message points at --config", "--config" in p.stderr, p.stderr)
    r.check("admin as root without --config: the user was not added",
            "jiro@e2e.test" not in admin("user", "list"), admin("user", "list"))

    # --- serve as root with `user`: ids, groups, dumpable ---------------------------------------
    srv.start()
    pid = srv.proc.pid
    i = ids(pid)
    r.check("serve: real, effective, saved and fs uid are the user's", i.get("Uid") == [uid] * 4, i)
    r.check("serve: real, effective, saved and fs gid are the user's", i.get("Gid") == [gid] * 4, i)
    r.check("serve: supplementary groups are only the user's group, no 0", i.get("Groups") == [gid], i)
    r.check("serve: the log says who it runs as", "running as %s:" % user in srv.logtext(), srv.logtext())

    def as_user_read(path):
        return subprocess.run(["cat", path], user=uid, group=gid, extra_groups=[], capture_output=True)

    p = as_user_read("/proc/%d/environ" % pid)
    r.check("serve: not dumpable (another process of the user cannot read its /proc memory files)",
            p.returncode != 0 and b"Permission denied" in p.stderr, p.stderr)

    # --- the TLS key stays root's, and TLS still works ------------------------------------------
    key = os.path.join(state, "tls", "default.key")
    kst = os.lstat(key)
    r.check("TLS key: owned by root, mode 0600", kst.st_uid == 0 and (kst.st_mode & 0o777) == 0o600,
            "%d %o" % (kst.st_uid, kst.st_mode & 0o777))
    p = as_user_read(key)
    r.check("TLS key: the user cannot read it", p.returncode != 0, p.returncode)

    with smtplib.SMTP("127.0.0.1", srv.ports["mx"], timeout=10) as s:
        s.ehlo("client.example.org")
        s.starttls(context=ctx)
        s.ehlo("client.example.org")
        cipher = s.sock.cipher()
        s.sendmail("friend@example.org", ["taro@e2e.test"],
                   b"From: friend@example.org\r\nTo: taro@e2e.test\r\nSubject: over TLS\r\n\r\nhello\r\n")
    r.check("STARTTLS works after the switch", cipher is not None, cipher)
    with smtplib.SMTP("127.0.0.1", srv.ports["mx"], timeout=10) as s:
        s.sendmail("friend@example.org", ["taro@e2e.test"],
                   b"From: friend@example.org\r\nTo: taro@e2e.test\r\nSubject: plain\r\n\r\nhello\r\n")
    got = wait_for(lambda: len(inbox("taro")) >= 2 and inbox("taro"))
    r.check("delivery over SMTP works (2 messages)", len(got or []) == 2, got)
    owners = sorted({(os.lstat(f).st_uid, os.lstat(f).st_gid) for f in got or []})
    r.check("the delivered Maildir files are the user's", owners == [(uid, gid)], owners)
    r.check("the whole state directory is still the user's (tls/ aside)", not_users(state) == [], not_users(state))

    # --- admin commands while the server runs ------------------------------------------------------
    admin("user", "add", "hanako@e2e.test", "--stdin", stdin="another good password\n")
    admin("alias", "add", "team@e2e.test", "taro@e2e.test", "hanako@e2e.test")
    admin("queue", "flush")
    admin("replies", "list")
    r.check("user add, alias add, queue flush, replies list as root leave nothing root's", not_users(state) == [],
            not_users(state))
    with smtplib.SMTP("127.0.0.1", srv.ports["mx"], timeout=10) as s:
        s.sendmail("friend@example.org", ["team@e2e.test"],
                   b"From: friend@example.org\r\nTo: team@e2e.test\r\nSubject: team\r\n\r\nhello\r\n")
    got = wait_for(lambda: inbox("hanako"))
    r.check("the server reads what the admin command wrote (mail for the new user via the alias)", len(got) == 1, got)
    r.check("serve stops cleanly", srv.stop() == 0, srv.logtext()[-800:])

    # --- not root, but `user` names someone else -------------------------------------------------
    other = "daemon" if user != "daemon" else "nobody"
    oconf = os.path.join(srv.dir, "other.conf")
    with open(oconf, "w") as f:
        f.write("state_dir %s\nuser %s\nlisten mx 127.0.0.1:9\n" % (os.path.join(srv.dir, "other-var"), other))
    os.chmod(oconf, 0o644)
    p = subprocess.run([HIKYAKU, "serve", "--config", oconf], user=uid, group=gid, extra_groups=[],
                       capture_output=True, text=True, timeout=10)
    r.check("not root with `user %s`: serve refuses" % other, p.returncode == 1, p.returncode)
    r.check("not root with another `user`: the message says it cannot switch", "cannot switch users" in p.stderr,
            p.stderr)
finally:
    srv.stop()
    if made_user:
        subprocess.run(["userdel", made_user], capture_output=True)
        subprocess.run(["groupdel", made_user], capture_output=True)  # when userdel left it
        try:
            pwd.getpwnam(made_user)
            r.check("the test account was removed", False, made_user)
        except KeyError:
            pass
    subprocess.run(["rm", "-rf", srv.dir])

r.done()
