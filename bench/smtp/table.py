#!/usr/bin/env python3
"""Markdown table for bench/smtp/run.sh.

usage: table.py OUT [ANCHOR_RESULTS]
OUT holds results/raw/smtp.jsonl (our cells), sessions.json, profile-*.
ANCHOR_RESULTS (optional) is an anchor run's results dir (raw/smtp.jsonl,
modes sink/direct/sieve), e.g. from `N=2000 REPS=1 ./run.sh smtp` made in the
same sitting; without it the anchor columns are RESULTS.md's numbers (N=5000,
REPS=3, another sitting).
"""
import json
import os
import statistics
import sys

# RESULTS.md, table (a)(b): median msg/s, server CPU ms/msg (N=5000, REPS=3)
RESULTS_MD = {
    ("sieve", "4k", 1): (197.9, 8.15), ("sieve", "4k", 20): (191.0, 8.34),
    ("sieve", "100k", 1): (132.0, 13.23), ("sieve", "100k", 20): (154.4, 11.13),
    ("direct", "4k", 1): (288.0, 3.65), ("direct", "4k", 20): (370.2, 3.50),
    ("direct", "100k", 1): (188.8, 5.55), ("direct", "100k", 20): (316.3, 4.63),
}


def load(path):
    rows = []
    if os.path.exists(path):
        with open(path) as f:
            rows = [json.loads(line) for line in f if line.strip()]
    return rows


def cells(rows, mode=None):
    out = {}
    for r in rows:
        if mode and r.get("mode") != mode:
            continue
        out.setdefault((r["size"], int(r["concurrency"])), []).append(r)
    return out


def med(rs, key):
    return statistics.median(float(r[key]) for r in rs)


def main():
    outdir = sys.argv[1]
    anchor_dir = sys.argv[2] if len(sys.argv) > 2 else None
    ours = cells(load(os.path.join(outdir, "results/raw/smtp.jsonl")))
    same = None
    if anchor_dir:
        arows = load(os.path.join(anchor_dir, "raw/smtp.jsonl"))
        same = {m: cells(arows, m) for m in ("sieve", "direct", "sink")}
    p = os.path.join(outdir, "dns-mode.txt")
    if os.path.exists(p):
        c = os.path.join(outdir, "dns.port.count")
        print(open(p).read().strip() + (", %s queries in all" % open(c).read().strip()
                                        if os.path.exists(c) else "") + "\n")
    n = {len(v) for v in ours.values()}
    nmsg = {r["messages"] for v in ours.values() for r in v}
    print("### SMTP: messages/s delivered (fsynced in a Maildir) and server CPU per message\n")
    print("hikyaku: N=%s messages per cell, %s run(s) per cell (median)."
          % ("/".join(map(str, sorted(nmsg))), "/".join(map(str, sorted(n)))))
    if same:
        print("Anchor: a run of its smtp phase with the same N, in the same sitting.\n")
        print("| size | clients | hikyaku msg/s | hikyaku CPU ms/msg | anchor Sieve msg/s | anchor Sieve CPU ms/msg "
              "| anchor Postfix-only msg/s | anchor Postfix-only CPU ms/msg | smtp-sink msg/s | msg/s vs Sieve | CPU vs Sieve |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
    else:
        print("Anchor: RESULTS.md (N=5000, median of 3), **another sitting**: compare with care.\n")
        print("| size | clients | hikyaku msg/s | hikyaku CPU ms/msg | anchor Sieve msg/s | anchor Sieve CPU ms/msg "
              "| anchor Postfix-only msg/s | anchor Postfix-only CPU ms/msg | msg/s vs Sieve | CPU vs Sieve |")
        print("|---|---|---|---|---|---|---|---|---|---|")
    for key in sorted(ours, key=lambda k: (k[0] != "4k", k[1])):
        rs = ours[key]
        mps, cpu = med(rs, "msgs_per_s"), med(rs, "server_cpu_ms_per_msg")
        bad = sum(1 for r in rs if r.get("errors"))
        flag = " (errors!)" if bad else ""
        if same:
            def g(m, k):
                c = same[m].get(key)
                return (med(c, "msgs_per_s"), med(c, "server_cpu_ms_per_msg")) if c else (None, None)
            sv, dr, sk = g("sieve", key), g("direct", key), g("sink", key)
        else:
            sv, dr = RESULTS_MD.get(("sieve",) + key, (None, None)), RESULTS_MD.get(("direct",) + key, (None, None))
        f = lambda x: "–" if x is None else ("%.1f" % x if x >= 10 else "%.2f" % x)
        ratio = "%.2f×" % (mps / sv[0]) if sv[0] else "–"
        cratio = "%.2f×" % (cpu / sv[1]) if sv[1] else "–"
        row = [key[0], str(key[1]), "**%.1f**%s" % (mps, flag), "**%.2f**" % cpu,
               f(sv[0]), f(sv[1]), f(dr[0]), f(dr[1])]
        if same:
            row.append(f(sk[0]))
        row += [ratio, cratio]
        print("| " + " | ".join(row) + " |")
    print("\nTargets: 3× the anchor Sieve path's delivered msg/s, 1/4 of its CPU per message "
          "(\"msg/s vs Sieve\" ≥ 3.00×, \"CPU vs Sieve\" ≤ 0.25×).")
    for key, rs in sorted(ours.items()):
        for r in rs:
            if r.get("errors"):
                print("errors %s/%s: %s" % (key[0], key[1], r["errors"]))
    p = os.path.join(outdir, "sessions.json")
    if os.path.exists(p):
        s = json.load(open(p))
        print("\n### %d idle SMTP sessions (connect, 220, EHLO, 250, idle %.0f s)\n"
              % (s["connections"], s["hold_s"]))
        print("| got 220 | got 250 | still open after the hold | seconds to all 250 | server RSS before | "
              "RSS with all idle | RSS per session | RSS after they quit | threads | fds |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        print("| %d | %d | %d | %.2f | %.1f MiB | %.1f MiB | %.1f KiB | %.1f MiB | %s | %s |" % (
            s["got_220"], s["got_250"], s["open_after_hold"], s["seconds_to_all_ehlo"],
            s["rss_before_kib"] / 1024, s["rss_idle_kib"] / 1024, s["rss_per_session_kib"],
            s["rss_after_close_kib"] / 1024, s["server_threads_idle"], s["server_fds_idle"]))
        if s.get("errors"):
            print("\nerrors: %s" % s["errors"])
    p = os.path.join(outdir, "profile-cpu.txt")
    if os.path.exists(p):
        print("\n### Where the CPU goes\n\n" + open(p).read().strip())
    p = os.path.join(outdir, "strace-c.txt")
    if os.path.exists(p):
        print("\n`strace -c -f` over one such run (slowed by strace; counts, not times, matter):\n")
        print("```")
        print("\n".join(open(p).read().splitlines()[:22]))
        print("```")


if __name__ == "__main__":
    main()
