#!/usr/bin/env python3
"""Benchmark messages for `make bench`.

The English messages are the anchor benchmark's payloads, byte for byte:
the generators below are copied from /work/shared/bench/anchor/tools/
gen_messages.py and textgen.py (same seeds, same output), so our numbers
and Pigeonhole's are measured on the same mail. bench/run.sh checks the
copy against the anchor's generator when that folder is present.

Added here (the anchor has none): an ISO-2022-JP variant of each kind,
"KIND-ja-SIZE.eml", with RFC 2047 ISO-2022-JP display names and subjects
and ISO-2022-JP (7bit) text parts, made with Python's iso2022_jp codec.

Each kind has an envelope sender and the outcome rules20 must give it:
  newsletter  multipart/alternative, List-Id shop.example -> Newsletters (10 rules)
  work        multipart/mixed + PDF, corp.example, "budget" -> Work + \\Flagged (14 rules)
  spam        X-Spam-Score 9                               -> Junk (2 rules)
  personal    plain text from a friend                     -> INBOX (all 20 rules)
They are written to OUTDIR/manifest.txt, one message a line:
  FILE ENVELOPE-FROM RULES-EVALUATED OUTCOME
Deterministic (fixed seeds), LF line endings.
usage: gen_messages.py OUTDIR
"""
import base64
import os
import random
import sys

# --- copied from the anchor's tools/textgen.py --------------------------------

WORDS = ("the of and to in is for that on with as by this be are from at it an "
         "or have will can not all we our your more new about which their has "
         "report meeting project customer delivery schedule review team office "
         "quarter plan update release server network storage account billing "
         "invoice support question answer draft final version change request "
         "week month year today tomorrow morning evening weekend holiday travel "
         "price offer product order shipping return discount member service "
         "please thanks regards hello best note attached summary details issue").split()


def paragraph(rng, nwords):
    words = [rng.choice(WORDS) for _ in range(nwords)]
    words[0] = words[0].capitalize()
    text, line, out = " ".join(words) + ".", "", []
    for w in text.split(" "):            # wrap at ~72 columns
        if len(line) + len(w) + 1 > 72:
            out.append(line)
            line = w
        else:
            line = (line + " " + w) if line else w
    out.append(line)
    return "\n".join(out)


def text_of_size(rng, size):
    """Paragraphs of filler until about `size` bytes."""
    parts, total = [], 0
    while total < size:
        p = paragraph(rng, rng.randint(30, 90))
        parts.append(p)
        total += len(p) + 2
    return "\n\n".join(parts)[:max(size, 0)].rsplit(" ", 1)[0] + "\n"


def base64_blob(rng, nbytes):
    raw = bytes(rng.getrandbits(8) for _ in range(nbytes))
    b = base64.b64encode(raw).decode()
    return "\n".join(b[i:i + 76] for i in range(0, len(b), 76)) + "\n"


# --- copied from the anchor's tools/gen_messages.py ---------------------------

DATE = "Tue, 14 Oct 2025 09:30:00 +0000"


def hdr(lines):
    return "\n".join(lines) + "\n\n"


def newsletter(rng, size):
    h = hdr([
        "From: Shop Weekly <news@shop.example>",
        "To: subscribers@shop.example",
        "Subject: Weekly deals: 20% off garden tools",
        "Date: " + DATE,
        "Message-ID: <weekly-2025-42@shop.example>",
        "List-Id: Weekly Deals <weekly.shop.example>",
        "List-Unsubscribe: <mailto:unsubscribe@shop.example>",
        "Precedence: bulk",
        "MIME-Version: 1.0",
        'Content-Type: multipart/alternative; boundary="=_alt_42"',
    ])
    budget = size - len(h) - 200
    txt = text_of_size(rng, budget // 3)
    html = "<html><body><p>" + text_of_size(rng, budget * 2 // 3 - 40).replace(
        "\n\n", "</p>\n<p>") + "</p></body></html>\n"
    body = ("--=_alt_42\nContent-Type: text/plain; charset=utf-8\n\n" + txt +
            "\n--=_alt_42\nContent-Type: text/html; charset=utf-8\n\n" + html +
            "\n--=_alt_42--\n")
    return h + body


def work(rng, size):
    h = hdr([
        "From: Alice Example <alice@corp.example>",
        "To: Bench User <user@sieve.bench>",
        "Cc: Project Team <team@corp.example>",
        "Subject: Re: Q3 planning and budget",
        "Date: " + DATE,
        "Message-ID: <q3-plan-7@corp.example>",
        "In-Reply-To: <q3-plan-6@corp.example>",
        "References: <q3-plan-5@corp.example> <q3-plan-6@corp.example>",
        "MIME-Version: 1.0",
        'Content-Type: multipart/mixed; boundary="=_mix_7"',
    ])
    budget = size - len(h) - 300
    if size > 20000:                      # big one: short text + attachment
        txt = text_of_size(rng, 3000)
        att = base64_blob(rng, (budget - 3000) * 3 // 4)
    else:
        txt, att = text_of_size(rng, budget - 200), base64_blob(rng, 100)
    txt = "Hi,\n\nthe budget for Q3 is attached.\n\n" + txt
    body = ("--=_mix_7\nContent-Type: text/plain; charset=utf-8\n\n" + txt +
            "\n--=_mix_7\nContent-Type: application/pdf; name=q3.pdf\n"
            "Content-Disposition: attachment; filename=q3.pdf\n"
            "Content-Transfer-Encoding: base64\n\n" + att + "\n--=_mix_7--\n")
    return h + body


def spam(rng, size):
    h = hdr([
        "From: Best Offers <deals@cheap-offers.example>",
        "To: user@sieve.bench",
        "Subject: Limited time offer just for you",
        "Date: " + DATE,
        "Message-ID: <x9s8d7f6@cheap-offers.example>",
        "X-Spam-Score: 9",
        "X-Spam-Status: Yes, score=9.1",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
    ])
    return h + text_of_size(rng, size - len(h))


def personal(rng, size):
    h = hdr([
        "From: Bob <bob@friends.example>",
        "To: Bench User <user@sieve.bench>",
        "Subject: Dinner on Friday?",
        "Date: " + DATE,
        "Message-ID: <dinner-friday-1@friends.example>",
        "User-Agent: ExampleMail/1.0",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
    ])
    return h + text_of_size(rng, size - len(h))


# --- ISO-2022-JP variants (ours) -------------------------------------------------

JA_WORDS = ("会議 資料 予定 確認 お願い 来週 今週 明日 午前 午後 打ち合わせ 連絡 "
            "報告 案件 担当 お客様 納品 見積 請求書 発送 注文 商品 価格 割引 "
            "季節 週末 旅行 食事 お店 電車 駅 天気 写真 家族 友人 趣味 "
            "よろしく ありがとう します しました ください ですが ので から まで "
            "について による ための として では には も を が は に で と").split()


def ja_paragraph(rng, nwords):
    """A paragraph of Japanese filler, wrapped at 30 characters (about 70
    bytes a line once encoded)."""
    text, n = "", 0
    while n < nwords:
        k = rng.randint(4, 9)
        text += "".join(rng.choice(JA_WORDS) for _ in range(k)) + rng.choice("。。、")
        n += k
    text = text.rstrip("、") + "。"
    return "\n".join(text[i:i + 30] for i in range(0, len(text), 30))


def ja_text_of_size(rng, size):
    """Japanese paragraphs until about `size` bytes in ISO-2022-JP."""
    parts, total = [], 0
    while total < size:
        p = ja_paragraph(rng, rng.randint(30, 90))
        parts.append(p)
        total += len(jis(p)) + 2
    lines, total = [], 0
    for line in "\n\n".join(parts).split("\n"):
        n = len(jis(line)) + 1
        if total + n > size and lines:
            break
        lines.append(line)
        total += n
    return "\n".join(lines) + "\n"


def jis(s):
    """ISO-2022-JP bytes of s as text (ASCII only), one line at a time so
    that every line ends in ASCII mode."""
    return "\n".join(line.encode("iso2022_jp").decode("ascii") for line in s.split("\n"))


def ew(s):
    """An RFC 2047 encoded word in ISO-2022-JP."""
    return "=?ISO-2022-JP?B?" + base64.b64encode(s.encode("iso2022_jp")).decode() + "?="


JA_CT = "Content-Type: text/plain; charset=ISO-2022-JP\nContent-Transfer-Encoding: 7bit"


def newsletter_ja(rng, size):
    h = hdr([
        "From: " + ew("ショップ週報") + " <news@shop.example>",
        "To: subscribers@shop.example",
        "Subject: " + ew("今週のお買い得: 園芸用品20%オフ"),
        "Date: " + DATE,
        "Message-ID: <weekly-ja-2025-42@shop.example>",
        "List-Id: Weekly Deals <weekly.shop.example>",
        "List-Unsubscribe: <mailto:unsubscribe@shop.example>",
        "Precedence: bulk",
        "MIME-Version: 1.0",
        'Content-Type: multipart/alternative; boundary="=_alt_42"',
    ])
    budget = size - len(h) - 300
    txt = jis(ja_text_of_size(rng, budget // 3))
    html = ("<html><body><p>" +
            jis(ja_text_of_size(rng, budget * 2 // 3 - 40)).replace("\n\n", "</p>\n<p>") +
            "</p></body></html>\n")
    body = ("--=_alt_42\n" + JA_CT + "\n\n" + txt +
            "\n--=_alt_42\nContent-Type: text/html; charset=ISO-2022-JP\n"
            "Content-Transfer-Encoding: 7bit\n\n" + html + "\n--=_alt_42--\n")
    return h + body


def work_ja(rng, size):
    h = hdr([
        "From: " + ew("佐藤 愛") + " <alice@corp.example>",
        "To: " + ew("ベンチ 利用者") + " <user@sieve.bench>",
        "Cc: " + ew("プロジェクトチーム") + " <team@corp.example>",
        "Subject: Re: " + ew("第3四半期の計画と予算"),
        "Date: " + DATE,
        "Message-ID: <q3-plan-ja-7@corp.example>",
        "In-Reply-To: <q3-plan-ja-6@corp.example>",
        "References: <q3-plan-ja-5@corp.example> <q3-plan-ja-6@corp.example>",
        "MIME-Version: 1.0",
        'Content-Type: multipart/mixed; boundary="=_mix_7"',
    ])
    budget = size - len(h) - 400
    if size > 20000:                      # big one: short text + attachment
        txt = ja_text_of_size(rng, 3000)
        att = base64_blob(rng, (budget - 3000) * 3 // 4)
    else:
        txt, att = ja_text_of_size(rng, budget - 250), base64_blob(rng, 100)
    txt = jis("お疲れさまです。\n\n第3四半期の budget（予算）を添付します。\n\n" + txt)
    body = ("--=_mix_7\n" + JA_CT + "\n\n" + txt +
            "\n--=_mix_7\nContent-Type: application/pdf; name=q3.pdf\n"
            "Content-Disposition: attachment; filename=q3.pdf\n"
            "Content-Transfer-Encoding: base64\n\n" + att + "\n--=_mix_7--\n")
    return h + body


def spam_ja(rng, size):
    h = hdr([
        "From: " + ew("特価情報") + " <deals@cheap-offers.example>",
        "To: user@sieve.bench",
        "Subject: " + ew("あなただけの期間限定オファー"),
        "Date: " + DATE,
        "Message-ID: <x9s8d7f6-ja@cheap-offers.example>",
        "X-Spam-Score: 9",
        "X-Spam-Status: Yes, score=9.1",
        "MIME-Version: 1.0",
        JA_CT,
    ])
    return h + jis(ja_text_of_size(rng, size - len(h)))


def personal_ja(rng, size):
    h = hdr([
        "From: " + ew("花子") + " <hanako@friends.example>",
        "To: " + ew("ベンチ 利用者") + " <user@sieve.bench>",
        "Subject: " + ew("金曜日の夕食はどうですか？"),
        "Date: " + DATE,
        "Message-ID: <dinner-friday-ja-1@friends.example>",
        "User-Agent: ExampleMail/1.0",
        "MIME-Version: 1.0",
        JA_CT,
    ])
    return h + jis(ja_text_of_size(rng, size - len(h)))


KINDS = {"newsletter": newsletter, "work": work, "spam": spam,
         "personal": personal}
KINDS_JA = {"newsletter-ja": newsletter_ja, "work-ja": work_ja,
            "spam-ja": spam_ja, "personal-ja": personal_ja}
SIZES = {"4k": 4096, "100k": 102400}
ENVELOPE_FROM = {"newsletter": "news@shop.example", "work": "alice@corp.example",
                 "spam": "deals@cheap-offers.example",
                 "personal": "bob@friends.example"}
# rules of rules20 evaluated, and where the message ends up
OUTCOME = {"newsletter": (10, "Newsletters"), "work": (14, "Work+\\Flagged"),
           "spam": (2, "Junk"), "personal": (20, "INBOX")}


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    manifest = []
    for si, (sname, size) in enumerate(SIZES.items()):
        for ki, (kname, fn) in enumerate(KINDS.items()):
            rng = random.Random(1000 * si + ki)       # the anchor's seeds
            with open(os.path.join(out, f"{kname}-{sname}.eml"), "w") as f:
                f.write(fn(rng, size))
            manifest.append((f"{kname}-{sname}.eml", kname))
        for ki, (kname, fn) in enumerate(KINDS_JA.items()):
            rng = random.Random(5000 + 1000 * si + ki)
            with open(os.path.join(out, f"{kname}-{sname}.eml"), "w", encoding="ascii") as f:
                f.write(fn(rng, size))
            manifest.append((f"{kname}-{sname}.eml", kname[:-3]))
    with open(os.path.join(out, "envelope-from.txt"), "w") as f:
        for k, v in ENVELOPE_FROM.items():
            f.write(f"{k} {v}\n")
    with open(os.path.join(out, "manifest.txt"), "w") as f:
        for name, kind in manifest:
            rules, outcome = OUTCOME[kind]
            f.write(f"{name} {ENVELOPE_FROM[kind]} {rules} {outcome}\n")


if __name__ == "__main__":
    main()
