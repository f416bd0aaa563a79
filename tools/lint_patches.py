"""Checks of the patch series in a patch tree (./build.sh lint makes one from patches/).

1. Upstream's own lint on the lines the series adds. Spark lints Python with flake8
   (dev/tox.ini: 100 columns; E203, E402, F811, W503, W504 and E731 ignored) and formats
   it with black 23.9.1 at 100 columns for py38 (dev/pyproject.toml). Both run on every
   Python file the series touches; only findings on added lines count, since upstream's
   own code is not ours to restyle.
2. No churn: a line that one patch adds and a later patch changes or removes means the
   two patches overlap. Each concern's final lines belong in one patch.

usage: python tools/lint_patches.py PATCH_TREE   (exit 1 on any finding)
"""

import collections
import re
import subprocess
import sys
import tempfile
from pathlib import Path

FLAKE8_IGNORE = "E203,E402,F811,W503,W504,E731"
LINE_LENGTH = "100"


def git(tree: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(tree), *args], check=True, capture_output=True, text=True
    ).stdout


def added_lines(tree: Path, old: str, new: str) -> dict:
    """{path: {line number in `new`: text}} for the lines that `new` adds over `old`."""
    added: dict = {}
    path = None
    number = 0
    for line in git(tree, "diff", "-U0", old, new).splitlines():
        if line.startswith("+++ "):
            path = None if line == "+++ /dev/null" else line[6:]
        elif line.startswith("@@"):
            number = int(re.match(r"@@ -\S+ \+(\d+)", line).group(1))
        elif line.startswith("+") and path:
            added.setdefault(path, {})[number] = line[1:]
            number += 1
    return added


def flake8_findings(bindir: Path, file: Path) -> list:
    out = subprocess.run(
        [
            str(bindir / "flake8"),
            f"--max-line-length={LINE_LENGTH}",
            f"--ignore={FLAKE8_IGNORE}",
            str(file),
        ],
        capture_output=True,
        text=True,
    ).stdout
    return [(int(line.split(":")[1]), line.split(":", 3)[3].strip()) for line in out.splitlines()]


def black_findings(bindir: Path, file: Path) -> list:
    """The lines black would rewrite: the removed side of its diff."""
    out = subprocess.run(
        [str(bindir / "black"), "--quiet", "--diff", "-l", LINE_LENGTH, "-t", "py38", str(file)],
        capture_output=True,
        text=True,
    ).stdout
    found = []
    number = 0
    for line in out.splitlines():
        hunk = re.match(r"@@ -(\d+)", line)
        if hunk:
            number = int(hunk.group(1))
        elif line.startswith("-") and not line.startswith("---"):
            found.append((number, "black would reformat this line"))
            number += 1
        elif line.startswith(" "):
            number += 1
    return found


def upstream_lint(tree: Path, base: str) -> list:
    bindir = Path(sys.executable).parent
    problems = []
    with tempfile.TemporaryDirectory() as scratch:
        for path, lines in sorted(added_lines(tree, base, "HEAD").items()):
            if not path.endswith(".py"):
                continue
            copy = Path(scratch) / path
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.write_text(git(tree, "show", f"HEAD:{path}"))
            for number, message in flake8_findings(bindir, copy) + black_findings(bindir, copy):
                if number in lines:
                    problems.append(f"{path}:{number}: {message}")
    return problems


def churn(tree: Path, base: str) -> list:
    problems = []
    final: dict = {}
    commits = git(tree, "rev-list", "--reverse", f"{base}..HEAD").split()
    for commit in commits:
        subject = git(tree, "log", "-1", "--format=%s", commit).strip()
        for path, lines in added_lines(tree, f"{commit}^", commit).items():
            if path not in final:
                shown = subprocess.run(
                    ["git", "-C", str(tree), "show", f"HEAD:{path}"], capture_output=True, text=True
                )
                final[path] = collections.Counter(shown.stdout.splitlines())
            for text in lines.values():
                if text.strip() and final[path][text] == 0:
                    problems.append(f"{subject}: {path}: a later patch changes {text.strip()!r}")
    return problems


def main() -> int:
    tree = Path(sys.argv[1] if len(sys.argv) > 1 else "build/patch-tree")
    base = git(tree, "rev-list", "--max-parents=0", "HEAD").split()[0]
    count = len(git(tree, "rev-list", f"{base}..HEAD").split())
    failed = False
    for name, problems in (
        ("upstream lint", upstream_lint(tree, base)),
        ("churn", churn(tree, base)),
    ):
        for problem in problems:
            print(f"{name}: {problem}")
        print(f"{name}: {len(problems)} finding(s) over {count} patches")
        failed = failed or bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
