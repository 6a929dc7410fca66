"""Provenance attributes for results: enough to say how a number was made, years later."""

from __future__ import annotations

import hashlib
import shlex
import subprocess
import sys
from datetime import UTC, datetime
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import tomli_w


def sdmodel_version() -> str:
    try:
        return version("sdmodel")
    except PackageNotFoundError:  # running from a source tree that was not installed
        return "0+unknown"


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """A hash of sdmodel's own source: a changed adapter may change results even under the same version number."""
    package = Path(__file__).parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def command_line(argv: list[str] | None = None) -> str:
    """The command as a user would retype it."""
    argv = sys.argv if argv is None else argv
    return " ".join(["sdmodel" if i == 0 and arg.endswith("sdmodel") else shlex.quote(arg) for i, arg in enumerate(argv)])


def git_commit(folder: Path) -> str:
    """The commit of the checkout holding ``folder``, ``-dirty`` if it has changes; '' outside git."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        return commit + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.SubprocessError):
        return ""


def attributes(
    *, engine: str, engine_version: str, model: Path, model_sha256: str, scenarios: list[dict], command: str
) -> dict[str, str]:
    """Dataset attributes: CF conventions plus the versions, model and scenarios used."""
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "title": "sdmodel results: " + ", ".join(s["name"] for s in scenarios),
        "Conventions": "CF-1.10",
        "source": f"system-dynamics model {model.name} run with {engine} {engine_version}",
        "history": f"{created}: {command}",
        "sdmodel_version": sdmodel_version(),
        "engine": engine,
        "engine_version": engine_version,
        f"{engine}_version": engine_version,
        "pysd_version": version("pysd"),  # PySD is the reference and reads every model's metadata
        "model_file": str(model.resolve()),
        "model_sha256": model_sha256,
        "scenarios_toml": tomli_w.dumps({"scenario": scenarios}),
        "command": command,
        "created": created,
        "git_commit": git_commit(model.resolve().parent),
    }
