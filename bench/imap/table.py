#!/usr/bin/env python3
"""Markdown tables for bench/imap/run.sh: our IMAP/POP3 next to Dovecot's.

usage: table.py OUT [ANCHOR_RESULTS]
OUT holds results/raw/{imap,pop3,idle}.jsonl (ours: IMAP states first,
cold, warm; POP3 cold, warm). ANCHOR_RESULTS (optional) is the anchor
run.sh's results dir of the same sitting (raw/{imap,pop3,idle}.jsonl, IMAP
cold and warm); without it the Dovecot rows are RESULTS.md's numbers
(another sitting, marked so).
"""
import json
import os
import statistics
import sys

# RESULTS.md (e), (f), (g): medians, another sitting
RESULTS_MD = {
    ("imap", "cold"): {"login": 0.017, "select": 0.036, "fetch_meta": 0.647, "fetch_body": 0.331,
                       "search_subj": 0.045, "search_hdr": 0.384, "total": 1.449, "server_cpu": 1.36},
    ("imap", "warm"): {"login": 0.018, "select": 0.005, "fetch_meta": 0.207, "fetch_body": 0.357,
                       "search_subj": 0.041, "search_hdr": 0.029, "total": 0.682, "server_cpu": 0.61},
    ("pop3", "cold"): {"login": 0.017, "list": 0.012, "uidl": 0.025, "retr_all": 3.139, "total": 3.252,
                       "server_cpu": 1.47},
    ("pop3", "warm"): {"login": 0.018, "list": 0.012, "uidl": 0.029, "retr_all": 2.900, "total": 2.977,
                       "server_cpu": 1.40},
    ("idle", None): {"pss_kib_marginal_per_conn": 546, "rss_kib_marginal_per_conn": 5158,
                     "rss_kib_total_per_conn": 5282, "uss_kib_marginal_per_conn": 528, "connections": 200},
}
IMAP_COLS = ["login", "select", "fetch_meta", "fetch_body", "search_subj", "search_hdr"]
POP3_COLS = ["login", "list", "uidl", "retr_all"]
IDLE_KEYS = ["pss_kib_marginal_per_conn", "rss_kib_marginal_per_conn", "uss_kib_marginal_per_conn",
             "pss_kib_total_per_conn", "rss_kib_total_per_conn"]
TARGET_KIB = 64


def load(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def flat(r):
    """One run as {column: value}."""
    d = dict(r.get("phases_s", {}))
    d["total"] = r["total_s"]
    d["server_cpu"] = r["server_cpu_total_s"]
    d["client_cpu"] = r["client_cpu_s"]
    return d


def by_state(rows):
    out = {}
    for r in rows:
        out.setdefault(r["state"], []).append(flat(r))
    return out


def cell(runs, key, digits=3):
    vals = [float(r[key]) for r in runs if key in r]
    if not vals:
        return "-"
    m = statistics.median(vals)
    if len(vals) == 1:
        return f"{m:.{digits}f}"
    return f"{m:.{digits}f} ({min(vals):.{digits}f}–{max(vals):.{digits}f})"


def med(runs, key):
    vals = [float(r[key]) for r in runs if key in r]
    return statistics.median(vals) if vals else None


def proto_table(name, cols, ours, dove, dove_label, our_states, dove_states):
    head = ["server", "state", "runs"] + [c + " s" for c in cols] + ["total s", "server CPU s", "client CPU s"]
    print(f"### {name}\n")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for st in dove_states:
        runs = dove.get(st)
        if not runs:
            continue
        print("| " + " | ".join([dove_label, st, str(len(runs))] +
                                [cell(runs, c) for c in cols + ["total", "server_cpu", "client_cpu"]]) + " |")
    for st in our_states:
        runs = ours.get(st)
        if not runs:
            continue
        print("| " + " | ".join(["hikyaku", st, str(len(runs))] +
                                [cell(runs, c) for c in cols + ["total", "server_cpu", "client_cpu"]]) + " |")
    print()


def main():
    out = sys.argv[1]
    adir = sys.argv[2] if len(sys.argv) > 2 else None
    raw = os.path.join(out, "results/raw")
    ours = {p: by_state(load(os.path.join(raw, p + ".jsonl"))) for p in ("imap", "pop3")}
    our_idle = load(os.path.join(raw, "idle.jsonl"))
    if adir:
        dlabel = "Dovecot"
        dove = {p: by_state(load(os.path.join(adir, "raw", p + ".jsonl"))) for p in ("imap", "pop3")}
        dove_idle = load(os.path.join(adir, "raw", "idle.jsonl"))
    else:
        dlabel = "Dovecot (RESULTS.md)"
        dove = {p: {st: [RESULTS_MD[(p, st)] | {"client_cpu": float("nan")}]
                    for st in ("cold", "warm")} for p in ("imap", "pop3")}
        dove_idle = [RESULTS_MD[("idle", None)]]
    info = os.path.join(out, "run-info.txt")
    if os.path.exists(info):
        print("```\n" + open(info).read().strip() + "\n```\n")
    print("States. hikyaku: *first* = our first sync ever of the generated Maildir (every file gets a UID and "
          "is renamed to carry ,U=); *cold* = our index (hikyaku-uidlist*) deleted, rebuilt from the names; "
          "*warm* = unchanged since the last session. Dovecot: *cold* = dovecot* index, cache and uidlist "
          "deleted; *warm* = unchanged. Medians (min–max).\n")
    proto_table("IMAP: client/imap_bench.py, 10,000 messages", IMAP_COLS, ours["imap"], dove["imap"], dlabel,
                ["first", "cold", "warm"], ["cold", "warm"])
    proto_table("POP3: client/pop3_bench.py, LIST + UIDL + RETR of all 10,000", POP3_COLS, ours["pop3"],
                dove["pop3"], dlabel, ["cold", "warm"], ["cold", "warm"])

    print("### Idle IMAP sessions: client/imap_idle.py (logged in, INBOX selected), KiB per connection\n")
    print("| KiB per connection | " + dlabel + " | hikyaku |")
    print("|---|---|---|")
    print("| connections | " + ", ".join(str(r.get("connections")) for r in dove_idle) + " | " +
          ", ".join(str(r.get("connections")) for r in our_idle) + " |")
    for k in IDLE_KEYS:
        print(f"| {k} | {cell(dove_idle, k, 1)} | {cell(our_idle, k, 1)} |")
    procs = [r["after"]["processes"] for r in dove_idle if "after" in r]
    oprocs = [r["after"]["processes"] for r in our_idle if "after" in r]
    if procs or oprocs:
        print(f"| server processes with the sessions open | {', '.join(map(str, procs)) or '-'} | "
              f"{', '.join(map(str, oprocs)) or '-'} |")
    print()

    # the rows, side by side
    print("### Side by side (medians): the issue's targets\n")
    print("| row | Dovecot | hikyaku | faster / within target? |")
    print("|---|---|---|---|")

    def row(label, d, h, lower_better=True, unit="s", target=None):
        if d is None or h is None:
            print(f"| {label} | {d if d is not None else '-'} | {h if h is not None else '-'} | - |")
            return
        if target is not None:
            ok = h <= target
            verdict = f"{'yes' if ok else 'NO'} (target ≤ {target} {unit})"
        else:
            ok = h < d if lower_better else h > d
            verdict = f"{'yes' if ok else 'NO'} ({d / h:.2f}×)" if h else "-"
        fmt = "{:.3f}" if unit == "s" else "{:.1f}"
        print(f"| {label} | {fmt.format(d)} {unit} | {fmt.format(h)} {unit} | {verdict} |")

    di, hi = dove["imap"], ours["imap"]
    for col in IMAP_COLS + ["total"]:
        row(f"IMAP warm {col}", med(di.get("warm", []), col), med(hi.get("warm", []), col))
    row("IMAP session, Dovecot cold vs our index deleted", med(di.get("cold", []), "total"),
        med(hi.get("cold", []), "total"))
    row("IMAP session, Dovecot cold vs our first sync ever", med(di.get("cold", []), "total"),
        med(hi.get("first", []), "total"))
    dp, hp = dove["pop3"], ours["pop3"]
    for st in ("cold", "warm"):
        row(f"POP3 {st} session (LIST+UIDL+RETR×10,000)", med(dp.get(st, []), "total"), med(hp.get(st, []), "total"))
    row("idle IMAP: marginal PSS per connection", med(dove_idle, "pss_kib_marginal_per_conn"),
        med(our_idle, "pss_kib_marginal_per_conn"), unit="KiB", target=TARGET_KIB)
    row("idle IMAP: marginal RSS per connection", med(dove_idle, "rss_kib_marginal_per_conn"),
        med(our_idle, "rss_kib_marginal_per_conn"), unit="KiB", target=TARGET_KIB)


if __name__ == "__main__":
    main()
