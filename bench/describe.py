"""Benchmark: wall time of `sdmodel describe hhi` as a user runs it, each call a new process.

Times three calls on an empty cache folder (the first translates the model through PySD and
caches its metadata; the rest answer from that cache) and prints each call's seconds and
whether PySD was imported. Run::

    .venv/bin/python bench/describe.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

CODE = (
    "import sys; from sdmodel.cli import main\n"
    "try: main(['describe', 'hhi'])\nexcept SystemExit: pass\n"
    "print('pysd imported' if 'pysd' in sys.modules else 'no pysd', file=sys.stderr)"
)


def main() -> None:
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "SDMODEL_CACHE_DIR": cache}
        for call in range(1, 4):
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-c", CODE], env=env, capture_output=True, text=True, check=True)
            print(f"call {call}: {time.perf_counter() - start:.2f} s ({done.stderr.strip().splitlines()[-1]})")


if __name__ == "__main__":
    main()
