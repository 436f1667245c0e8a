"""Helpers for the deliverability tests: running newsletterctl, making DKIM
keys with it, checking the signatures of a captured mail with dkimpy (an
implementation independent of the daemon's) against the DNS records the
key generator printed, and spoiling a signed mail in the ways an attacker
or a careless relay would.
"""
import os
import re
import subprocess

import dkim

import nlhelpers

NEWSLETTERCTL = os.environ.get("NEWSLETTERCTL") or os.path.join(
    os.path.dirname(nlhelpers.NEWSLETTERD), "newsletterctl")

# What every signature must cover (RFC 6376 5.4, RFC 8058 4), each name
# listed once more than the mail carries that field, so that none can be
# added in transit without breaking the signature.
MUST_SIGN = ("from", "to", "subject", "date", "message-id", "mime-version",
             "content-type", "list-id", "list-unsubscribe", "list-unsubscribe-post")


class Ctl:
    """The outcome of one newsletterctl run."""

    def __init__(self, args, proc):
        self.args = args
        self.rc = proc.returncode
        self.out = proc.stdout.decode("utf-8", "replace")
        self.err = proc.stderr.decode("utf-8", "replace")

    def __repr__(self):
        return "newsletterctl %s -> %s\nstdout: %s\nstderr: %s" % (
            " ".join(self.args), self.rc, self.out[-2000:], self.err[-2000:])


def ctl(config_path, *args, stdin=b"", timeout=60, umask=None):
    """Run `newsletterctl -c CONFIG ARGS...`; a Ctl (never raises on exit status)."""
    assert os.access(NEWSLETTERCTL, os.X_OK), "no newsletterctl at %s" % NEWSLETTERCTL
    cmd = [NEWSLETTERCTL]
    if config_path:
        cmd += ["-c", config_path]
    cmd += list(args)
    preexec = None
    if umask is not None:
        def preexec():
            os.umask(umask)
    proc = subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout * nlhelpers.SLOW,
                          preexec_fn=preexec)
    result = Ctl(list(args), proc)
    nlhelpers.assert_no_sanitizer_report(result.err)
    return result


# ---------------------------------------------------------------- keys and DNS

RECORD_RE = re.compile(r'^(?P<name>[A-Za-z0-9-]+\._domainkey\.[A-Za-z0-9.-]+?)\.?\s+IN\s+TXT\s+\((?P<strings>.*)\)\s*$',
                       re.MULTILINE)


def parse_record(output):
    """(owner name without the final dot, TXT value) of the one DNS record
    that `dkim-keygen` printed: its quoted strings joined, as a resolver
    hands them over."""
    found = RECORD_RE.findall(output)
    assert len(found) == 1, "expected one TXT record in the output of dkim-keygen:\n%s" % output
    name, strings = found[0]
    parts = re.findall(r'"((?:[^"\\]|\\.)*)"', strings)
    assert parts, output
    for p in parts:
        assert len(p.encode()) <= 255, "a DNS character-string holds at most 255 bytes: %r" % p
    return name.lower(), "".join(parts)


def record_tags(txt):
    """The tags of a key record (or a signature) as a dict of str."""
    tags = {}
    for item in txt.split(";"):
        item = item.strip()
        if not item:
            continue
        k, _, v = item.partition("=")
        tags[k.strip()] = re.sub(r"\s+", "", v)
    return tags


def keygen(directory, selector, ed25519=False, domain="example.org", umask=None):
    """Generate a key with `newsletterctl dkim-keygen` into DIRECTORY;
    (key path, owner name, TXT record)."""
    path = os.path.join(directory, selector + ".key")
    args = ["dkim-keygen", "--selector", selector, "--domain", domain, "--key", path]
    if ed25519:
        args.append("--ed25519")
    r = ctl(None, *args, umask=umask)
    assert r.rc == 0, r
    name, txt = parse_record(r.out)
    assert name == "%s._domainkey.%s" % (selector, domain), r.out
    return path, name, txt


class Keys:
    """An RSA and an Ed25519 key made by dkim-keygen, with their records."""

    def __init__(self, directory, domain="example.org"):
        self.domain = domain
        self.rsa_path, rsa_name, rsa_txt = keygen(directory, "rsa2048", domain=domain)
        self.ed_path, ed_name, ed_txt = keygen(directory, "ed2024", ed25519=True, domain=domain)
        self.records = {rsa_name: rsa_txt, ed_name: ed_txt}
        self.selectors = {"rsa2048": "rsa-sha256", "ed2024": "ed25519-sha256"}

    @property
    def config(self):
        """The [dkim] section signing with both keys."""
        return {"domain": self.domain, "selector": "rsa2048, ed2024",
                "key_file": "%s, %s" % (self.rsa_path, self.ed_path)}

    def dnsfunc(self, name, timeout=5):
        """What dkimpy asks the DNS: the TXT record published for NAME."""
        if isinstance(name, bytes):
            name = name.decode("ascii")
        txt = self.records.get(name.rstrip(".").lower())
        return txt.encode("ascii") if txt is not None else None


# ---------------------------------------------------------------- signatures

def header_section(data):
    end = data.find(b"\r\n\r\n")
    assert end > 0, "no end of header in the mail"
    return data[:end + 2]


def header_fields(data):
    """[(name lower-cased, raw field with folds)] in message order."""
    fields = []
    for m in re.finditer(rb"(?m)^([!-9;-~]+)[ \t]*:(.*\r\n(?:[ \t].*\r\n)*)", header_section(data)):
        fields.append((m.group(1).decode("ascii").lower(), m.group(0)))
    return fields


def signatures(data):
    """The tags of each DKIM-Signature field, in message order."""
    out = []
    for name, raw in header_fields(data):
        if name == "dkim-signature":
            value = raw.split(b":", 1)[1].decode("ascii")
            out.append(record_tags(re.sub(r"\r\n[ \t]", " ", value)))
    return out


def verify(data, keys, idx):
    """dkimpy's verdict on signature IDX of DATA (a failure it raises counts as False)."""
    try:
        return bool(dkim.DKIM(data, timeout=5).verify(idx=idx, dnsfunc=keys.dnsfunc))
    except dkim.DKIMException:
        return False


def check_signed(data, keys, domain="example.org"):
    """Assert that DATA carries one valid signature per key, each over the
    fields it must cover, over-signed; returns the signatures' tags."""
    sigs = signatures(data)
    assert sorted(s.get("a") for s in sigs) == sorted(keys.selectors.values()), sigs
    present = {}
    for name, _ in header_fields(data):
        present[name] = present.get(name, 0) + 1
    for idx, sig in enumerate(sigs):
        assert sig.get("v") == "1", sig
        assert sig.get("d") == domain, sig
        assert keys.selectors.get(sig.get("s")) == sig.get("a"), sig
        assert sig.get("c") == "relaxed/relaxed", sig
        assert "l" not in sig, "a body length limit lets anyone append to the body: %r" % sig
        signed = [h.strip().lower() for h in sig.get("h", "").split(":")]
        for field in MUST_SIGN:
            assert signed.count(field) == present.get(field, 0) + 1, (
                "h= lists %s %d times, the mail has it %d times: %s"
                % (field, signed.count(field), present.get(field, 0), sig.get("h")))
        assert verify(data, keys, idx), "signature %d (%s, s=%s) does not verify" % (
            idx, sig.get("a"), sig.get("s"))
    return sigs


# ---------------------------------------------------------------- tampering

def tamper_body_byte(data):
    """One visible character of the body changed (not whitespace, which
    relaxed canonicalisation may ignore)."""
    start = data.find(b"\r\n\r\n") + 4
    i = start + (len(data) - start) // 2
    while not chr(data[i]).isalnum():
        i += 1
    new = b"x" if data[i:i + 1] != b"x" else b"y"
    return data[:i] + new + data[i + 1:]


def tamper_subject(data):
    fixed = re.sub(rb"(?mi)^Subject:.*\r\n(?:[ \t].*\r\n)*",
                   b"Subject: Sie haben gewonnen\r\n", header_section(data), count=1)
    assert fixed != header_section(data)
    return fixed + data[len(header_section(data)):]


def tamper_second_list_unsubscribe(data):
    return b"List-Unsubscribe: <https://attacker.example/u?x=1>\r\n" + data


TAMPERINGS = {
    "body byte": tamper_body_byte,
    "subject": tamper_subject,
    "second List-Unsubscribe on top": tamper_second_list_unsubscribe,
}


def check_tampering_breaks(data, keys):
    """Every signature of DATA fails after each tampering."""
    n = len(signatures(data))
    assert n >= 1
    for what, spoil in TAMPERINGS.items():
        spoiled = spoil(data)
        assert spoiled != data
        for idx in range(n):
            assert not verify(spoiled, keys, idx), \
                "signature %d still verifies after tampering with the %s" % (idx, what)
