#!/usr/bin/env python3
"""Set-up and start in one step, on a fresh clone with only Python 3.11+ present.

    python3 dev.py run    # install into .venv if needed, then `threadline run` (SQLite, in-process worker)
    python3 dev.py test   # install into .venv if needed, then ruff, mypy and the whole pytest suite

Extra arguments go to the command (`python3 dev.py test -k whatsapp`). Only the standard library is
used here, because nothing else is installed yet when this runs.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".threadline-installed"


def ensure_installed() -> None:
    if sys.version_info < (3, 11):
        sys.exit(f"Threadline needs Python 3.11 or newer; this is {sys.version.split()[0]}.")
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    if not (BIN / "python").exists():
        print("dev.py: creating .venv", flush=True)
        venv.create(VENV, with_pip=True)
    print("dev.py: installing Threadline and its test tools into .venv", flush=True)
    subprocess.run(
        [
            str(BIN / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-e",
            f"{ROOT}[test]",
        ],
        check=True,
    )
    STAMP.write_text(wanted)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"run", "test"}:
        print(__doc__)
        return 2
    ensure_installed()
    command, rest = argv[0], argv[1:]
    os.chdir(ROOT)
    if command == "run":
        return subprocess.call([str(BIN / "threadline"), "run", *rest])
    lint = subprocess.call([str(BIN / "ruff"), "check", "."])
    types = subprocess.call([str(BIN / "mypy")])
    tests = subprocess.call([str(BIN / "python"), "-m", "pytest", *rest])
    return tests or lint or types


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
