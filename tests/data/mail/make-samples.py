#!/usr/bin/python3
"""Writes the sample messages in this directory (CRLF line ends, as on the
wire). Deterministic; rerun after editing. The Japanese encodings are made
here, not copied, so the tests check our decoder against Python's codecs
and glibc iconv:
  - ISO-2022-JP with NEC row 13 (①) is built by hand from EUC-JP-MS bytes
    (ESC $ B + (EUC & 0x7F)), the way Outlook's CP50220 writes it;
  - Shift_JIS text is CP932 bytes (0x8740 = ①, 0x5C = backslash).
usage: /usr/bin/python3 tests/data/mail/make-samples.py
"""
import base64
import os
import subprocess
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))


def iconv(text, to):
    return subprocess.run(["iconv", "-f", "UTF-8", "-t", to], input=text.encode(),
                          stdout=subprocess.PIPE, check=True).stdout


def jis(text):
    """ISO-2022-JP (CP50220 style): JIS X 0208 runs incl. NEC row 13."""
    euc = iconv(text, "EUC-JP-MS")
    out, i, mode = bytearray(), 0, "ascii"
    while i < len(euc):
        c = euc[i]
        if c < 0x80:
            if mode != "ascii":
                out += b"\x1b(B"
                mode = "ascii"
            out.append(c)
            i += 1
        else:
            if mode != "jis":
                out += b"\x1b$B"
                mode = "jis"
            out += bytes([euc[i] & 0x7F, euc[i + 1] & 0x7F])
            i += 2
    if mode != "ascii":
        out += b"\x1b(B"
    return bytes(out)


def ew(raw, charset):
    return b"=?" + charset.encode() + b"?B?" + base64.b64encode(raw) + b"?="


def crlf(b):
    return b.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def write(name, data):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(crlf(data))


DATE = b"Date: Tue, 14 Oct 2025 09:30:00 +0900\n"

# 1. unsolicited ad, subject in ISO-2022-JP base64 with 未承諾広告※
write("ad-iso2022jp.eml",
      b"Return-Path: <bounce@deals.example.jp>\n"
      b"From: " + ew(jis("激安ショップ"), "ISO-2022-JP") + b" <info@deals.example.jp>\n"
      b"To: user@example.jp\n"
      b"Subject: " + ew(jis("未承諾広告※ 今だけ半額セール"), "ISO-2022-JP") + b"\n" + DATE +
      b"Message-ID: <ad-20251014-1@deals.example.jp>\n"
      b"MIME-Version: 1.0\n"
      b"Content-Type: text/plain; charset=ISO-2022-JP\n"
      b"Content-Transfer-Encoding: 7bit\n"
      b"\n" + jis("本日限定！全商品が半額です。\n配信停止はこちら: http://deals.example.jp/stop\n"))

# 2. personal mail in ISO-2022-JP with ① (NEC row 13) in the body
write("personal-iso2022jp.eml",
      b"From: " + ew(jis("山田 太郎"), "ISO-2022-JP") + b" <taro@example.jp>\n"
      b"To: " + ew(jis("鈴木 花子"), "ISO-2022-JP") + b" <hanako@example.jp>\n"
      b"Subject: " + ew(jis("週末の予定"), "ISO-2022-JP") + b"\n" + DATE +
      b"Message-ID: <personal-1@example.jp>\n"
      b"MIME-Version: 1.0\n"
      b"Content-Type: text/plain; charset=\"iso-2022-jp\"\n"
      b"Content-Transfer-Encoding: 7bit\n"
      b"\n" + jis("花子さん\n\n週末の予定です。\n①土曜日は映画\n②日曜日は買い物\n\n太郎\n"))

# 3. Shift_JIS (CP932) mail
write("sjis.eml",
      b"From: " + ew("佐藤".encode("cp932"), "Shift_JIS") + b" <sato@example.jp>\n"
      b"To: user@example.jp\n"
      b"Subject: " + ew("お見積り①の件".encode("cp932"), "Shift_JIS") + b"\n" + DATE +
      b"Message-ID: <sjis-1@example.jp>\n"
      b"MIME-Version: 1.0\n"
      b"Content-Type: text/plain; charset=Shift_JIS\n"
      b"Content-Transfer-Encoding: 8bit\n"
      b"\n" + "お世話になっております。\n①見積書を送付します。\n保存先: C:\\見積\\2025\n金額は１０，０００円～です。\n".encode("cp932"))

# 4. EUC-JP mail
write("eucjp.eml",
      b"From: " + ew(iconv("高橋", "EUC-JP-MS"), "EUC-JP") + b" <takahashi@example.jp>\n"
      b"To: user@example.jp\n"
      b"Subject: " + ew(iconv("会議の議事録", "EUC-JP-MS"), "EUC-JP") + b"\n" + DATE +
      b"Message-ID: <eucjp-1@example.jp>\n"
      b"MIME-Version: 1.0\n"
      b"Content-Type: text/plain; charset=EUC-JP\n"
      b"Content-Transfer-Encoding: 8bit\n"
      b"\n" + iconv("本日の会議の議事録を共有します。\n①予算について\n②日程について\n", "EUC-JP-MS"))

# 5. multipart/mixed with a PDF, RFC 2231 Japanese filename (and an
#    Outlook-style RFC 2047 name= on Content-Type)
pdf = (b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
       b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n"
       b"trailer << /Root 1 0 R >>\n%%EOF\n")
fname = "請求書_2025年10月.pdf"
pct = urllib.parse.quote(fname.encode("utf-8"), safe="")
b64 = base64.encodebytes(pdf)
write("invoice-pdf-rfc2231.eml",
      b"From: Accounting <billing@vendor.example.co.jp>\n"
      b"To: user@example.jp\n"
      b"Subject: " + ew("10月分のご請求書".encode("utf-8"), "UTF-8") + b"\n" + DATE +
      b"Message-ID: <invoice-1@vendor.example.co.jp>\n"
      b"MIME-Version: 1.0\n"
      b"Content-Type: multipart/mixed; boundary=\"----=_Part_0_1234.5678\"\n"
      b"\n"
      b"This is a multi-part message in MIME format.\n"
      b"\n"
      b"------=_Part_0_1234.5678\n"
      b"Content-Type: text/plain; charset=UTF-8\n"
      b"Content-Transfer-Encoding: base64\n"
      b"\n" + base64.encodebytes("10月分のご請求書を添付いたします。\n".encode("utf-8")) +
      b"\n"
      b"------=_Part_0_1234.5678\n"
      b"Content-Type: application/pdf;\n"
      b" name=\"" + ew(fname.encode("utf-8"), "UTF-8") + b"\"\n"
      b"Content-Transfer-Encoding: base64\n"
      b"Content-Disposition: attachment;\n"
      b" filename*=UTF-8''" + pct.encode() + b"\n"
      b"\n" + b64 +
      b"------=_Part_0_1234.5678--\n")

# 6. mailing list
write("mailing-list.eml",
      b"Return-Path: <dev-bounces@lists.example.org>\n"
      b"From: Alice Example <alice@example.org>\n"
      b"To: dev@lists.example.org\n"
      b"Subject: [dev] Release 2.4 planning\n" + DATE +
      b"Message-ID: <release-24@example.org>\n"
      b"List-Id: Developers <dev.lists.example.org>\n"
      b"List-Unsubscribe: <mailto:dev-leave@lists.example.org>\n"
      b"List-Post: <mailto:dev@lists.example.org>\n"
      b"Precedence: list\n"
      b"MIME-Version: 1.0\n"
      b"Content-Type: text/plain; charset=us-ascii\n"
      b"\n"
      b"Hi all,\n\nLet's freeze features for 2.4 on Friday.\n\n-- \nAlice\n")

# 7. auto-submitted (vacation reply)
write("auto-submitted.eml",
      b"From: Bob Example <bob@example.com>\n"
      b"To: user@example.jp\n"
      b"Subject: Out of office: Re: meeting\n" + DATE +
      b"Message-ID: <ooo-1@example.com>\n"
      b"Auto-Submitted: auto-replied\n"
      b"X-Auto-Response-Suppress: All\n"
      b"MIME-Version: 1.0\n"
      b"Content-Type: text/plain; charset=utf-8\n"
      b"Content-Transfer-Encoding: quoted-printable\n"
      b"\n"
      b"I am out of the office until Monday and will reply when I am back. =\n"
      b"For urgent matters please call the front desk =E2=80=94 thanks.\n")

# 8. bounce from MAILER-DAEMON (RFC 3464)
write("bounce.eml",
      b"Return-Path: <>\n"
      b"From: MAILER-DAEMON@mx.example.jp (Mail Delivery System)\n"
      b"To: user@example.jp\n"
      b"Subject: Undelivered Mail Returned to Sender\n" + DATE +
      b"Message-ID: <bounce-1@mx.example.jp>\n"
      b"Auto-Submitted: auto-replied\n"
      b"MIME-Version: 1.0\n"
      b"Content-Type: multipart/report; report-type=delivery-status;\n"
      b"\tboundary=\"B0UNCE.1760400000/mx.example.jp\"\n"
      b"\n"
      b"This is a MIME-encapsulated message.\n"
      b"\n"
      b"--B0UNCE.1760400000/mx.example.jp\n"
      b"Content-Description: Notification\n"
      b"Content-Type: text/plain; charset=us-ascii\n"
      b"\n"
      b"I'm sorry to have to inform you that your message could not\n"
      b"be delivered to one or more recipients.\n"
      b"\n"
      b"<nobody@example.net>: host mx.example.net said: 550 5.1.1 User unknown\n"
      b"\n"
      b"--B0UNCE.1760400000/mx.example.jp\n"
      b"Content-Description: Delivery report\n"
      b"Content-Type: message/delivery-status\n"
      b"\n"
      b"Reporting-MTA: dns; mx.example.jp\n"
      b"\n"
      b"Final-Recipient: rfc822; nobody@example.net\n"
      b"Action: failed\n"
      b"Status: 5.1.1\n"
      b"\n"
      b"--B0UNCE.1760400000/mx.example.jp\n"
      b"Content-Description: Undelivered Message\n"
      b"Content-Type: message/rfc822\n"
      b"\n"
      b"From: user@example.jp\n"
      b"To: nobody@example.net\n"
      b"Subject: hello\n"
      b"\n"
      b"Are you there?\n"
      b"\n"
      b"--B0UNCE.1760400000/mx.example.jp--\n")

# 9. plain English mail
write("plain-english.eml",
      b"From: \"Carol Smith\" <carol@example.com>\n"
      b"To: Dave <dave@example.com>, erin@example.com\n"
      b"Cc: team: frank@example.com, grace@example.com;\n"
      b"Subject: Lunch on Thursday?\n" + DATE +
      b"Message-ID: <lunch-1@example.com>\n"
      b"X-Priority: 3 (Normal)\n"
      b"MIME-Version: 1.0\n"
      b"Content-Type: text/plain; charset=us-ascii; format=flowed\n"
      b"Content-Transfer-Encoding: 7bit\n"
      b"\n"
      b"Hi Dave,\n\nAre you free for lunch on Thursday at noon?\n\nCarol\n")
