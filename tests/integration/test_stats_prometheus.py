"""newsletterctl stats --prometheus against a running daemon: valid text
exposition format (a strict line parser here, and prometheus_client's parser
where Debian's python3-prometheus-client is installed), HELP and TYPE per
family, no timestamps (node_exporter's textfile collector refuses them), and
every number of `stats --json` among the samples, whatever figures the JSON
has grown (the check walks the JSON, it knows no figure by name)."""
import math
import os
import re
import subprocess

import pytest

from ctlhelpers import OK, UNREACHABLE, USAGE, ctl, ctl_command, ctl_json, confirmed_list, need_ctl
from nlhelpers import check_answer, wait_until

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
LABEL_VALUE = r'"(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE_RE = re.compile(r"^(%s)(\{(?:%s=%s(?:,%s=%s)*)?\})? (\S+)$"
                       % (NAME, LABEL, LABEL_VALUE, LABEL, LABEL_VALUE))
# a time (promtext.c makes it a ..._timestamp_seconds figure, not a label)
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)$")
LABEL_RE = re.compile(r"(%s)=(%s)" % (LABEL, LABEL_VALUE))


def unescape(quoted):
    return re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), quoted[1:-1])


def parse_strict(text):
    """The text format 0.0.4 as the textfile collector takes it, strictly:
    every family's HELP and TYPE before its samples, each family once, no
    series twice, no timestamp, values that are numbers.  Returns
    {family: {"help", "type", "samples": [(labels dict, value)]}}."""
    assert text.endswith("\n"), "the text must end with a newline"
    families = {}
    current = None
    series = set()
    for n, line in enumerate(text[:-1].split("\n"), 1):
        where = "line %d: %r" % (n, line)
        if line.startswith("# HELP "):
            _, _, name, help_text = line.split(" ", 3)
            assert re.fullmatch(NAME, name), where
            assert name not in families, "family printed twice: " + where
            assert not re.search(r"\\[^\\n]", help_text.replace("\\\\", "")), "bad escape: " + where
            current = families[name] = {"help": help_text, "type": None, "samples": []}
            current_name = name
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert current is not None and name == current_name, "TYPE without its HELP: " + where
            assert current["type"] is None and not current["samples"], where
            assert kind in ("gauge", "counter"), where
            current["type"] = kind
        else:
            assert not line.startswith("#") and line.strip() == line and line, where
            m = SAMPLE_RE.match(line)
            assert m, "not a sample line (or one with a timestamp): " + where
            name, labels_text, value = m.group(1), m.group(2) or "", m.group(3)
            assert current is not None and current["type"], "sample before HELP/TYPE: " + where
            assert name == current_name, "sample outside its family: " + where
            labels = {k: unescape(v) for k, v in LABEL_RE.findall(labels_text)}
            assert len(labels) == len(LABEL_RE.findall(labels_text)), "label twice: " + where
            assert not any(k.startswith("__") for k in labels), where
            v = float(value)
            assert math.isfinite(v), where
            if current["type"] == "counter":
                assert v >= 0, where
            key = (name, tuple(sorted(labels.items())))
            assert key not in series, "series twice: " + where
            series.add(key)
            current["samples"].append((labels, v))
    for name, fam in families.items():
        assert name.startswith("newsletterd_"), name
        assert fam["type"], "family without TYPE: " + name
        assert fam["help"].strip(), "family without HELP text: " + name
    return families


def numbers(value, path=(), context=()):
    """(path of keys, context strings, number) of every number in the JSON;
    context: the string members of the array elements on the way (but
    times)."""
    if isinstance(value, bool):
        return [(path, context, float(value))]
    if isinstance(value, (int, float)):
        return [(path, context, float(value))]
    if isinstance(value, dict):
        return [x for k, v in value.items() for x in numbers(v, path + (k,), context)]
    if isinstance(value, list):
        found = []
        for el in value:
            strings = tuple(v for v in el.values() if isinstance(v, str) and not RFC3339.match(v)) \
                if isinstance(el, dict) else ()
            found += numbers(el, path, context + strings)
        return found
    return []


def find_sample(families, path, context, value):
    """A sample of that value whose name and label values carry every key
    of the path (as metric names spell it), and whose labels carry the
    strings of the array elements it came from."""
    words = [re.sub(r"[^a-zA-Z0-9_]", "_", k) for k in path]
    for name, fam in families.items():
        for labels, v in fam["samples"]:
            if v != value:
                continue
            where = name + " " + " ".join(re.sub(r"[^a-zA-Z0-9_]", "_", lv) for lv in labels.values())
            if all(w in where for w in words) and all(c in labels.values() for c in context):
                return name, labels
    return None


@pytest.fixture
def busy_daemon(daemon_factory, smtp, workdir):
    """A daemon with something in every figure stats has today: sign-ups
    pending and confirmed, imported subscribers, mails sent."""
    need_ctl()
    d = daemon_factory()
    for a in ("p1@example.org", "p2@example.org", "c1@example.org"):
        check_answer(d.subscribe(a), "pending")
    smtp.wait_for(3)
    mail = smtp.to("c1@example.org")[-1]
    check_answer(d.request({"op": "confirm", "token": mail.token}), "confirmed")
    confirmed_list(d, workdir, ["i1@example.org", "i2@example.org"])
    wait_until(lambda: ctl_json(d, "stats", "--json")["mails"]["sent"] >= 3, what="mails sent")
    return d


def test_every_figure_in_valid_text_format(busy_daemon):
    d = busy_daemon
    st = ctl_json(d, "stats", "--json")
    r = ctl(d, "stats", "--prometheus").ok()
    assert ctl_json(d, "stats", "--json") == st, "the figures moved while the test read them"
    families = parse_strict(r.out)

    # the families stats has today, with their labels
    subs = {l["state"]: v for l, v in families["newsletterd_subscribers"]["samples"]}
    assert subs == {k: float(v) for k, v in st["subscribers"].items()}
    assert subs["confirmed"] == 3 and subs["pending"] == 2
    mails = {l["state"]: v for l, v in families["newsletterd_mails"]["samples"]}
    assert mails == {k: float(v) for k, v in st["mails"].items()}
    days = families["newsletterd_days_signups"]["samples"]
    assert len(days) == len(st["days"]) and sum(v for _, v in days) == 3

    # and every number of the JSON, whichever figures it has by now
    found = numbers(st)
    assert len(found) >= 4 + 5 + 2 * len(st["days"]), found
    missing = [(p, c, v) for p, c, v in found if not find_sample(families, p, c, v)]
    assert not missing, "numbers of stats --json missing from --prometheus: %r\n%s" % (missing, r.out)
    samples = sum(len(f["samples"]) for f in families.values())
    assert samples >= len(found)


def test_prometheus_client_parses_it(busy_daemon):
    parser = pytest.importorskip("prometheus_client.parser")
    text = ctl(busy_daemon, "stats", "--prometheus").ok().out
    fams = {f.name: f for f in parser.text_string_to_metric_families(text)}
    assert fams["newsletterd_subscribers"].type == "gauge"
    assert fams["newsletterd_subscribers"].documentation
    got = {s.labels["state"]: s.value for s in fams["newsletterd_subscribers"].samples}
    assert got["confirmed"] == 3
    assert all(s.timestamp is None for f in fams.values() for s in f.samples)


def test_textfile_written_atomically(busy_daemon, workdir):
    """README's recipe: a temporary file in the same directory, renamed
    only when newsletterctl succeeded; a daemon that is down leaves the last
    good file (node_exporter's node_textfile_mtime_seconds shows its age)."""
    d = busy_daemon
    prom = os.path.join(workdir, "newsletterd.prom")
    recipe = ["sh", "-c", '"$@" > "$0.$$" && mv "$0.$$" "$0" || { rm -f "$0.$$"; exit 1; }',
              prom] + ctl_command(d.config_path, "stats", "--prometheus")
    subprocess.run(recipe, check=True)
    with open(prom) as f:
        first = f.read()
    parse_strict(first)
    rc = d.stop()
    assert rc == 0
    assert subprocess.run(recipe).returncode != 0
    with open(prom) as f:
        assert f.read() == first
    assert os.listdir(workdir).count("newsletterd.prom") == 1
    assert not [n for n in os.listdir(workdir) if n.startswith("newsletterd.prom.")]


def test_unreachable_prints_nothing(daemon_factory):
    need_ctl()
    d = daemon_factory(start=False)
    r = ctl(d, "stats", "--prometheus").fails(UNREACHABLE)
    assert r.out == ""


def test_write_failure_is_an_error(busy_daemon):
    """stdout that cannot take the text (a full disk): non-zero, so the
    recipe's rename does not happen."""
    with open("/dev/full", "wb") as full:
        p = subprocess.run(ctl_command(busy_daemon.config_path, "stats", "--prometheus"),
                           stdout=full, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    assert p.returncode not in (OK,), p
    assert b"cannot write" in p.stderr


def test_json_and_prometheus_together_is_usage(busy_daemon):
    ctl(busy_daemon, "stats", "--json", "--prometheus").fails(USAGE)
