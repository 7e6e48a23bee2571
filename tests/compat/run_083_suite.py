#!/usr/bin/env python3
"""Run chronopype 0.8.3's own test suite against this checkout.

The published 0.8.3 sdist (it ships ``tests/``) is downloaded once into a cache outside the
repository, together with a Python 3.13 virtualenv holding what those tests import (pytest,
pytest-asyncio, pytest-timeout, pydantic, eventspype). 0.8.3's package code is never put on
the path: only its ``tests/`` directory is extracted, and this checkout is imported through
``PYTHONPATH``. The run is compared with ``expected_083_differences.txt`` (next to this
script): every test not listed there must pass, and every listed one must still differ, so
the list can neither hide a regression nor go stale.

Usage: ``python tests/compat/run_083_suite.py [-- extra pytest args]``. Exit status 0 when the
run matches the list. ``CHRONOPYPE_COMPAT_CACHE`` overrides the cache directory.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path

VERSION = "0.8.3"
SDIST = f"chronopype-{VERSION}.tar.gz"
# sha256 of the sdist on PyPI, so a cached or downloaded file is the published one.
SDIST_SHA256 = "604c8d0422ba1210efa66e0cbc2e63b18d329f5a089058084d6f147f5e35ec81"
# What 0.8.3's tests import, pinned to the versions in 0.8.3's uv.lock.
TEST_REQUIREMENTS = [
    "pytest==9.0.2",
    "pytest-asyncio==1.3.0",
    "pytest-timeout==2.4.0",
    "pydantic==2.12.5",
    "eventspype==1.1.0",
]
REASONS = ("fix", "private", "pydantic")

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
EXPECTED_FILE = HERE / "expected_083_differences.txt"


def cache_dir() -> Path:
    override = os.environ.get("CHRONOPYPE_COMPAT_CACHE")
    if override:
        return Path(override)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "chronopype-compat"


def find_python313() -> str:
    candidates = [os.environ.get("CHRONOPYPE_COMPAT_PYTHON", "")]
    candidates.append(shutil.which("python3.13") or "")
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.13*/bin/python3.13")))
    for candidate in candidates:
        if not candidate:
            continue
        try:
            out = subprocess.run(
                [candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 13))"],
                capture_output=True, text=True, check=False,
            )
        except OSError:
            continue
        if out.stdout.strip() == "True":
            return candidate
    sys.exit("run_083_suite: no Python 3.13 found (0.8.3 requires >= 3.13); "
             "set CHRONOPYPE_COMPAT_PYTHON")


def run(cmd: list[str], **kwargs: object) -> None:
    subprocess.run(cmd, check=True, **kwargs)  # type: ignore[call-overload]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def prepare(cache: Path, python: str) -> tuple[Path, Path]:
    """Return (venv python, suite directory), creating what is missing."""
    cache.mkdir(parents=True, exist_ok=True)
    venv = cache / f"venv-{VERSION}"
    venv_python = venv / "bin" / "python"
    stamp = venv / ".requirements"
    wanted = "\n".join(TEST_REQUIREMENTS)
    if not venv_python.exists() or not stamp.exists() or stamp.read_text() != wanted:
        shutil.rmtree(venv, ignore_errors=True)
        run([python, "-m", "venv", str(venv)])
        run([str(venv_python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
             *TEST_REQUIREMENTS])
        stamp.write_text(wanted)

    sdist = cache / SDIST
    if not sdist.exists() or sha256(sdist) != SDIST_SHA256:
        sdist.unlink(missing_ok=True)
        run([str(venv_python), "-m", "pip", "download", "-q", "--disable-pip-version-check",
             "--no-binary", ":all:", "--no-deps", f"chronopype=={VERSION}", "-d", str(cache)])
        if sha256(sdist) != SDIST_SHA256:
            sys.exit(f"run_083_suite: {sdist} does not have the published sha256")

    suite = cache / f"suite-{VERSION}"
    if not (suite / ".complete").exists():
        shutil.rmtree(suite, ignore_errors=True)
        suite.mkdir()
        prefix = f"chronopype-{VERSION}/tests/"
        with tarfile.open(sdist) as archive:
            for member in archive.getmembers():
                if member.name.startswith(prefix) and member.isfile():
                    member.name = member.name[len(f"chronopype-{VERSION}/"):]
                    archive.extract(member, suite, filter="data")
        # 0.8.3's pytest settings (from its pyproject.toml), without its package beside them.
        (suite / "pytest.ini").write_text(
            "[pytest]\nasyncio_mode = auto\ntimeout = 30\ntestpaths = tests\n"
        )
        (suite / ".complete").touch()
    return venv_python, suite


def read_expected() -> dict[str, str]:
    expected: dict[str, str] = {}
    for number, raw in enumerate(EXPECTED_FILE.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        nodeid, sep, reason = line.partition(" # ")
        kind = reason.split(":", 1)[0].strip()
        if not sep or kind not in REASONS or not reason.partition(":")[2].strip():
            sys.exit(f"{EXPECTED_FILE.name}:{number}: want '<test id> # <{'|'.join(REASONS)}>: "
                     f"<why>', got {raw!r}")
        expected[nodeid.strip()] = reason.strip()
    return expected


def outcomes(junit: Path) -> dict[str, str]:
    """Map each test id (path::name) to passed/failed/error/skipped."""
    result: dict[str, str] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        classname, name = case.get("classname", ""), case.get("name", "")
        parts = classname.split(".")
        # classname is module path (dots) plus, for methods, the class name.
        path_parts: list[str] = []
        rest: list[str] = []
        for index in range(len(parts), 0, -1):
            candidate = "/".join(parts[:index]) + ".py"
            path_parts, rest = parts[:index], parts[index:]
            if (SUITE_DIR / candidate).exists():
                break
        nodeid = "::".join(["/".join(path_parts) + ".py", *rest, name])
        outcome = "passed"
        for child in case:
            if child.get("message") == "collection failure":
                outcome = "uncollected"
                nodeid = name.replace(".", "/") + ".py"
            elif child.tag in ("failure", "error"):
                outcome = "failed"
            elif child.tag == "skipped":
                outcome = "skipped"
        result[nodeid] = outcome
    return result


SUITE_DIR = Path()


def main(argv: list[str]) -> int:
    global SUITE_DIR
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    expected = read_expected()
    venv_python, SUITE_DIR = prepare(cache_dir(), find_python313())
    junit = SUITE_DIR / "report.xml"
    junit.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTHONPATH"] = str(REPO)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    # This checkout, not an installed copy, is what the tests must import.
    probe = subprocess.run(
        [str(venv_python), "-c", "import chronopype; print(chronopype.__file__)"],
        env=env, capture_output=True, text=True, check=False,
    )
    if not probe.stdout.strip().startswith(str(REPO)):
        sys.exit(f"run_083_suite: chronopype does not import from {REPO}: "
                 f"{probe.stdout}{probe.stderr}")
    test_files = sorted(p.relative_to(SUITE_DIR).as_posix()
                        for p in (SUITE_DIR / "tests").rglob("test_*.py"))
    completed = subprocess.run(
        [str(venv_python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
         f"--junitxml={junit}", "-o", "junit_family=xunit1", *extra],
        cwd=SUITE_DIR, env=env, check=False,
    )
    if not junit.exists():
        print(f"run_083_suite: pytest produced no report (exit {completed.returncode})")
        return 1
    results = outcomes(junit)
    # A file that fails to import shows up as one "collection failure" error, not as tests.
    collected_files = {nodeid.split("::")[0] for nodeid, outcome in results.items()
                       if outcome != "uncollected"} & set(test_files)
    passed = sorted(n for n, o in results.items() if o == "passed")
    not_passed = sorted(n for n, o in results.items() if o != "passed")
    unexpected = [n for n in not_passed if n not in expected]
    fixed = sorted(n for n in expected if results.get(n) == "passed")
    missing = sorted(n for n in expected if n not in results)

    print()
    print(f"chronopype {VERSION} suite against {REPO}")
    print(f"  files collected:       {len(collected_files)}/{len(test_files)}")
    print(f"  tests run:             {len(results)}")
    print(f"  passed:                {len(passed)}")
    print(f"  expected differences:  {len(not_passed) - len(unexpected)} "
          f"(list has {len(expected)})")
    print(f"  unexpected failures:   {len(unexpected)}")
    for nodeid in unexpected:
        print(f"    UNEXPECTED {results[nodeid]}: {nodeid}")
    for nodeid in fixed:
        print(f"    NOW PASSES (remove from the list): {nodeid}")
    for nodeid in missing:
        print(f"    NOT RUN (remove from the list): {nodeid}")
    if extra:
        return 0 if not unexpected else 1
    ok = not unexpected and not fixed and not missing and len(collected_files) == len(test_files)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
