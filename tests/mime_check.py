#!/usr/bin/python3
"""The independent check of the mail builder.

Usage: mime_check.py MIME_DUMP DIR

Runs MIME_DUMP (tests/mime-dump.c) to write its messages and their inputs
into DIR, then parses every message with Python's email package (policy
"default", the strict modern parser) and checks that what a mail client
would show is exactly what went in: subject, From display name and
address, To, the decoded text and HTML bodies.  Also: no parser defects,
CRLF line ends only, no line over 998 octets, nothing but 7-bit bytes.

Bodies are compared after line-end normalisation: the builder writes CRLF
for LF (and for CRLF), and ends the last line.
"""

import email
import email.policy
import json
import os
import shutil
import subprocess
import sys

MAX_LINE = 998


def normalise(text):
    text = text.replace("\r\n", "\n")
    if text and not text.endswith("\n"):
        text += "\n"
    return text


def raw_problems(raw):
    """Line rules on the raw octets."""
    problems = []
    if any(b >= 0x80 for b in raw):
        problems.append("8-bit octets in the message")
    if not raw.endswith(b"\r\n"):
        problems.append("the message does not end in CRLF")
    for number, line in enumerate(raw.split(b"\r\n"), 1):
        if b"\r" in line or b"\n" in line:
            problems.append("bare CR or LF in line %d" % number)
        if len(line) > MAX_LINE:
            problems.append("line %d has %d octets" % (number, len(line)))
    return problems


def defects(msg):
    """Defects of the message, of each part, and of each parsed header."""
    found = []
    for part in msg.walk():
        found.extend("%s: %r" % (part.get_content_type(), d) for d in part.defects)
        for name, value in part.items():
            found.extend("%s header: %r" % (name, d) for d in getattr(value, "defects", ()))
    return found


def expect(problems, what, got, want):
    if got == want:
        return
    if isinstance(got, str) and isinstance(want, str) and max(len(got), len(want)) > 160:
        # long texts: show where they part, not all of them
        at = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
        lo = max(0, at - 40)
        problems.append("%s differs at character %d (lengths %d, %d):\n      got  ...%r\n      want ...%r"
                        % (what, at, len(got), len(want), got[lo:at + 40], want[lo:at + 40]))
    else:
        problems.append("%s:\n      got  %r\n      want %r" % (what, got, want))


def check(case, raw):
    problems = raw_problems(raw)
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    problems.extend("defect: " + d for d in defects(msg))

    for name in ("Date", "From", "To", "Subject", "Message-ID", "MIME-Version"):
        expect(problems, "number of %s headers" % name, len(msg.get_all(name, [])), 1)

    expect(problems, "Subject", str(msg["Subject"]), case["subject"])

    senders = msg["From"].addresses if msg["From"] is not None else ()
    expect(problems, "number of From addresses", len(senders), 1)
    if senders:
        expect(problems, "From display name", senders[0].display_name, case["from_name"])
        expect(problems, "From address", senders[0].addr_spec, case["from_addr"])

    recipients = msg["To"].addresses if msg["To"] is not None else ()
    expect(problems, "number of To addresses", len(recipients), 1)
    if recipients:
        expect(problems, "To address", recipients[0].addr_spec, case["to"])
        expect(problems, "To display name", recipients[0].display_name, "")

    message_id = str(msg["Message-ID"] or "")
    if not (message_id.startswith("<") and message_id.endswith("@example.org>")):
        problems.append("Message-ID %r" % message_id)
    if msg["Date"] is None or msg["Date"].datetime is None:
        problems.append("Date does not parse")

    plain = msg.get_body(preferencelist=("plain",))
    if plain is None:
        problems.append("no text/plain part")
    else:
        expect(problems, "text/plain charset", plain.get_content_charset(), "utf-8")
        expect(problems, "text body", normalise(plain.get_content()), normalise(case["text"]))

    html = msg.get_body(preferencelist=("html",))
    if case["html"] is None:
        expect(problems, "content type", msg.get_content_type(), "text/plain")
        if html is not None:
            problems.append("an HTML part nobody asked for")
    else:
        expect(problems, "content type", msg.get_content_type(), "multipart/alternative")
        if html is None:
            problems.append("no text/html part")
        else:
            expect(problems, "HTML body", normalise(html.get_content()), normalise(case["html"]))
    return problems


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: mime_check.py MIME_DUMP DIR")
    dump, out = sys.argv[1], sys.argv[2]
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    subprocess.run([dump, out], check=True)

    with open(os.path.join(out, "cases.json"), encoding="utf-8") as f:
        cases = json.load(f)
    if len(cases) < 10:
        sys.exit("mime_check: only %d cases were written" % len(cases))

    failed = 0
    for case in cases:
        with open(os.path.join(out, case["file"]), "rb") as f:
            raw = f.read()
        problems = check(case, raw)
        if problems:
            failed += 1
            print("FAIL %s (%s)" % (case["name"], case["file"]))
            for p in problems:
                print("    " + p)
        else:
            print("ok   %s" % case["name"])
    if failed:
        sys.exit("mime_check: %d of %d messages failed" % (failed, len(cases)))


if __name__ == "__main__":
    main()
