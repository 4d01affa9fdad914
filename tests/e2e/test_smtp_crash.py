"""Crash safety: `hikyaku serve` is killed with SIGKILL in the middle of a
stream of deliveries from several clients, then restarted. Every message
that got a 250 must be in its Maildir (or the queue) exactly once, no
half-written file may be visible, and the server must work again."""
import glob
import os
import random
import smtplib
import subprocess
import sys
import threading
import time

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from hkserver import HIKYAKU, Results, Server  # noqa: E402

r = Results()
srv = Server()
subprocess.run([HIKYAKU, "domain", "add", "example.jp", "--state", srv.state], check=True, capture_output=True)
subprocess.run([HIKYAKU, "user", "add", "taro@example.jp", "--stdin", "--state", srv.state], input=b"long enough password\n",
               check=True, capture_output=True)
box = os.path.join(srv.state, "domains", "example.jp", "users", "taro", "Maildir")

acked = []
lock = threading.Lock()
stop = threading.Event()


def client(n):
    i = 0
    while not stop.is_set():
        i += 1
        mid = "c%d-m%d" % (n, i)
        body = "From: f@example.org\r\nTo: taro@example.jp\r\nSubject: %s\r\nMessage-ID: <%s@t>\r\n\r\n%s\r\n" % (
            mid, mid, "x" * random.randint(10, 20000))
        try:
            c = smtplib.SMTP("127.0.0.1", srv.ports["mx"], timeout=10)
            c.sendmail("f@example.org", ["taro@example.jp"], body)
            with lock:
                acked.append(mid)  # only after the 250
            c.quit()
        except Exception:
            time.sleep(0.05)


srv.start()
threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
for t in threads:
    t.start()
time.sleep(2.5)
srv.kill9()
killed_at = len(acked)
time.sleep(0.3)
stop.set()
for t in threads:
    t.join()

r.check("messages were being delivered when the server was killed (%d acknowledged)" % killed_at, killed_at > 10, killed_at)
files = glob.glob(os.path.join(box, "new", "*")) + glob.glob(os.path.join(box, "cur", "*"))
seen = {}
partial = 0
for f in files:
    data = open(f, "rb").read()
    subj = [l for l in data.split(b"\r\n") if l.startswith(b"Subject: ")]
    if not subj or not data.rstrip().endswith(b"x"):
        partial += 1
        continue
    key = subj[0][9:].decode()
    seen[key] = seen.get(key, 0) + 1
missing = [m for m in acked if m not in seen]
dupes = [k for k, v in seen.items() if v > 1]
r.check("every acknowledged message is in the Maildir", not missing, missing[:5])
r.check("no message is there twice", not dupes, dupes[:5])
r.check("no partial message is visible in new/ or cur/", partial == 0, partial)

srv2 = Server(state=srv.state)
srv2.ports = srv.ports
with open(srv2.conf, "w") as f:
    f.write(open(srv.conf).read())
srv2.start()
c = smtplib.SMTP("127.0.0.1", srv.ports["mx"], timeout=10)
c.sendmail("f@example.org", ["taro@example.jp"], "Subject: after-restart\r\n\r\nx\r\n")
c.quit()
after = glob.glob(os.path.join(box, "new", "*"))
r.check("the restarted server delivers again", any(b"after-restart" in open(f, "rb").read() for f in after))
r.check("restarted server stops cleanly", srv2.stop() == 0, srv2.logtext()[-1000:])
r.done()
