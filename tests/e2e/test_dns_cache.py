"""The shared DNS resolver's cache, end to end: `hikyaku serve` pointed at
the test DNS server (tests/spf/spfdns.py serving tests/spf/dns-e2e.yml)
receives N messages from one sender domain over N SMTP connections, once
with `dns_cache_size 0` and once with the default cache (and refuses
out-of-range DNS settings). The DNS server
counts the queries it gets: without the cache every message costs the
SPF check's five lookups, with it only the first message does. The
server's shutdown log line reports the same from its side.

Needs /usr/bin/python3 with python3-dnslib and python3-yaml for the DNS
server (HK_PYTHON overrides), like the unit tests of tests/spf/."""
import glob
import json
import os
import re
import smtplib
import socket
import struct
import subprocess
import sys

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from hkserver import HIKYAKU, Results, Server  # noqa: E402

N = 20
LOOKUPS = 5  # per SPF check of sender.test from 127.0.0.1 (see the zone)
r = Results()

py = os.environ.get("HK_PYTHON") or "/usr/bin/python3"
dns = subprocess.Popen([py, "tests/spf/spfdns.py", "tests/spf/dns-e2e.yml"], stdin=subprocess.PIPE,
                       stdout=subprocess.PIPE)
manifest = json.loads(dns.stdout.readline())
port = manifest["scenarios"][0]["port"]


def dns_count(name="_count"):
    """The DNS server's query counter: a TXT query for "_count"."""
    qid = 0x4b1d
    pkt = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        pkt += bytes([len(label)]) + label.encode()
    pkt += b"\0" + struct.pack("!HH", 16, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(5)
    s.sendto(pkt, ("127.0.0.1", port))
    ans = s.recv(4096)
    s.close()
    # header, the question echoed, one TXT record (compressed owner)
    off = len(pkt) + 2 + 10
    n = ans[off]
    return int(ans[off + 1:off + 1 + n])


def run(extra):
    srv = Server(extra_config="dns_server 127.0.0.1:%d\nqueue_interval 86400\ntransport 127.0.0.1:9\n%s" % (port, extra))
    for args in (["domain", "add", "example.jp"], ["user", "add", "taro@example.jp", "--stdin"]):
        subprocess.run([HIKYAKU] + args + ["--state", srv.state], input="correct horse battery\n", text=True,
                       check=True, capture_output=True)
    before = dns_count()
    with srv:
        for k in range(N):
            with smtplib.SMTP("127.0.0.1", srv.ports["mx"], timeout=10) as c:
                c.sendmail("news%d@sender.test" % k, ["taro@example.jp"],
                           "From: news@sender.test\r\nSubject: %d\r\n\r\nhello\r\n" % k)
        queries = dns_count() - before
    box = os.path.join(srv.state, "domains", "example.jp", "users", "taro", "Maildir")
    files = glob.glob(os.path.join(box, "new", "*")) + glob.glob(os.path.join(box, "cur", "*"))
    passes = 0
    for p in files:
        with open(p, "rb") as f:
            if re.search(rb"^Received-SPF: pass", f.read(4096), re.M):
                passes += 1
    return queries, len(files), passes, srv.logtext()


def bad_config(line, want):
    """serve refuses a configuration line with file:line and the key."""
    srv = Server(extra_config=line + "\n")
    p = subprocess.run([HIKYAKU, "serve", "--config", srv.conf], capture_output=True, text=True, timeout=10)
    r.check("config refused: %s" % line, p.returncode == 1 and want in p.stderr, (p.returncode, p.stderr))


bad_config("dns_tries 0", "bad value for dns_tries")
bad_config("dns_tries 11", "bad value for dns_tries")
bad_config("dns_timeout_ms 5", "bad value for dns_timeout_ms")
bad_config("dns_timeout_ms 30001", "bad value for dns_timeout_ms")
bad_config("dns_cache_size 1000001", "bad value for dns_cache_size")
bad_config("dns_cache_size -1", "bad value for dns_cache_size")
bad_config("dns_cache_max_ttl 0", "bad value for dns_cache_max_ttl")
bad_config("dns_cache_max_ttl 3600 7200", "unknown setting or wrong number of values: dns_cache_max_ttl")
bad_config("dns_cache 10", "unknown setting or wrong number of values: dns_cache")

try:
    q0, n0, p0, log0 = run("dns_cache_size 0\n")
    r.check("without a cache: %d messages delivered, SPF pass" % N, n0 == N and p0 == N, (n0, p0, log0[-800:]))
    r.check("without a cache: %d DNS queries for %d messages (%d each)" % (q0, N, LOOKUPS), q0 == N * LOOKUPS, q0)

    q1, n1, p1, log1 = run("dns_timeout_ms 400\ndns_tries 3\ndns_cache_size 10000\ndns_cache_max_ttl 3600\n")
    r.check("with the cache: %d messages delivered, SPF pass" % N, n1 == N and p1 == N, (n1, p1, log1[-800:]))
    r.check("with the cache: %d DNS queries for %d messages (the first message's)" % (q1, N), q1 == LOOKUPS, q1)
    m = re.search(r"lookups (\d+): (\d+) from the cache, (\d+) joined one in flight, (\d+) sent", log1)
    r.check("the server's own count at shutdown", m is not None and int(m.group(1)) == N * LOOKUPS
            and int(m.group(4)) == LOOKUPS and int(m.group(2)) == (N - 1) * LOOKUPS, m and m.group(0))
    print("DNS queries for %d messages from one sender domain: %d without the cache, %d with it" % (N, q0, q1))
finally:
    dns.stdin.close()
    dns.wait(timeout=10)
r.done()
