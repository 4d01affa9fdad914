#!/usr/bin/python3
"""Writes the golden MIME inputs (*.eml) in this directory. The expected
dumps (*.tree) are written by the unit test binary with HK_GOLDEN_UPDATE=1
and reviewed by hand. Line ends are as written in each case (some cases
are LF-only or mixed on purpose); hostile cases are generated:
deep-nesting-100 (100 nested multiparts), parts-5000, header-1mb (a 1 MiB
Subject line), headers-1100 (over the per-part field limit).
usage: /usr/bin/python3 tests/golden/mime/make-cases.py
"""
import base64
import os
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))


def iconv(text, to):
    return subprocess.run(["iconv", "-f", "UTF-8", "-t", to], input=text.encode(),
                          stdout=subprocess.PIPE, check=True).stdout


def jis(text):
    euc = iconv(text, "EUC-JP-MS")
    out, i, mode = bytearray(), 0, "a"
    while i < len(euc):
        if euc[i] < 0x80:
            if mode != "a":
                out += b"\x1b(B"
                mode = "a"
            out.append(euc[i])
            i += 1
        else:
            if mode != "j":
                out += b"\x1b$B"
                mode = "j"
            out += bytes([euc[i] & 0x7F, euc[i + 1] & 0x7F])
            i += 2
    if mode != "a":
        out += b"\x1b(B"
    return bytes(out)


def b64w(raw, cs):
    return b"=?" + cs.encode() + b"?B?" + base64.b64encode(raw) + b"?="


def crlf(b):
    return b.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def write(name, data, eol="crlf"):
    if eol == "crlf":
        data = crlf(data)
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)


H = b"From: a@example.com\nTo: b@example.com\nSubject: %s\nMIME-Version: 1.0\n"

write("alternative.eml", H % b"alternative" +
      b"Content-Type: multipart/alternative; boundary=\"alt\"\n\n"
      b"--alt\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n"
      b"Caf=C3=A9 au lait =\nis ready.\n"
      b"--alt\nContent-Type: text/html; charset=utf-8\n\n"
      b"<html><body><p>Caf&eacute; <b>au lait</b></p></body></html>\n"
      b"--alt--\n")

write("html-only.eml", H % b"html only" +
      b"Content-Type: text/html; charset=\"windows-1252\"\n\n"
      b"<html><head><style>p { color: red; }</style><script>var x = '<p>';</script></head>\n"
      b"<body><!-- hidden <b>comment</b> -->Price:&nbsp;100&#8364; &amp; &lt;free&gt; &quot;gift&quot; &#x263A;<br>"
      b"Second&nbsp;line \x93quoted\x94 &bogus; & done<p>para</p></body></html>\n", eol="lf")

write("alternative-related.eml", H % b"mixed(alternative(plain, related(html, image)), pdf)" +
      b"Content-Type: multipart/mixed; boundary=\"mix\"\n\n"
      b"--mix\nContent-Type: multipart/alternative; boundary=\"alt\"\n\n"
      b"--alt\nContent-Type: text/plain; charset=us-ascii\n\nplain version\n"
      b"--alt\nContent-Type: multipart/related; boundary=\"rel\"\n\n"
      b"--rel\nContent-Type: text/html; charset=us-ascii\n\n<p>html version</p>\n"
      b"--rel\nContent-Type: image/png\nContent-Transfer-Encoding: base64\nContent-ID: <logo>\n\n"
      b"iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==\n"
      b"--rel--\n--alt--\n"
      b"--mix\nContent-Type: application/pdf; name=\"report.pdf\"\nContent-Transfer-Encoding: base64\n\n"
      b"JVBERi0xLjQKJSVFT0YK\n--mix--\n")

write("nested-rfc822.eml", H % b"Fwd: forwarded" +
      b"Content-Type: multipart/mixed; boundary=\"outer\"\n\n"
      b"--outer\nContent-Type: text/plain\n\nSee the forwarded message.\n"
      b"--outer\nContent-Type: message/rfc822\nContent-Disposition: inline\n\n"
      b"From: c@example.org\nSubject: " + b64w("転送元".encode(), "UTF-8") + b"\n"
      b"Content-Type: multipart/alternative; boundary=\"inner\"\n\n"
      b"--inner\nContent-Type: text/plain; charset=utf-8\n\ninner plain\n"
      b"--inner\nContent-Type: text/html; charset=utf-8\n\n<b>inner html</b>\n"
      b"--inner--\n"
      b"--outer--\n")

write("digest.eml", H % b"digest" +
      b"Content-Type: multipart/digest; boundary=\"dig\"\n\n"
      b"--dig\n\nFrom: one@example.com\nSubject: first\n\nfirst body\n"
      b"--dig\n\nFrom: two@example.com\nSubject: second\n\nsecond body\n"
      b"--dig\nContent-Type: text/plain\n\nnot a message\n"
      b"--dig--\n")

write("boundary-prefix-outer.eml", H % b"outer boundary is a prefix of the inner one" +
      b"Content-Type: multipart/mixed; boundary=\"abc\"\n\n"
      b"--abc\nContent-Type: multipart/alternative; boundary=\"abcdef\"\n\n"
      b"--abcdef\nContent-Type: text/plain\n\none\n"
      b"--abcdef\nContent-Type: text/plain\n\ntwo\n"
      b"--abcdef--\n"
      b"--abc\nContent-Type: text/plain\n\nthree\n"
      b"--abc--\n")

write("boundary-prefix-inner.eml", H % b"inner boundary is a prefix of the outer one" +
      b"Content-Type: multipart/mixed; boundary=\"abcdef\"\n\n"
      b"--abcdef\nContent-Type: multipart/alternative; boundary=\"abc\"\n\n"
      b"--abc\nContent-Type: text/plain\n\none\n"
      b"--abc\nContent-Type: text/plain\n\ntwo\n"
      b"--abcdef\nContent-Type: text/plain\n\nthree (inner never closed)\n"
      b"--abcdef--\n")

write("boundary-dup.eml", H % b"nested multipart reuses the outer boundary" +
      b"Content-Type: multipart/mixed; boundary=\"same\"\n\n"
      b"--same\nContent-Type: multipart/alternative; boundary=\"same\"\n\n"
      b"--same\nContent-Type: text/plain\n\none\n"
      b"--same\nContent-Type: text/html\n\n<i>two</i>\n"
      b"--same--\n")

write("boundary-missing-close.eml", H % b"no close delimiter" +
      b"Content-Type: multipart/mixed; boundary=\"open\"\n\n"
      b"preamble\n--open\nContent-Type: text/plain\n\nfirst\n"
      b"--open\nContent-Type: text/plain\n\nsecond, and the message just ends\n")

write("boundary-missing-param.eml", H % b"multipart without boundary" +
      b"Content-Type: multipart/mixed\n\nSome text that a rule must still see.\n--x\nContent-Type: text/plain\n\nx\n")

write("boundary-never-seen.eml", H % b"boundary declared, never used" +
      b"Content-Type: multipart/mixed; boundary=\"nowhere\"\n\nonly a preamble\n")

write("boundary-padding.eml", H % b"transport padding and look-alike lines" +
      b"Content-Type: multipart/mixed; boundary=pad\n\n"
      b"--pad  \t\nContent-Type: text/plain\n\n--padding is not a boundary\n--pad-- not a close either\n"
      b"--pad\t\n\nsecond part, no header\n"
      b"--pad--   \nepilogue\n")

write("boundary-long.eml", H % b"boundary over the limit" +
      b"Content-Type: multipart/mixed; boundary=\"" + b"b" * 250 + b"\"\n\n"
      b"--" + b"b" * 250 + b"\nContent-Type: text/plain\n\nx\n--" + b"b" * 250 + b"--\n")

write("no-header-end.eml", b"From: a@example.com\nSubject: no blank line\nThis line starts the body.\nsecond line\n")

write("no-header-at-all.eml", b"just some text\nwithout any header\n")

write("lf-only.eml", H % b"bare LF" +
      b"Content-Type: multipart/mixed; boundary=lf\n\n--lf\nContent-Type: text/plain\n\nline one\nline two\n--lf--\n",
      eol="lf")

write("mixed-eol.eml",
      b"From: a@example.com\r\nSubject: mixed\nContent-Type: multipart/mixed; boundary=m\r\n\n"
      b"--m\nContent-Type: text/plain\r\n\r\nCRLF body\r\n--m\r\n\nLF body\n--m--", eol="none")

write("header-8bit-sjis.eml",
      b"From: " + "佐藤 一郎".encode("cp932") + b" <sato@example.jp>\nTo: user@example.jp\n"
      b"Subject: " + "【重要】お支払い確認①".encode("cp932") + b"\n\nbody\n")

write("header-8bit-eucjp.eml",
      b"From: user@example.jp\nSubject: " + iconv("ひらがなとカタカナの件名です", "EUC-JP-MS") + b"\n\nbody\n")

write("header-8bit-utf8.eml",
      "From: José <jose@exämple.com>\nSubject: Grüße aus München ✓\n\nbody\n".encode())

write("header-raw-iso2022jp.eml",
      b"From: user@example.jp\nSubject: " + jis("生のJIS件名") + b"\n\nbody\n")

write("encoded-words.eml",
      b"From: " + b64w(jis("山田"), "ISO-2022-JP") + b" <yamada@example.jp>\n"
      b"Subject: " + b64w(jis("未承諾広告※ 今だけ"), "ISO-2022-JP") + b"\n"
      b"X-Q: =?UTF-8?Q?hello_world=21_caf=C3=A9?=\n"
      b"X-Adjacent: =?UTF-8?B?" + base64.b64encode("日本".encode()) + b"?= \n =?UTF-8?B?" +
      base64.b64encode("語".encode()) + b"?=\n"
      b"X-Split-UTF8: =?UTF-8?B?" + base64.b64encode("日本語".encode()[:4]) + b"?= =?UTF-8?B?" +
      base64.b64encode("日本語".encode()[4:]) + b"?=\n"
      b"X-Split-JIS: =?ISO-2022-JP?B?" + base64.b64encode(jis("分割")[:5]) + b"?= =?ISO-2022-JP?B?" +
      base64.b64encode(jis("分割")[5:]) + b"?=\n"
      b"X-Mixed-Charsets: =?UTF-8?Q?a?= =?ISO-8859-1?Q?=E9?= b\n"
      b"X-Text-Between: =?UTF-8?Q?one?= and =?UTF-8?Q?two?=\n"
      b"X-Glued: prefix=?UTF-8?Q?glued?=suffix\n"
      b"X-Missing-End: =?UTF-8?B?" + base64.b64encode("切れた".encode()) + b"\n"
      b"X-Unknown-Charset: =?x-klingon?Q?tlhIngan_=E2=9C=93?=\n"
      b"X-Quoted: \"=?UTF-8?B?" + base64.b64encode("引用".encode()) + b"?=\" <q@example.jp>\n"
      b"X-Lang: =?ISO-2022-JP*ja?B?" + base64.b64encode(jis("言語")) + b"?=\n"
      b"X-Bad-Encoding: =?UTF-8?X?abc?= stays\n"
      b"X-Bad-Base64: =?UTF-8?B?5pel!!5pys?=\n"
      b"X-Spaces-Inside: =?UTF-8?Q?two words?=\n"
      b"X-Empty: =?UTF-8?B??=end\n"
      b"X-SJIS: =?Shift_JIS?B?" + base64.b64encode("\\①".encode("cp932")) + b"?=\n"
      b"X-EUC: =?euc-jp?B?" + base64.b64encode(iconv("①髙", "EUC-JP-MS")) + b"?=\n"
      b"\nbody\n")

write("rfc2231.eml", H % b"RFC 2231 and friends" +
      b"Content-Type: multipart/mixed; boundary=\"p\"\n\n"
      b"--p\nContent-Type: application/octet-stream\nContent-Disposition: attachment;\n"
      b" filename*0*=UTF-8''%E3%81%8A%E8%A6%8B%E7%A9%8D;\n filename*1*=%E3%82%8A%E6%9B%B8;\n filename*2=\".xlsx\"\n"
      b"Content-Transfer-Encoding: base64\n\nUEsDBAoAAAAAAA==\n"
      b"--p\nContent-Type: application/octet-stream;\n name=\"=?ISO-2022-JP?B?" + base64.b64encode(jis("資料.zip")) + b"?=\"\n"
      b"Content-Disposition: attachment; filename=\"=?ISO-2022-JP?B?" + base64.b64encode(jis("資料.zip")) + b"?=\"\n\nPK\n"
      b"--p\nContent-Type: image/jpeg; name=\"photo.jpg\"\nContent-Transfer-Encoding: base64\n\n/9j/4AAQSkZJRg==\n"
      b"--p\nContent-Type: text/plain; charset=iso-2022-jp\nContent-Disposition: attachment; filename*=iso-2022-jp'ja'" +
      "".join("%%%02X" % c for c in jis("メモ.txt")).encode() + b"\n\nmemo\n"
      b"--p\nContent-Type: application/pdf\nContent-Disposition: attachment; filename=\"" + "報告書.pdf".encode("cp932") + b"\"\n\n%PDF\n"
      b"--p\nContent-Type: application/pdf\nContent-Disposition: attachment; filename=plain.pdf; filename*=UTF-8''%E6%96%B0.pdf\n\n%PDF\n"
      b"--p\nContent-Type: text/plain\nContent-Disposition: attachment; filename=\"C:\\\\dir\\\\a \\\"b\\\".txt\"\n\ntext attached\n"
      b"--p--\n")

write("qp.eml", H % b"quoted-printable" +
      b"Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: Quoted-Printable\n\n"
      b"soft=\nbreak, soft with blanks=  \nnext; hex =E9=e9; bad =ZZ =4 end=\n"
      b"trailing blanks dropped   \nlast line")

write("base64-garbage.eml", H % b"garbage base64" +
      b"Content-Type: multipart/mixed; boundary=g\n\n"
      b"--g\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n"
      b"5pel5pys6Kqe\n!!! garbage ***\n5pel=5pys\n=\nQQ\n"
      b"--g\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=bin.dat\n\n"
      b"AAEC AwQF\tBgcI\nCQoL====\n#$%^\nDA\n"
      b"--g--\n")

write("nul-bytes.eml", b"From: a@example.com\nSubject: nul\x00inside\nX-Other: ok\n\nbody with \x00 nul\n")

write("message-rfc822-base64.eml", H % b"encoded message/rfc822 stays a leaf" +
      b"Content-Type: multipart/mixed; boundary=e\n\n--e\nContent-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n" +
      base64.encodebytes(b"From: x@example.com\r\nSubject: inner\r\n\r\nhidden\r\n") + b"--e--\n")

write("mbox-from.eml", b"From sender@example.com Tue Oct 14 09:30:00 2025\nFrom: sender@example.com\nSubject: mbox\n\nbody\n")

write("empty.eml", b"", eol="none")

write("headers-only.eml", b"From: a@example.com\nSubject: nothing else", eol="none")

write("folded-headers.eml",
      b"From: a@example.com\nSubject: a very\n  long\n\tsubject\nX-Stray: x\nContent-Type: text/plain;\n charset=\"utf-8\"\nSubject : second subject\n\nbody\n")

write("addresses.eml",
      b"From: \"Smith, John\" <john.smith@example.com>\n"
      b"To: undisclosed-recipients:;\n"
      b"Cc: friends: ann@example.com, \"Bob B.\" <bob@example.com>;, carol@example.com (Carol C)\n"
      b"Bcc: <@relay.example.net,@mx.example.net:route@example.com>, MAILER-DAEMON, \"quoted local\"@example.com\n"
      b"Reply-To: " + b64w(jis("返信先"), "ISO-2022-JP") + b" <reply@example.jp>, =?UTF-8?Q?Ren=C3=A9?= <rene@example.fr>\n"
      b"Sender: <>, garbage <<<>>> ;; , , \"unterminated <x@example.com>, tail@example.com\n"
      b"\nbody\n")

write("priority-high.eml", b"From: a@example.com\nX-Priority: 1 (Highest)\nImportance: low\n\nurgent\n")

write("charsets.eml", H % b"charsets" +
      b"Content-Type: multipart/mixed; boundary=c\n\n"
      b"--c\nContent-Type: text/plain; charset=koi8-r\n\n" + "Привет".encode("koi8-r") + b"\n"
      b"--c\nContent-Type: text/plain; charset=gb2312\n\n" + "中文邮件".encode("gb2312") + b"\n"
      b"--c\nContent-Type: text/plain; charset=big5\n\n" + "繁體中文".encode("big5") + b"\n"
      b"--c\nContent-Type: text/plain; charset=ks_c_5601-1987\n\n" + "한국어".encode("cp949") + b"\n"
      b"--c\nContent-Type: text/plain; charset=windows-1252\n\n" + "\u201csmart\u201d \u20ac".encode("cp1252") + b"\n"
      b"--c\nContent-Type: text/plain; charset=x-no-such-charset\n\n" + "ünknown but UTF-8".encode() + b"\n"
      b"--c\nContent-Type: text/plain\n\n" + "素のShift_JIS本文".encode("cp932") + b"\n"
      b"--c\nContent-Type: text/plain; charset=utf-8\n\nbad \xff\xfe utf-8\n"
      b"--c--\n")

# --- hostile, generated -------------------------------------------------------

deep = bytearray(H % b"100 nested multiparts")
for i in range(100):
    deep += b"Content-Type: multipart/mixed; boundary=\"d%d\"\n\n--d%d\n" % (i, i)
deep += b"Content-Type: text/plain\n\ninnermost text\n"
for i in reversed(range(100)):
    deep += b"--d%d--\n" % i
write("deep-nesting-100.eml", bytes(deep))

many = bytearray(H % b"5000 parts" + b"Content-Type: multipart/mixed; boundary=\"many\"\n\n")
for i in range(5000):
    many += b"--many\nContent-Type: text/plain\n\npart %d\n" % i
many += b"--many--\n"
write("parts-5000.eml", bytes(many))

write("header-1mb.eml", b"From: a@example.com\nSubject: " + b"A" * (1 << 20) + b"\nX-After: still parsed\n\nbody\n")

hdrs = bytearray()
for i in range(1100):
    hdrs += b"X-Header-%d: %d\n" % (i, i)
write("headers-1100.eml", b"From: a@example.com\n" + bytes(hdrs) + b"Subject: after the limit\n\nbody\n")
