#!/usr/bin/python3
"""
spfdns.py - a DNS server on 127.0.0.1 that serves the zonedata of the
openspf / RFC 7208 test suite (and our own zone files in the same format),
for tests/unit/test_spf.c and test_dns.c.

Place: test tooling only. Run with /usr/bin/python3: it needs Debian's
python3-dnslib and python3-yaml (pyenv's python3 cannot import them).

Usage: spfdns.py FILE.yml [FILE.yml ...]

Every YAML document ("scenario") of every file gets its own UDP+TCP port
(the same number for both) on 127.0.0.1, chosen by the kernel; so the
scenarios' zones, which reuse the same names, never mix. Once all ports
are bound the server writes ONE line of JSON to stdout:

  {"scenarios": [{"file": "rfc7208-tests.yml", "index": 0,
                  "description": "...", "port": 40123,
                  "tests": [{"name": "...", "helo": "...", "host": "...",
                             "mailfrom": "...", "result": ["fail"],
                             "explanation": "..."}, ...]}, ...]}

and then answers queries until its stdin reaches end of file (the test
holds the write end of a pipe, so the server dies with the test even if
the test crashes) or it gets SIGTERM.

Zone semantics follow the suite's reference driver (pyspf testspf.py):
  - an "SPF" entry also yields a TXT record unless the name has any "TXT"
    entry ("TXT: NONE" only suppresses that copy);
  - "TIMEOUT": a query whose type has no record before the TIMEOUT entry
    gets no answer at all (the client times out); a TIMEOUT after a
    matching record just ends the answer;
  - a name not in the zone is NXDOMAIN, unless it is an empty non-terminal
    (a parent of a listed name), which is NOERROR/NODATA as in real DNS;
  - CNAME chains are followed inside the zone; a loop answers SERVFAIL.
Extensions for our own tests (never in the RFC suite):
  - "SERVFAIL", "REFUSED": that RCODE for any type;
  - "DELAY: ms": answer that name late (cancellation tests);
  - "TXTBIG: n": one TXT record of n bytes ("v=spf1 " + padding), to force
    a truncated UDP answer and the TCP retry;
  - "AMANY: n": n A records 10.x.y.z (record count limits);
  - "TTL: n": the TTL of that name's records (default 60; cache tests);
  - "DROP: n": the first n queries for the name get no answer (a lost
    packet: the client's retry gets the answer);
  - "SOA: [ttl, minimum]": the name is a zone apex: NXDOMAIN and NODATA
    answers for it and for names below it carry its SOA record (with that
    TTL and MINIMUM) in the authority section, as RFC 2308 servers do;
  - query counting: every query a scenario receives (UDP or TCP) is
    counted per name; a TXT query for "NAME._count" answers the count for
    NAME as one decimal string, "_count" the scenario's total. These
    control queries are not counted themselves and have TTL 0.
Strings are turned into bytes with latin-1 when possible, so "\\xEF" in the
YAML is the byte 0xEF, else UTF-8.
UDP answers over 512 bytes are truncated (TC bit, no records), like a
server that sees no EDNS.
"""
import heapq
import json
import os
import selectors
import signal
import socket
import struct
import sys
import time

import yaml
from dnslib import (AAAA, CNAME, MX, PTR, QTYPE, RCODE, RR, SOA, TXT, A,
                    DNSLabel, DNSRecord)

UDP_LIMIT = 512
TTL = 60


def to_bytes(s):
    if isinstance(s, bytes):
        return s
    s = str(s)
    try:
        return s.encode('latin-1')
    except UnicodeEncodeError:
        return s.encode('utf-8')


def split_name(name):
    """Labels of a presentation-form name: '.' separates, a backslash
    escapes the next byte ("a\\.b" is one label); trailing dot ignored."""
    b = to_bytes(name)
    labels, cur, i = [], bytearray(), 0
    while i < len(b):
        c = b[i:i + 1]
        if c == b'\\' and i + 1 < len(b):
            cur += b[i + 1:i + 2]
            i += 2
            continue
        if c == b'.':
            labels.append(bytes(cur))
            cur = bytearray()
        else:
            cur += c
        i += 1
    if cur:
        labels.append(bytes(cur))
    return tuple(labels)


def name_key(name):
    """Case-folded label tuple: the zone's key for a name."""
    if isinstance(name, DNSLabel):
        labels = name.label
    else:
        labels = split_name(name)
    return tuple(l.lower() for l in labels)


def label(name):
    return DNSLabel(split_name(name))


def txt_strings(v):
    """A TXT value: a string (split into 255-byte pieces) or a list."""
    if isinstance(v, list):
        out = []
        for s in v:
            out.extend(txt_strings(s))
        return out
    b = to_bytes(v)
    if not b:
        return [b'']
    return [b[i:i + 255] for i in range(0, len(b), 255)]


def load_zone(zonedata):
    """name key -> list of entries; an entry is a keyword string
    ('TIMEOUT', 'SERVFAIL', 'REFUSED') or a (type, value) tuple."""
    zone = {}
    delays = {}
    ttls = {}
    soas = {}
    drops = {}
    for name, entries in (zonedata or {}).items():
        out = []
        generated = []
        has_txt = False
        for e in entries or []:
            if isinstance(e, str):
                out.append(e.upper())
                continue
            for t, v in e.items():
                t = t.upper()
                if t == 'DELAY':
                    delays[name_key(name)] = float(v) / 1000.0
                    continue
                if t == 'TTL':
                    ttls[name_key(name)] = int(v)
                    continue
                if t == 'DROP':
                    drops[name_key(name)] = int(v)
                    continue
                if t == 'SOA':
                    soas[name_key(name)] = (int(v[0]), int(v[1]))
                    continue
                if t == 'AMANY':
                    for k in range(int(v)):
                        out.append(('A', '10.%d.%d.%d' % (k >> 16, (k >> 8) & 255, k & 255)))
                    continue
                if t == 'TXTBIG':
                    n = int(v)
                    body = b'v=spf1 ' + b'x' * max(0, n - 7)
                    out.append(('TXT', [body[:n]]))
                    has_txt = True
                    continue
                if t == 'TXT':
                    has_txt = True
                    if v == 'NONE':
                        continue
                if t == 'SPF':
                    generated.append(('TXT', v))
                out.append((t, v))
        if not has_txt:
            out.extend(generated)
        zone[name_key(name)] = out
    names = set(zone)
    parents = set()
    for n in names:
        for i in range(1, len(n)):
            parents.add(n[i:])
    return zone, parents - names, delays, ttls, soas, drops


def make_rr(owner, t, v, ttl=TTL):
    if t == 'A':
        rd, qt = A(str(v)), QTYPE.A
    elif t == 'AAAA':
        rd, qt = AAAA(str(v)), QTYPE.AAAA
    elif t == 'MX':
        rd, qt = MX(label(v[1]), int(v[0])), QTYPE.MX
    elif t == 'PTR':
        rd, qt = PTR(label(v)), QTYPE.PTR
    elif t == 'CNAME':
        rd, qt = CNAME(label(v)), QTYPE.CNAME
    elif t in ('TXT', 'SPF'):
        rd, qt = TXT(txt_strings(v) if v != [] else []), getattr(QTYPE, t)
    else:
        raise ValueError('unknown record type %r' % t)
    return RR(rname=owner, rtype=qt, rclass=1, ttl=ttl, rdata=rd)


class Scenario:
    def __init__(self, file, index, doc):
        self.file = file
        self.index = index
        self.doc = doc
        self.zone, self.ents, self.delays, self.ttls, self.soas, self.drops = \
            load_zone(doc.get('zonedata'))
        self.counts = {}  # name key -> queries received
        self.total = 0

    def soa_for(self, key):
        """The SOA record of the closest enclosing apex of `key`, or None."""
        for i in range(len(key)):
            apex = key[i:]
            if apex in self.soas:
                ttl, minimum = self.soas[apex]
                owner = DNSLabel(list(apex))
                return RR(rname=owner, rtype=QTYPE.SOA, rclass=1, ttl=ttl,
                          rdata=SOA(DNSLabel([b'ns'] + list(apex)),
                                    DNSLabel([b'hostmaster'] + list(apex)),
                                    (1, 3600, 600, 86400, minimum)))
        return None

    def control(self, key):
        """Answer of a "NAME._count" / "_count" query, or None."""
        if not key or key[-1] != b'_count':
            return None
        if len(key) == 1:
            return self.total
        return self.counts.get(key[:-1], 0)

    def resolve(self, qlabel, qtype):
        """-> (rcode, [RR]) or None for no answer at all."""
        qname = QTYPE.get(qtype)
        rrs = []
        owner = qlabel
        key = name_key(qlabel)
        seen = {key}
        while True:
            entries = self.zone.get(key)
            if entries is None:
                if key in self.ents:
                    return RCODE.NOERROR, rrs
                return RCODE.NXDOMAIN, rrs
            found = False
            cname = None
            for e in entries:
                if e == 'TIMEOUT':
                    if not found:
                        return None
                    break
                if e in ('SERVFAIL', 'REFUSED'):
                    if not found:
                        return getattr(RCODE, e), []
                    break
                t, v = e
                if t == 'CNAME' and qname != 'CNAME':
                    cname = v
                    break
                if t == qname:
                    rrs.append(make_rr(owner, t, v, self.ttls.get(key, TTL)))
                    found = True
            if cname is None:
                return RCODE.NOERROR, rrs
            rrs.append(make_rr(owner, 'CNAME', cname, self.ttls.get(key, TTL)))
            key = name_key(cname)
            if key in seen:
                return RCODE.SERVFAIL, []
            seen.add(key)
            owner = label(cname)

    def answer(self, data, udp):
        """-> (delay seconds, reply bytes) or None. A bug here must not
        stop the server: it is reported and the query gets no answer."""
        try:
            return self._answer(data, udp)
        except Exception as e:  # noqa: BLE001
            sys.stderr.write('spfdns: %s: %r\n' % (self.doc.get('description'), e))
            return None

    def _answer(self, data, udp):
        try:
            req = DNSRecord.parse(data)
        except Exception:
            return None
        if not req.questions:
            return None
        q = req.q
        key = name_key(q.qname)
        n = self.control(key)
        if n is not None:
            reply = req.reply()
            reply.add_answer(RR(rname=q.qname, rtype=QTYPE.TXT, rclass=1, ttl=0,
                                rdata=TXT([str(n).encode()])))
            return 0.0, reply.pack()
        self.total += 1
        self.counts[key] = self.counts.get(key, 0) + 1
        if self.counts[key] <= self.drops.get(key, 0):
            return None
        res = self.resolve(q.qname, q.qtype)
        if res is None:
            return None
        rcode, rrs = res
        reply = req.reply()
        reply.header.rcode = rcode
        for rr in rrs:
            reply.add_answer(rr)
        if rcode == RCODE.NXDOMAIN or (rcode == RCODE.NOERROR and
                                       not any(rr.rtype == q.qtype for rr in rrs)):
            soa = self.soa_for(key)
            if soa is not None:
                reply.add_auth(soa)
        pkt = reply.pack()
        if udp and len(pkt) > UDP_LIMIT:
            reply.rr = []
            reply.header.tc = 1
            pkt = reply.pack()
        return self.delays.get(name_key(q.qname), 0.0), pkt

    def manifest(self, port):
        tests = []
        for name, t in (self.doc.get('tests') or {}).items():
            res = t.get('result')
            if not isinstance(res, list):
                res = [res]
            case = {'name': name, 'helo': str(t.get('helo', '')),
                    'host': str(t.get('host', '')),
                    'mailfrom': str(t.get('mailfrom', '')),
                    'result': [str(r) for r in res],
                    'spec': str(t.get('spec', ''))}
            if 'explanation' in t:
                case['explanation'] = str(t['explanation'])
            tests.append(case)
        return {'file': os.path.basename(self.file), 'index': self.index,
                'description': str(self.doc.get('description', '')),
                'port': port, 'tests': tests}


def bind_pair():
    """A UDP and a TCP socket on the same free port of 127.0.0.1."""
    for _ in range(100):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(('127.0.0.1', 0))
        port = u.getsockname()[1]
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            t.bind(('127.0.0.1', port))
        except OSError:
            u.close()
            t.close()
            continue
        t.listen(16)
        u.setblocking(False)
        t.setblocking(False)
        return u, t, port
    raise SystemExit('spfdns: no free port pair')


class Server:
    def __init__(self):
        self.sel = selectors.DefaultSelector()
        self.timers = []   # (when, seq, fn)
        self.seq = 0
        self.tcp_bufs = {}

    def later(self, delay, fn):
        self.seq += 1
        heapq.heappush(self.timers, (time.monotonic() + delay, self.seq, fn))

    def add_scenario(self, sc):
        u, t, port = bind_pair()
        self.sel.register(u, selectors.EVENT_READ, ('udp', sc))
        self.sel.register(t, selectors.EVENT_READ, ('listen', sc))
        return port

    def on_udp(self, sock, sc):
        while True:
            try:
                data, addr = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            r = sc.answer(data, True)
            if r is None:
                continue
            delay, pkt = r
            send = (lambda p=pkt, a=addr: self.udp_send(sock, p, a))
            if delay:
                self.later(delay, send)
            else:
                send()

    @staticmethod
    def udp_send(sock, pkt, addr):
        try:
            sock.sendto(pkt, addr)
        except OSError:
            pass

    def on_accept(self, sock, sc):
        try:
            c, _ = sock.accept()
        except (BlockingIOError, InterruptedError):
            return
        c.setblocking(False)
        self.tcp_bufs[c] = b''
        self.sel.register(c, selectors.EVENT_READ, ('tcp', sc))

    def close_tcp(self, c):
        self.sel.unregister(c)
        self.tcp_bufs.pop(c, None)
        c.close()

    def on_tcp(self, c, sc):
        try:
            data = c.recv(65535)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b''
        if not data:
            self.close_tcp(c)
            return
        buf = self.tcp_bufs[c] + data
        while len(buf) >= 2:
            n = struct.unpack('!H', buf[:2])[0]
            if len(buf) < 2 + n:
                break
            msg, buf = buf[2:2 + n], buf[2 + n:]
            r = sc.answer(msg, False)
            if r is None:
                continue
            delay, pkt = r
            out = struct.pack('!H', len(pkt)) + pkt
            send = (lambda o=out: self.tcp_send(c, o))
            if delay:
                self.later(delay, send)
            else:
                send()
        self.tcp_bufs[c] = buf

    def tcp_send(self, c, out):
        if c not in self.tcp_bufs:
            return
        try:
            c.setblocking(True)
            c.sendall(out)
            c.setblocking(False)
        except OSError:
            self.close_tcp(c)

    def run(self):
        self.sel.register(sys.stdin, selectors.EVENT_READ, ('stdin', None))
        while True:
            timeout = None
            if self.timers:
                timeout = max(0.0, self.timers[0][0] - time.monotonic())
            for key, _ in self.sel.select(timeout):
                kind, sc = key.data
                if kind == 'udp':
                    self.on_udp(key.fileobj, sc)
                elif kind == 'listen':
                    self.on_accept(key.fileobj, sc)
                elif kind == 'tcp':
                    self.on_tcp(key.fileobj, sc)
                elif kind == 'stdin':
                    if not os.read(sys.stdin.fileno(), 4096):
                        return
            now = time.monotonic()
            while self.timers and self.timers[0][0] <= now:
                _, _, fn = heapq.heappop(self.timers)
                fn()


def main():
    if len(sys.argv) < 2:
        sys.stderr.write(__doc__)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server = Server()
    scenarios = []
    for path in sys.argv[1:]:
        with open(path, 'rb') as f:
            docs = list(yaml.safe_load_all(f))
        for i, doc in enumerate(d for d in docs if d):
            sc = Scenario(path, i, doc)
            scenarios.append(sc.manifest(server.add_scenario(sc)))
    sys.stdout.write(json.dumps({'scenarios': scenarios}) + '\n')
    sys.stdout.flush()
    server.run()
    return 0


if __name__ == '__main__':
    sys.exit(main())
