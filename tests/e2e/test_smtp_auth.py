"""SMTP AUTH mechanisms against the accounts store, with real exchanges:
PLAIN and LOGIN (smtplib), SCRAM-SHA-256 (a client written here from RFC
5802/7677 with hashlib/hmac), CRAM-MD5 (RFC 2195; only for a domain that
enables legacy mechanisms), wrong passwords, cancellation."""
import base64
import hashlib
import hmac
import os
import smtplib
import ssl
import subprocess
import sys

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from hkserver import HIKYAKU, Results, Server  # noqa: E402

r = Results()
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
srv = Server(extra_config="auth_delay_ms 50\nauth_block_after 12\n")


def admin(*args, stdin=None):
    p = subprocess.run([HIKYAKU] + list(args) + ["--state", srv.state], input=stdin, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(args), p.stderr))


admin("domain", "add", "example.jp")
admin("domain", "add", "legacy.example", "--legacy-auth")
admin("user", "add", "taro@example.jp", "--stdin", stdin="correct horse battery\n")
admin("user", "add", "old@legacy.example", "--stdin", stdin="a legacy password\n")


def connect():
    c = smtplib.SMTP("127.0.0.1", srv.ports["submission"], timeout=30)
    c.ehlo("c.test")
    c.starttls(context=ctx)
    c.ehlo("c.test")
    return c


def scram(c, user, password, tamper=False):
    nonce = base64.b64encode(os.urandom(18)).decode()
    first_bare = "n=%s,r=%s" % (user, nonce)
    code, resp = c.docmd("AUTH", "SCRAM-SHA-256 " + base64.b64encode(("n,," + first_bare).encode()).decode())
    if code != 334:
        return code, resp
    server_first = base64.b64decode(resp).decode()
    attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
    salt = base64.b64decode(attrs["s"])
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, int(attrs["i"]))
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    final_wo_proof = "c=biws,r=%s" % attrs["r"]
    auth_msg = ",".join([first_bare, server_first, final_wo_proof]).encode()
    sig = hmac.new(stored_key, auth_msg, hashlib.sha256).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, sig))
    if tamper:
        proof = bytes([proof[0] ^ 1]) + proof[1:]
    code, resp = c.docmd(base64.b64encode((final_wo_proof + ",p=" + base64.b64encode(proof).decode()).encode()).decode())
    if code != 334:
        return code, resp
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    want = base64.b64encode(hmac.new(server_key, auth_msg, hashlib.sha256).digest()).decode()
    got = base64.b64decode(resp).decode()
    if got != "v=" + want:
        return 0, b"server signature mismatch: " + resp
    return c.docmd("")


with srv:
    c = connect()
    feats = c.esmtp_features.get("auth", "")
    r.check("submission offers PLAIN LOGIN SCRAM-SHA-256 CRAM-MD5 after STARTTLS", all(m in feats for m in ("PLAIN", "LOGIN", "SCRAM-SHA-256", "CRAM-MD5")), feats)
    c.user, c.password = "taro@example.jp", "correct horse battery"
    code, _ = c.auth("PLAIN", c.auth_plain)
    r.check("AUTH PLAIN", code == 235)
    c.quit()

    c = connect()
    c.user, c.password = "taro@example.jp", "correct horse battery"
    code, _ = c.auth("LOGIN", c.auth_login)
    r.check("AUTH LOGIN", code == 235)
    c.quit()

    c = connect()
    code, resp = scram(c, "taro@example.jp", "correct horse battery")
    r.check("AUTH SCRAM-SHA-256: server signature verified, 235", code == 235, (code, resp))
    code, _ = c.mail("taro@example.jp")
    r.check("after SCRAM the user may send as itself", code == 250)
    c.quit()

    c = connect()
    code, resp = scram(c, "taro@example.jp", "wrong password")
    r.check("SCRAM with a wrong password: 535", code == 535, (code, resp))
    c.quit()

    c = connect()
    code, resp = scram(c, "nobody@example.jp", "whatever it is")
    r.check("SCRAM for an unknown user fails only at the proof: 535", code == 535, (code, resp))
    c.quit()

    c = connect()
    code, resp = scram(c, "taro@example.jp", "correct horse battery", tamper=True)
    r.check("SCRAM with a tampered proof: 535", code == 535, (code, resp))
    c.quit()

    c = connect()
    c.user, c.password = "old@legacy.example", "a legacy password"
    code, _ = c.auth("CRAM-MD5", c.auth_cram_md5)
    r.check("CRAM-MD5 for a domain with legacy mechanisms", code == 235)
    c.quit()

    c = connect()
    c.user, c.password = "taro@example.jp", "correct horse battery"
    try:
        c.auth("CRAM-MD5", c.auth_cram_md5)
        r.check("CRAM-MD5 refused where the domain does not enable it", False)
    except smtplib.SMTPAuthenticationError as e:
        r.check("CRAM-MD5 refused where the domain does not enable it (535)", e.smtp_code == 535, e)
    c.quit()

    c = connect()
    code, _ = c.docmd("AUTH", "LOGIN")
    code, resp = c.docmd("*")
    r.check("AUTH cancelled with *: 501", code == 501, (code, resp))
    code, _ = c.docmd("NOOP")
    r.check("session goes on after a cancelled AUTH", code == 250)
    c.quit()

    # four failures from this address so far: the next one is answered late
    import time
    c = connect()
    t0 = time.time()
    try:
        c.login("taro@example.jp", "still wrong")
    except smtplib.SMTPAuthenticationError:
        pass
    dt = time.time() - t0
    r.check("repeated failed logins are answered after a back-off delay (%.2f s)" % dt, dt >= 0.045, dt)
    c.user, c.password = "taro@example.jp", "correct horse battery"
    code, _ = c.auth("PLAIN", c.auth_plain)
    r.check("the right password still works after failures", code == 235)
    c.quit()

    # a client that keeps failing is blocked: AUTH answered 454 at once
    blocked = False
    for k in range(12):
        c = connect()
        try:
            c.login("taro@example.jp", "wrong again %d" % k)
        except smtplib.SMTPAuthenticationError as e:
            if e.smtp_code == 454:
                blocked = True
        except smtplib.SMTPException:
            pass
        c.close()
        if blocked:
            break
    r.check("a client with too many failed logins is blocked (454 4.7.0)", blocked)

    r.check("server stops cleanly", srv.stop() == 0, srv.logtext()[-1500:])
r.done()
