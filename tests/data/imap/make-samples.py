#!/usr/bin/python3
"""Writes the sample messages for tests/unit/test_imap_message.c (CRLF line
ends as stored, except bare-lf.eml). Deterministic; rerun after editing:
  /usr/bin/python3 tests/data/imap/make-samples.py
The Japanese bodies are encoded here with Python's codecs (iso2022_jp,
cp932, euc_jp), so the tests check our decoding against another
implementation.
"""
import base64
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def write(name, text, crlf=True):
    data = text if isinstance(text, bytes) else text.encode("utf-8")
    data = data.replace(b"\r\n", b"\n")
    if crlf:
        data = data.replace(b"\n", b"\r\n")
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)


def b64(data, width=76):
    s = base64.b64encode(data).decode()
    return "\n".join(s[i:i + width] for i in range(0, len(s), width))


def ew(text, charset="iso-2022-jp", codec="iso2022_jp"):
    return "=?%s?B?%s?=" % (charset.upper(), base64.b64encode(text.encode(codec)).decode())


# 1. a plain one-part message, every envelope field present
write("simple.eml", """\
Return-Path: <alice@example.org>
Received: from mx.example.org by mail.example.net; Mon, 7 Dec 2026 09:00:00 +0900
Date: Mon, 7 Dec 2026 09:00:00 +0900
From: Alice Liddell <alice@example.org>
Sender: list-owner@example.org
Reply-To: "Alice (home)" <alice@home.example>
To: bob@example.net, "Carol \\"CJ\\" Jones" <carol@example.net>
Cc: dave@example.net
Bcc: eve@example.net
Subject: Lunch on Friday?
In-Reply-To: <prev-1@example.net>
Message-ID: <simple-1@example.org>
MIME-Version: 1.0
Content-Type: text/plain; charset="utf-8"
Content-Transfer-Encoding: 7bit

Hi Bob,

Shall we have lunch on Friday at noon?

Alice
""")

# 2. multipart/alternative, quoted-printable parts
write("alternative.eml", """\
From: news@shop.example
To: bob@example.net
Subject: Weekly offers
Date: Tue, 8 Dec 2026 10:30:00 +0000
Message-ID: <alt-1@shop.example>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="=_alt_42"

This is a multi-part message in MIME format.

--=_alt_42
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

Caf=E9 cr=E8me offers this week.
--=_alt_42
Content-Type: text/html; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

<html><body><p>Caf=E9 <b>CR=C8ME</b> offers this week.</p></body></html>
--=_alt_42--
""")

# 3. multipart/mixed: text, a PDF with an RFC 2231 filename, a forwarded
#    message/rfc822 that is itself multipart
pdf = b"%PDF-1.4\n" + bytes(range(256)) + b"\n%%EOF\n"
write("mixed.eml", """\
From: Bob <bob@example.net>
To: alice@example.org
Subject: Fwd: invoice
Date: Wed, 9 Dec 2026 14:00:00 +0100
Message-ID: <mixed-1@example.net>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"
Content-Language: en

--outer
Content-Type: text/plain; charset=us-ascii

See the invoice and the forwarded note.
--outer
Content-Type: application/pdf; name="invoice.pdf"
Content-Disposition: attachment;
 filename*0*=utf-8''%E8%AB%8B%E6%B1%82;
 filename*1*=%E6%9B%B8.pdf
Content-Transfer-Encoding: base64
Content-ID: <pdf1@example.net>
Content-Description: the invoice

@PDF@
--outer
Content-Type: message/rfc822
Content-Disposition: inline

From: Carol <carol@example.net>
To: bob@example.net
Subject: the note
Date: Tue, 8 Dec 2026 08:00:00 +0000
Message-ID: <note-1@example.net>
Content-Type: multipart/alternative; boundary="inner"

--inner
Content-Type: text/plain

Please pay by Friday.
--inner
Content-Type: text/html; charset=utf-8
Content-Location: http://example.net/note.html

<p>Please pay by Friday.</p>
--inner--
--outer--
""".replace("@PDF@", b64(pdf)))

# 4. RFC 2047 encoded words in the header, and an 8-bit UTF-8 subject line
#    in a one-part message with no Content-Type at all
write("encoded-words.eml", """\
From: =?UTF-8?Q?Andr=C3=A9_Dupont?= <andre@example.fr>
To: =?ISO-8859-1?Q?J=F6rg?= <joerg@example.de>
Subject: =?UTF-8?B?UsOpc3Vtw6kgZHUgcHJvamV0?= =?UTF-8?Q?_STRASSE?=
Date: 10 Dec 2026 12:00 GMT
Message-ID: <ew-1@example.fr>

Le r\u00e9sum\u00e9 est pr\u00eat.
""")

# 5. groups, an empty group, a route, an address without a domain
write("groups.eml", """\
From: "Team Lead" <lead@example.com>
To: project: ann@example.com, "Ben B." <ben@example.com>;, undisclosed-recipients:;
Cc: <@relay.example.com:carl@example.com>, MAILER-DAEMON
Subject: groups
Date: Thu, 10 Dec 2026 08:15:00 -0500
Message-ID: <groups-1@example.com>

body
""")

# 6. almost nothing: no Date, no From, no Message-ID, no Content-Type
write("missing.eml", """\
Subject: no sender

just text
""")

# 7. bare LF line ends (a file copied in from a Unix mailbox)
write("bare-lf.eml", """\
From: unix@example.org
To: bob@example.net
Subject: bare LF
Date: Fri, 11 Dec 2026 07:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=b1

--b1
Content-Type: text/plain

line one
line two
--b1
Content-Type: text/plain; charset=utf-8
Content-Disposition: attachment; filename=notes.txt

notes
--b1--
""", crlf=False)

# 8. broken MIME: the closing boundary never comes
write("no-close.eml", """\
From: broken@example.org
Subject: unterminated
Content-Type: multipart/mixed; boundary="zz"

--zz
Content-Type: text/plain

first part
--zz
Content-Type: text/plain

second part, and then the message just ends
""")

# 9. Japanese: ISO-2022-JP subject and body, Shift_JIS and EUC-JP bodies
jp_subject = "\u4f1a\u8b70\u306e\u304a\u77e5\u3089\u305b"          # 会議のお知らせ
jp_body = "\u660e\u65e5\u306e\u4f1a\u8b70\u306f\u5341\u6642\u304b\u3089\u3067\u3059\u3002\n\u8cc7\u6599\u3092\u3054\u78ba\u8a8d\u304f\u3060\u3055\u3044\u3002\n"
# 明日の会議は十時からです。 資料をご確認ください。
write("iso2022jp.eml", ("""\
From: %s <tanaka@example.jp>
To: suzuki@example.jp
Subject: %s
Date: Sat, 12 Dec 2026 10:00:00 +0900
Message-ID: <jis-1@example.jp>
MIME-Version: 1.0
Content-Type: text/plain; charset=ISO-2022-JP
Content-Transfer-Encoding: 7bit

""" % (ew("\u7530\u4e2d"), ew(jp_subject))).encode() + jp_body.encode("iso2022_jp"))

write("sjis.eml", ("""\
From: sato@example.jp
To: suzuki@example.jp
Subject: =?Shift_JIS?B?%s?=
Date: Sat, 12 Dec 2026 11:00:00 +0900
MIME-Version: 1.0
Content-Type: text/plain; charset=Shift_JIS
Content-Transfer-Encoding: base64

%s
""" % (base64.b64encode("\u898b\u7a4d\u66f8".encode("cp932")).decode(),
       b64(("\u304a\u898b\u7a4d\u308a\u3092\u6dfb\u4ed8\u3057\u307e\u3059\u3002\uff21\uff22\uff23\u682a\u5f0f\u4f1a\u793e\n").encode("cp932")))).encode())
# 見積書 / お見積りを添付します。ＡＢＣ株式会社

write("eucjp.eml", ("""\
From: ito@example.jp
To: suzuki@example.jp
Subject: report
Date: Sat, 12 Dec 2026 12:00:00 +0900
MIME-Version: 1.0
Content-Type: text/plain; charset=EUC-JP
Content-Transfer-Encoding: 8bit

""").encode() + "\u6708\u6b21\u5831\u544a\u66f8\u3092\u9001\u308a\u307e\u3059\u3002\n".encode("euc_jp"))
# 月次報告書を送ります。

# 10. the message of RFC 3501's FETCH example (6.4.5 / 7.4.2): its ENVELOPE
#     and a one-part body of 3028 octets in 92 lines
rfc_lines = ["%s" % ("x" * (31 if i < 84 else 30)) for i in range(92)]
write("rfc3501-example.eml", """\
Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)
From: Terry Gray <gray@cac.washington.edu>
Subject: IMAP4rev1 WG mtg summary and minutes
To: imap@cac.washington.edu
cc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>
Message-Id: <B27397-0100000@cac.washington.edu>
MIME-Version: 1.0
Content-Type: TEXT/PLAIN; CHARSET=US-ASCII

""" + "\n".join(rfc_lines) + "\n")
