#!/usr/bin/env python3
"""Hold many idle SMTP sessions open against one server and report its memory.

Opens --connections TCP connections to HOST:PORT (non-blocking, all at once),
reads each greeting (expects 220), sends `EHLO idle-N.bench.test`, reads the
whole multi-line reply (expects a final `250 `), keeps every session open and
idle for --hold seconds, then reads the server's RSS (VmRSS, and the sum over
its threads is the same process) and closes everything with QUIT.

Prints one JSON object: rss before (nothing open), after (all sessions idle),
the per-session difference, how many got 220 and 250, the time it took, and
any connection errors.
usage: sessions.py --port P --server-pid PID [--connections 1000] [--hold 3]
"""
import argparse
import json
import selectors
import socket
import sys
import time


def rss_kib(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "Threads", "RssAnon"):
                out[k] = int(v.split()[0])
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            p = line.split()
            if p[0] == "Pss:":
                out["Pss"] = int(p[1])
    out["fds"] = len(__import__("os").listdir(f"/proc/{pid}/fd"))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--server-pid", type=int, required=True)
    ap.add_argument("--connections", type=int, default=1000)
    ap.add_argument("--hold", type=float, default=3.0)
    ap.add_argument("--timeout", type=float, default=60.0)
    a = ap.parse_args()

    before = rss_kib(a.server_pid)
    sel = selectors.DefaultSelector()
    conns, errors = [], []
    t0 = time.monotonic()
    for i in range(a.connections):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect((a.host, a.port))
        except BlockingIOError:
            pass
        except OSError as e:
            errors.append(f"connect {i}: {e}")
            s.close()
            continue
        st = {"i": i, "sock": s, "buf": b"", "state": "greet", "got220": False,
              "got250": False, "reply": ""}
        conns.append(st)
        sel.register(s, selectors.EVENT_READ, st)

    pending = len(conns)
    deadline = t0 + a.timeout
    while pending and time.monotonic() < deadline:
        for key, _ in sel.select(0.5):
            st = key.data
            try:
                d = st["sock"].recv(65536)
            except BlockingIOError:
                continue
            except OSError as e:
                errors.append(f"recv {st['i']}: {e}")
                d = b""
            if not d:
                st["state"] = "closed"
                sel.unregister(st["sock"])
                pending -= 1
                continue
            st["buf"] += d
            while b"\r\n" in st["buf"]:
                line, st["buf"] = st["buf"].split(b"\r\n", 1)
                final = len(line) < 4 or line[3:4] == b" "
                if not final:
                    continue
                if st["state"] == "greet":
                    st["got220"] = line.startswith(b"220")
                    st["reply"] = line.decode(errors="replace")
                    st["sock"].setblocking(True)
                    st["sock"].sendall(b"EHLO idle-%d.bench.test\r\n" % st["i"])
                    st["sock"].setblocking(False)
                    st["state"] = "ehlo"
                elif st["state"] == "ehlo":
                    st["got250"] = line.startswith(b"250")
                    st["reply"] = line.decode(errors="replace")
                    st["state"] = "idle"
                    sel.unregister(st["sock"])
                    pending -= 1
    t_ready = time.monotonic() - t0
    time.sleep(a.hold)
    after = rss_kib(a.server_pid)
    # anyone closed by the server while idle?
    still_open = 0
    for st in conns:
        if st["state"] != "idle":
            continue
        try:
            st["sock"].setblocking(False)
            d = st["sock"].recv(1)
            if d == b"":
                st["state"] = "closed-while-idle"
                continue
        except BlockingIOError:
            pass
        except OSError:
            continue
        still_open += 1
    for st in conns:
        try:
            st["sock"].setblocking(True)
            st["sock"].settimeout(2)
            st["sock"].sendall(b"QUIT\r\n")
        except OSError:
            pass
        st["sock"].close()
    time.sleep(1)
    closed = rss_kib(a.server_pid)
    bad = [f"{st['i']}: state={st['state']} last reply={st['reply']!r}"
           for st in conns if not (st["got220"] and st["got250"])]
    n220 = sum(st["got220"] for st in conns)
    n250 = sum(st["got250"] for st in conns)
    print(json.dumps({
        "connections": a.connections, "connected": len(conns),
        "got_220": n220, "got_250": n250, "open_after_hold": still_open,
        "seconds_to_all_ehlo": round(t_ready, 3), "hold_s": a.hold,
        "rss_before_kib": before["VmRSS"], "rss_idle_kib": after["VmRSS"],
        "rss_after_close_kib": closed["VmRSS"],
        "pss_before_kib": before.get("Pss"), "pss_idle_kib": after.get("Pss"),
        "rss_per_session_kib": round((after["VmRSS"] - before["VmRSS"]) / max(1, n250), 2),
        "server_threads_idle": after.get("Threads"), "server_fds_idle": after["fds"],
        "errors": (errors + bad)[:5], "n_bad": len(errors) + len(bad),
    }))
    sys.exit(0 if n220 == n250 == a.connections and still_open == a.connections else 1)


if __name__ == "__main__":
    main()
