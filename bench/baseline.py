"""A checkout of an older commit with its own virtualenv, for benches that compare against it.

    python bench/baseline.py 354cd36        # prints the checkout's path, creating it if needed

The checkout is a `git worktree` (detached) under .cache/baseline/<commit> (gitignored), with
`.venv` made by `pip install -e .[dev]` like `make install`; it is kept for the next run and
made again only when its `.ready` marker is missing (an interrupted set-up).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
CACHE = HERE / ".cache" / "baseline"


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=HERE, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def checkout(commit: str) -> Path:
    """The path of a ready checkout of `commit` (any name git resolves), made if needed."""
    sha = _git("rev-parse", "--verify", f"{commit}^{{commit}}")
    folder = CACHE / sha[:12]
    if (folder / ".ready").exists():
        return folder
    print(f"baseline: making a checkout of {sha[:12]} in {folder} (once; a few minutes)",
          file=sys.stderr, flush=True)
    if folder.exists():
        _git("worktree", "remove", "--force", str(folder))
        shutil.rmtree(folder, ignore_errors=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    # --force: the folder may still be registered from a set-up that was deleted half-way.
    _git("worktree", "add", "--force", "--detach", str(folder), sha)
    for step in ([sys.executable, "-m", "venv", str(folder / ".venv")],
                 [str(folder / ".venv" / "bin" / "pip"), "install", "-q", "--upgrade", "pip"],
                 [str(folder / ".venv" / "bin" / "pip"), "install", "-q", "-e", ".[dev]"]):
        done = subprocess.run(step, cwd=folder, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"baseline set-up failed ({' '.join(step[:3])}): "
                             f"{done.stderr.strip()[-400:]}")
    (folder / ".ready").touch()
    return folder


if __name__ == "__main__":
    print(checkout(sys.argv[1] if len(sys.argv) > 1 else "354cd36"))
