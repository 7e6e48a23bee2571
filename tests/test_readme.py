"""The README's first test is a real test: extract it and run it as a user would."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestDeprecationWarning")


def _first_test_in_readme() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)
    first = next(block for block in blocks if block.startswith("# test_reconnect.py"))
    return first


@pytest.mark.parametrize("mode", ["auto", "strict"])
def test_the_readme_first_test_passes(pytester: pytest.Pytester, mode: str) -> None:
    source = _first_test_in_readme()
    if mode == "strict":
        source = "import pytest\n" + source.replace(
            "async def test_", "@pytest.mark.asyncio\nasync def test_"
        )
    pytester.makeini(f"[pytest]\nasyncio_mode = {mode}\n")
    pytester.makepyfile(test_reconnect=source)
    result = pytester.runpytest_subprocess("--strict-markers", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
