"""Session limits: with `max_sessions 3`, each server (SMTP on all its
listeners, POP3, IMAP) takes three sessions at once and refuses the fourth
with its protocol's "try again later" (SMTP 421 4.7.0, POP3 -ERR
[SYS/TEMP], IMAP * BYE); once sessions end, new ones are taken again, so
the count goes down as sessions close (also when the client just drops
the connection), and 30 rounds of that never leak a slot. Shutdown closes
whatever is still open and the server exits cleanly."""
import signal
import socket
import sys
import time

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from hkserver import Results, Server  # noqa: E402

r = Results()
srv = Server(extra_config="max_sessions 3\n")
srv.start()

GREETING = {"mx": b"220 ", "submission": b"220 ", "pop3": b"+OK", "imap": b"* OK"}
REFUSAL = {"mx": b"421 4.7.0", "pop3": b"-ERR [SYS/TEMP]", "imap": b"* BYE Too many"}


def opened(kind):
    s = socket.create_connection(("127.0.0.1", srv.ports[kind]), timeout=5)
    return s, s.recv(4096)


def greeted(kind, deadline=5.0):
    """A session that was greeted, waiting (up to the deadline) for the
    server to count off sessions closed just before; None if it never is."""
    end = time.time() + deadline
    while time.time() < end:
        s, first = opened(kind)
        if first.startswith(GREETING[kind]):
            return s
        s.close()
        time.sleep(0.05)
    return None


def wait_taken(kind):
    s = greeted(kind)
    if s:
        s.close()
    return s is not None


try:
    for kind in ("mx", "pop3", "imap"):
        held = [opened(kind) for _ in range(3)]
        fourth, refusal = opened(kind)
        r.check("%s: three sessions greeted, the fourth refused (%s)" % (kind, REFUSAL[kind].decode()),
                all(g.startswith(GREETING[kind]) for _, g in held) and refusal.startswith(REFUSAL[kind]),
                ([g[:30] for _, g in held], refusal[:60]))
        fourth.close()
        # one quits politely, one just drops the connection
        quit_cmd = {"mx": b"QUIT\r\n", "pop3": b"QUIT\r\n", "imap": b"a LOGOUT\r\n"}[kind]
        held[0][0].sendall(quit_cmd)
        held[0][0].recv(4096)
        held[0][0].close()
        held[1][0].close()
        r.check("%s: after a QUIT and a dropped connection, new sessions are taken" % kind, wait_taken(kind))
        held[2][0].close()
        ok = True
        for _ in range(30):
            ss = [greeted(kind) for _ in range(3)]
            ok = ok and all(ss)
            for s in ss:
                if s:
                    s.close()
            if not ok:
                break
        r.check("%s: 30 rounds of three sessions: no slot leaks" % kind, ok)
    # the SMTP limit covers all its listeners together
    held = [(greeted(k), None) for k in ("mx", "submission", "mx")]
    extra, refusal = opened("submission")
    r.check("submission and MX share the SMTP server's limit", refusal.startswith(REFUSAL["mx"]), refusal[:60])
    extra.close()
    # shutdown with sessions open
    pop = opened("pop3")
    srv.proc.send_signal(signal.SIGTERM)
    try:
        code = srv.proc.wait(timeout=10)
    except Exception:
        code = None
    r.check("SIGTERM with sessions open: the server closes them and exits 0", code == 0, code)
    for s, _ in held + [pop]:
        if s:
            s.close()
finally:
    srv.stop()
r.done()
