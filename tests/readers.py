"""Readers solarsync did not write, each in its own virtual environment.

BI tools bundle their own DuckDB (an older release), their own SQLAlchemy dialect and version; a
file solarsync publishes must open there too. Two versions of one package cannot share the test
venv, so each reader gets a venv of its own, built once from PyPI (the package registry is all
CI has) and cached under ``.venv/readers/`` (removed by ``make clean``). A reader that cannot be
installed fails the test that needs it: never a silent skip.

    python = reader_python("duckdb14", "duckdb==1.4.*")
    subprocess.run([python, "-c", "import duckdb; ..."], check=True)
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: the environment the test session started with: pip installs readers with it, not with what a
#: test set since (a sandbox's ``REQUESTS_CA_BUNDLE`` makes pip refuse the registry's certificate)
SESSION_ENV = dict(os.environ)
#: beside the project's venv: ``make clean`` removes both, git ignores both
READERS_DIR = Path(os.environ.get("SOLARSYNC_READERS_DIR", ROOT / ".venv" / "readers"))


def reader_python(name: str, *requirements: str) -> Path:
    """The python of a venv named ``name`` holding ``requirements`` (pip specifiers); built on
    first use, shared by pytest-xdist workers (a file lock), rebuilt when the list changes."""
    key = hashlib.sha256("\n".join(requirements).encode()).hexdigest()[:10]
    home = READERS_DIR / f"{name}-{key}"
    python = home / "bin" / "python"
    done = home / ".installed"
    READERS_DIR.mkdir(parents=True, exist_ok=True)
    with open(READERS_DIR / f"{name}-{key}.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            venv.create(home, with_pip=True, clear=True)
            result = subprocess.run(
                [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
                + list(requirements),
                capture_output=True,
                text=True,
                timeout=900,
                env=SESSION_ENV,
            )
            if result.returncode != 0:
                raise RuntimeError(
                    f"cannot install reader {name} ({', '.join(requirements)}):\n"
                    f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
                )
            done.write_text("\n".join(requirements) + "\n")
    return python


def run_reader(
    python: Path, code: str, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``code`` run by a reader's python outside the project (its cwd is not the repo, so the
    reader imports nothing of solarsync's); raises with the reader's output when it fails."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    result = subprocess.run(
        [str(python), "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=str(python.parents[1]),
        env=env,
    )
    if result.returncode != 0:
        raise AssertionError(
            f"reader {python.parents[1].name} failed ({result.returncode}):\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result


__all__ = ["READERS_DIR", "reader_python", "run_reader"]
