"""Each release line's patches/ is an upstream-style series: numbered, one concern each, fit
to send upstream (patches/ for the newest line, recipes/pyspark-web-X.Y/patches/ for the
others)."""

import email.policy
import re
from email.parser import BytesHeaderParser

import pytest
import yaml
from helpers import line_recipes

LINES = line_recipes()
PATCHES = [
    pytest.param(patch, id=f"{line}-{patch.name[:4]}")
    for line, directory in LINES.items()
    for patch in sorted(directory.glob("patches/*.patch"))
]
ZERO_FROM = "From 0000000000000000000000000000000000000000 "
SUBJECT_LIMIT = 72  # the subject as `git log --oneline` shows it, without "[PATCH] "


def patch_problems(data: bytes) -> list:
    """What keeps a `git format-patch --zero-commit --no-signature` file from being fit to
    send upstream; [] if nothing.

    The header is parsed as mail, as `git am` reads it: a Subject folded over several
    physical lines is one subject, checked whole."""
    problems = []
    message = BytesHeaderParser(policy=email.policy.default).parsebytes(data)
    if not (message.get_unixfrom() or "").startswith(ZERO_FROM):
        problems.append(
            "the first line must be the zero commit's 'From 000... ' line (use --zero-commit)"
        )
    subjects = message.get_all("Subject") or []
    if len(subjects) != 1:
        problems.append(f"expected one Subject header, found {len(subjects)}")
    else:
        subject = str(subjects[0])  # unfolded, RFC 2047 words decoded
        if not subject.startswith("[PATCH] "):
            problems.append(
                f"the subject must read '[PATCH] ...' (no 'n/m' leftovers): {subject!r}"
            )
        title = subject.removeprefix("[PATCH] ")
        if len(title) > SUBJECT_LIMIT:
            problems.append(
                f"the subject is {len(title)} characters, more than {SUBJECT_LIMIT}: {title!r}"
            )
        if not title or " ".join(title.split()) != title:
            problems.append(f"the subject must be one line of single-spaced words: {title!r}")
    payload = message.get_payload()
    body, separator, rest = payload.partition("\n---\n")
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", body.strip()) if p.strip()]
    if paragraphs and paragraphs[-1].startswith("Upstream: "):
        paragraphs.pop()
    else:
        problems.append("the body must end with an 'Upstream: ...' paragraph")
    why = " ".join(paragraphs)
    if len(why.split()) < 30:
        problems.append(
            "the body must say why Pyodide needs the change "
            f"({len(why.split())} words before 'Upstream:')"
        )
    if not separator or "diff --git a/" not in rest:
        problems.append("no '---' separator followed by a git diff")
    if re.search(r"^-- \n\d+\.\d+", payload, re.M):
        problems.append("a git version signature (use --no-signature)")
    return problems


@pytest.mark.parametrize("line", LINES)
def test_series_is_numbered_and_every_file_is_listed_in_order(line):
    meta = yaml.safe_load((LINES[line] / "meta.yaml").read_text())
    files = sorted(path.name for path in (LINES[line] / "patches").iterdir())
    assert files, f"the {line} line's patches/ is empty"
    assert all(re.fullmatch(r"\d{4}-[A-Za-z0-9-]+\.patch", name) for name in files), files
    assert [int(name[:4]) for name in files] == list(range(1, len(files) + 1))
    # Every file in patches/, not only *.patch: a stray .orig or .rej is not applied either.
    assert meta["source"]["patches"] == [f"patches/{name}" for name in files]


@pytest.mark.parametrize("patch", PATCHES)
def test_patch_is_format_patch_with_subject_body_and_upstream(patch):
    assert patch_problems(patch.read_bytes()) == []


WHY = " ".join(["Pyodide cannot do this the way upstream does, so the client changes."] * 3)
GOOD_DIFF = "diff --git a/x.py b/x.py\n--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a\n+b\n"


def synthetic_patch(
    subject_lines, why=WHY, upstream="Upstream: could be proposed as is.", tail=GOOD_DIFF
):
    header = "\n".join(
        [
            ZERO_FROM + "Mon Sep 17 00:00:00 2001",
            "From: Someone <someone@example.invalid>",
            "Date: Wed, 25 Nov 2026 21:45:12 +0000",
            *subject_lines,
        ]
    )
    return f"{header}\n\n{why}\n\n{upstream}\n---\n x.py | 2 +-\n\n{tail}".encode()


def test_checker_accepts_a_well_formed_patch_with_a_folded_subject():
    # 65 characters, folded as git folds a long Subject header: unfolded, it fits.
    patch = synthetic_patch(
        ["Subject: [PATCH] Release reattachable executions inline where threads", " cannot start"]
    )
    assert patch_problems(patch) == []


def test_checker_catches_a_folded_subject_longer_than_the_limit(tmp_path):
    title = "Let the client do one thing and also another thing that is quite long too, and more"
    # Folded at a space as git folds it: no physical line carries more than the limit.
    head, _, tail = title.partition(" quite")
    lines = [f"Subject: [PATCH] {head}", f" quite{tail}"]
    assert all(len(line.removeprefix("Subject: [PATCH] ")) <= SUBJECT_LIMIT for line in lines)
    assert len(title) > SUBJECT_LIMIT
    path = tmp_path / "0001-Folded.patch"
    path.write_bytes(synthetic_patch(lines))
    problems = patch_problems(path.read_bytes())
    assert problems == [
        f"the subject is {len(title)} characters, more than {SUBJECT_LIMIT}: {title!r}"
    ]


def test_checker_catches_an_encoded_subject_longer_than_the_limit():
    # git writes non-ASCII subjects as RFC 2047 words; the limit is on the decoded text.
    title = "Keep caf\u00e9 names " + "x" * 60
    encoded = (
        "=?UTF-8?q?"
        + "".join(f"={b:02X}" if b > 127 or b in b" =?_" else chr(b) for b in title.encode())
        + "?="
    )
    problems = patch_problems(synthetic_patch([f"Subject: [PATCH] {encoded}"]))
    assert problems == [
        f"the subject is {len(title)} characters, more than {SUBJECT_LIMIT}: {title!r}"
    ]


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"subject_lines": ["Subject: [PATCH 2/3] Do a thing"]}, "'[PATCH] ...'"),
        ({"why": "Because."}, "must say why"),
        ({"why": ""}, "must say why"),
        ({"upstream": ""}, "'Upstream: ...' paragraph"),
        ({"tail": ""}, "git diff"),
        ({"tail": GOOD_DIFF + "-- \n2.39.5\n"}, "--no-signature"),
    ],
    ids=["numbered-subject", "short-body", "no-body", "no-upstream", "no-diff", "signature"],
)
def test_checker_catches_each_other_problem(change, expected):
    options = {"subject_lines": ["Subject: [PATCH] Do a thing"], **change}
    problems = patch_problems(synthetic_patch(**options))
    assert len(problems) == 1 and expected in problems[0], problems


def test_checker_wants_the_zero_commit_from_line():
    patch = synthetic_patch(["Subject: [PATCH] Do a thing"]).replace(
        b"From " + b"0" * 40, b"From " + b"1" * 40, 1
    )
    assert patch_problems(patch) == [
        "the first line must be the zero commit's 'From 000... ' line (use --zero-commit)"
    ]
