"""patches/ is an upstream-style series: numbered, one concern each, fit to send upstream."""

import re

import pytest

from helpers import ROOT

PATCHES = sorted((ROOT / "patches").glob("*.patch"))


def test_series_is_numbered_and_listed_in_order(meta):
    assert PATCHES, "patches/ is empty"
    numbers = [int(p.name[:4]) for p in PATCHES]
    assert numbers == list(range(1, len(PATCHES) + 1))
    assert all(re.fullmatch(r"\d{4}-[A-Za-z0-9-]+\.patch", p.name) for p in PATCHES)
    assert meta["source"]["patches"] == [f"patches/{p.name}" for p in PATCHES]


@pytest.mark.parametrize("patch", PATCHES, ids=lambda p: p.name[:4])
def test_patch_is_format_patch_with_subject_body_and_upstream(patch):
    text = patch.read_text()
    header, _, rest = text.partition("\n---\n")
    assert header.startswith("From 0000000000000000000000000000000000000000 "), "use --zero-commit"
    subject = re.search(r"^Subject: \[PATCH\] (.+)$", header, re.M)
    assert subject, "subject must read '[PATCH] ...' (no 'n/m' leftovers)"
    assert len(subject.group(1)) <= 72
    body = header[subject.end():].strip()
    assert len(body.split()) >= 30, "the body must say why Pyodide needs the change"
    assert re.search(r"^Upstream: \S", body, re.M), "the body must end with an Upstream: line"
    assert "diff --git a/" in rest
    assert not re.search(r"^-- \n\d+\.\d+", text, re.M), "use --no-signature"
