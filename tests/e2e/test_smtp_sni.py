"""Per-domain certificates chosen by SNI, checked with openssl s_client:
STARTTLS on MX and implicit TLS on SMTPS present the domain's certificate
to clients that ask for mail.<domain>, and the default one otherwise."""
import os
import subprocess
import sys

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from hkserver import HIKYAKU, Results, Server  # noqa: E402

r = Results()
srv = Server()
tls = os.path.join(srv.dir, "b-tls")
os.makedirs(tls)
cert, key = os.path.join(tls, "b.crt"), os.path.join(tls, "b.key")
subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
                "-subj", "/CN=mail.b.test", "-addext", "subjectAltName=DNS:mail.b.test", "-keyout", key, "-out", cert],
               check=True, capture_output=True)
subprocess.run([HIKYAKU, "domain", "add", "b.test", "--cert", cert, "--key", key, "--state", srv.state], check=True,
               capture_output=True)


def subject(port, servername, starttls):
    cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-brief"]
    if servername:
        cmd += ["-servername", servername]
    if starttls:
        cmd += ["-starttls", "smtp"]
    p = subprocess.run(cmd, input=b"QUIT\r\n", capture_output=True, timeout=20)
    out = (p.stdout + p.stderr).decode(errors="replace")
    for line in out.splitlines():
        if "Peer certificate:" in line:
            return line
    return out[-300:]


with srv:
    r.check("STARTTLS with SNI mail.b.test gets b.test's certificate", "CN = mail.b.test" in subject(srv.ports["mx"], "mail.b.test", True))
    r.check("SMTPS with SNI mail.b.test gets b.test's certificate", "CN = mail.b.test" in subject(srv.ports["smtps"], "mail.b.test", False))
    other = subject(srv.ports["mx"], "mail.other.test", True)
    r.check("an unknown SNI name gets the default certificate", "mail.e2e.test" in other and "b.test" not in other, other)
    r.check("no SNI: the default certificate", "mail.e2e.test" in subject(srv.ports["smtps"], None, False))
    r.check("server stops cleanly", srv.stop() == 0, srv.logtext()[-1000:])
r.done()
