#!/usr/bin/python3
"""dkim_verify.py - checks newsletterd's DKIM signatures with an independent
verifier, dkimpy (Debian's python3-dkim; run with /usr/bin/python3).

Usage: dkim_verify.py DKIM-SIGN-DUMP

The helper (tests/dkim-sign-dump.c) generates an RSA 2048 and an Ed25519 key
with dkim_keygen(), signs several messages with both and writes them with the
keys' DNS records into a temporary directory.  Here each message must carry
two DKIM-Signature fields (rsa-sha256 and ed25519-sha256, relaxed/relaxed,
folded lines) that both verify against those records -- given to dkimpy
through its dnsfunc hook, no real DNS -- and that both fail once the body, a
signed header field, or the set of signed header fields is tampered with.
Changes that relaxed canonicalisation or the h= list allow (an unsigned
field added, whitespace and trailing empty lines) must still verify, so that
the failures above are known to come from the tampering.
"""
import os
import re
import subprocess
import sys
import tempfile

import dkim

DOMAIN = "example.org"
EXPECTED = ["ascii", "nonascii", "html", "listunsub", "empty", "messy", "blank"]
# signed whenever absent, so adding one later breaks the signature
SIGNED_ABSENT = ["from", "to", "subject", "date", "message-id", "mime-version",
                 "content-type", "list-id", "list-unsubscribe",
                 "list-unsubscribe-post"]
OTHER_SIGNED = ["content-transfer-encoding", "auto-submitted", "reply-to",
                "sender", "cc"]

failures = []


def fail(what):
    failures.append(what)
    print("FAIL: " + what, file=sys.stderr)


def split_message(msg):
    """(header fields as raw bytes without their CRLF, body)"""
    head, sep, body = msg.partition(b"\r\n\r\n")
    assert sep, "no empty line"
    fields = []
    for line in (head + b"\r\n").split(b"\r\n")[:-1]:
        if line[:1] in (b" ", b"\t"):
            fields[-1] += b"\r\n" + line
        else:
            fields.append(line)
    return fields, body


def tag_list(field):
    value = field.split(b":", 1)[1]
    value = re.sub(rb"\r\n[ \t]", b" ", value)
    tags = {}
    for spec in value.split(b";"):
        if spec.strip():
            k, v = spec.split(b"=", 1)
            tags[k.strip().decode()] = re.sub(rb"\s+", b"", v).decode()
    return tags


def verify_all(msg, dnsfunc, n):
    """[True/False or the exception text] for signatures 0..n-1"""
    results = []
    for idx in range(n):
        try:
            results.append(dkim.DKIM(msg).verify(idx=idx, dnsfunc=dnsfunc))
        except dkim.DKIMException as e:
            results.append("%s: %s" % (type(e).__name__, e))
    return results


def check_shape(name, msg):
    """The two signature fields: tags, h= list, line lengths."""
    fields, _ = split_message(msg)
    sigs = [f for f in fields if f.lower().startswith(b"dkim-signature:")]
    if len(sigs) != 2:
        fail("%s: %d DKIM-Signature fields, expected 2" % (name, len(sigs)))
        return
    if not (fields[0] in sigs and fields[1] in sigs):
        fail("%s: the signatures are not in front of the message" % name)
    algos = set()
    for sig in sigs:
        for line in sig.split(b"\r\n"):
            if len(line) > 78:
                fail("%s: signature line of %d characters: %r" % (name, len(line), line))
        t = tag_list(sig)
        algos.add(t.get("a"))
        for tag, want in (("v", "1"), ("c", "relaxed/relaxed"), ("d", DOMAIN)):
            if t.get(tag) != want:
                fail("%s: %s=%r, expected %r" % (name, tag, t.get(tag), want))
        for tag in ("s", "t", "bh", "b", "h"):
            if not t.get(tag):
                fail("%s: no %s= tag" % (name, tag))
        listed = t.get("h", "").split(":")
        present = [f.split(b":", 1)[0].strip().lower().decode() for f in fields]
        for h in SIGNED_ABSENT + OTHER_SIGNED:
            count = present.count(h)
            want = count + 1 if count else (1 if h in SIGNED_ABSENT else 0)
            if listed.count(h) != want:
                fail("%s: %s listed %d times in h=, expected %d"
                     % (name, h, listed.count(h), want))
    if algos != {"rsa-sha256", "ed25519-sha256"}:
        fail("%s: algorithms %r" % (name, algos))


def tamper_body(msg):
    head, _, body = msg.partition(b"\r\n\r\n")
    m = re.search(rb"[A-Za-z0-9]", body)
    if not m:
        return head + b"\r\n\r\n" + body + b"x\r\n"
    i = m.start()
    c = b"Q" if body[i:i + 1] != b"Q" else b"R"
    return head + b"\r\n\r\n" + body[:i] + c + body[i + 1:]


def tamper_subject(msg):
    m = re.search(rb"\r\nsubject:[ \t]*(\S)", msg, re.IGNORECASE)
    assert m, "no Subject"
    i = m.start(1)
    c = b"Z" if msg[i:i + 1] != b"Z" else b"Y"
    return msg[:i] + c + msg[i + 1:]


def loosen(msg):
    """Changes relaxed/relaxed must not notice: whitespace in a signed
    field and in the body, trailing empty lines, an unsigned field."""
    head, _, body = msg.partition(b"\r\n\r\n")
    head = re.sub(rb"(\r\n)(subject:)[ \t]*", rb"\1\2 \t ", head, count=1,
                  flags=re.IGNORECASE)
    head = b"X-Added-In-Transit: yes\r\n" + head
    body = body.replace(b" ", b"  ") + b"\r\n \r\n"
    return head + b"\r\n\r\n" + body


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: dkim_verify.py DKIM-SIGN-DUMP")
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([sys.argv[1], d], check=True)
        records = {}
        for f in os.listdir(d):
            if f.endswith(".txt"):
                sel = f[:-4]
                with open(os.path.join(d, f), "rb") as fh:
                    records[("%s._domainkey.%s." % (sel, DOMAIN)).encode()] = fh.read()
                st = os.stat(os.path.join(d, sel + ".pem"))
                if st.st_mode & 0o777 != 0o600:
                    fail("%s.pem has mode %o" % (sel, st.st_mode & 0o777))
        kinds = sorted(re.match(rb"v=DKIM1; k=(\w+); p=", r).group(1) for r in records.values())
        if kinds != [b"ed25519", b"rsa"]:
            fail("DNS records: %r" % records)

        def dnsfunc(name, timeout=5):
            if isinstance(name, str):
                name = name.encode()
            if not name.endswith(b"."):
                name += b"."
            return records.get(name.lower())

        messages = {}
        for name in EXPECTED:
            with open(os.path.join(d, name + ".eml"), "rb") as fh:
                messages[name] = fh.read()

    checks = 0
    for name, msg in messages.items():
        check_shape(name, msg)
        if dkim.verify(msg, dnsfunc=dnsfunc) is not True:
            fail("%s: dkim.verify() does not pass" % name)
        res = verify_all(msg, dnsfunc, 2)
        if res != [True, True]:
            fail("%s: signatures do not verify: %r" % (name, res))
        res = verify_all(loosen(msg), dnsfunc, 2)
        if res != [True, True]:
            fail("%s: signatures break under changes relaxed allows: %r" % (name, res))
        checks += 3

        tampered = {
            "one body byte changed": tamper_body(msg),
            "Subject changed": tamper_subject(msg),
            "second From at the top": b"From: evil@example.com\r\n" + msg,
            "second List-Unsubscribe at the top":
                b"List-Unsubscribe: <https://evil.example.com/u>\r\n" + msg,
            "List-Unsubscribe-Post added at the bottom of the header":
                msg.replace(b"\r\n\r\n", b"\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click"
                            b"\r\n\r\n", 1),
            "second Subject at the top": b"Subject: urgent\r\n" + msg,
        }
        for what, bad in tampered.items():
            if bad == msg:
                fail("%s: tampering (%s) changed nothing" % (name, what))
            res = verify_all(bad, dnsfunc, 2)
            if any(r is True for r in res):
                fail("%s: %s still verifies: %r" % (name, what, res))
            checks += 1

    if failures:
        print("%d failure(s)" % len(failures), file=sys.stderr)
        sys.exit(1)
    print("ok: %d messages, %d checks, both signatures each" % (len(messages), checks))


if __name__ == "__main__":
    main()
