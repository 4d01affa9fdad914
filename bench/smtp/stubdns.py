#!/usr/bin/env python3
"""A loopback DNS stub for the SMTP benchmark: answers every query at once
with NXDOMAIN (the truth for the payloads' *.example sender domains), so
the server's SPF check at MAIL FROM costs a real query and answer but does
not depend on the machine's resolver (which, on the benchmark VM, loses a
query now and then: a 2 s c-ares timeout inside a measured run).

usage: stubdns.py PORTFILE   binds 127.0.0.1:0 (UDP), writes the port to
PORTFILE, serves until killed; counts queries into PORTFILE.count on exit.
"""
import signal
import socket
import struct
import sys

s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
with open(sys.argv[1], "w") as f:
    f.write("%d\n" % s.getsockname()[1])
n = 0


def bye(*_):
    with open(sys.argv[1] + ".count", "w") as f:
        f.write("%d\n" % n)
    sys.exit(0)


signal.signal(signal.SIGTERM, bye)
signal.signal(signal.SIGINT, bye)
while True:
    q, addr = s.recvfrom(4096)
    if len(q) < 12:
        continue
    n += 1
    qid, flags, qd = struct.unpack("!HHH", q[:6])
    # end of the question section (first question only)
    i = 12
    while i < len(q) and q[i] != 0:
        i += 1 + q[i]
    i += 5
    rd = flags & 0x0100
    hdr = struct.pack("!HHHHHH", qid, 0x8000 | 0x0080 | rd | 3, 1 if qd else 0, 0, 0, 0)
    s.sendto(hdr + q[12:i], addr)
