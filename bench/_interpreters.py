"""The interpreters the ours-vs-0.8.3 drivers compare (bench/clocks.py, bench/network_scale.py).

Imported by the drivers only: workers run isolated (``python -I``), where ``bench/`` is not on
``sys.path``, and never need it.
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
LEGACY_PYTHON = REPO_ROOT / ".bench" / "legacy" / "bin" / "python"
PYTHON_313_CANDIDATES = (
    Path.home() / ".pyenv" / "versions" / "3.13.0" / "bin" / "python3.13",
    Path("/usr/local/bin/python3.13"),
    Path("/usr/bin/python3.13"),
)


def ours_and_legacy() -> dict[str, Path]:
    """``{"ours": a Python 3.13, "legacy": .bench/legacy's}``, both on 3.13 for a fair ratio."""
    if not LEGACY_PYTHON.exists():
        raise SystemExit(f"{LEGACY_PYTHON} is missing: run `bash bench/setup.sh` first")
    for candidate in PYTHON_313_CANDIDATES:
        if candidate.exists():
            return {"ours": candidate, "legacy": LEGACY_PYTHON}
    looked_in = ", ".join(map(str, PYTHON_313_CANDIDATES))
    raise SystemExit(f"no Python 3.13 found (looked in: {looked_in})")
