"""Every Python block in the README runs as written, the way a user would run it.

A block names its file on its first line (``# test_reconnect.py``). Blocks named ``test_*.py``
are test files: they run under pytest (in asyncio_mode auto, and in strict mode with the
marker added). The DatabaseProcessor block runs as a script against the real PostgreSQL the
tests start. A new block that none of these runs fails ``test_every_block_is_run``.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pg_server import PostgresServer

README = Path(__file__).resolve().parent.parent / "README.md"
SCRIPTS = {"database_processor_demo.py"}

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestDeprecationWarning")


def _blocks() -> dict[str, str]:
    text = README.read_text(encoding="utf-8")
    blocks: dict[str, str] = {}
    for block in re.findall(r"```python\n(.*?)```", text, re.DOTALL):
        name = re.match(r"# (\S+\.py)\n", block)
        assert name is not None, f"a README python block must name its file:\n{block[:200]}"
        blocks[name[1]] = block
    return blocks


TEST_FILES = sorted(name for name in _blocks() if name.startswith("test_"))


def test_every_block_is_run() -> None:
    assert TEST_FILES, "the README's first test is missing"
    assert set(_blocks()) == {*TEST_FILES, *SCRIPTS}


@pytest.mark.parametrize("mode", ["auto", "strict"])
@pytest.mark.parametrize("name", TEST_FILES)
def test_the_readme_test_files_pass(pytester: pytest.Pytester, name: str, mode: str) -> None:
    source = _blocks()[name]
    if mode == "strict":
        source = "import pytest\n" + source.replace(
            "async def test_", "@pytest.mark.asyncio\nasync def test_"
        )
    pytester.makeini(
        f"[pytest]\nasyncio_mode = {mode}\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makepyfile(**{name.removesuffix(".py"): source})
    result = pytester.runpytest_inprocess("--strict-markers", "-p", "no:cacheprovider")
    # Every test the block defines (functions, and a state machine's TestCase) runs and passes.
    outcomes = result.parseoutcomes()
    assert result.ret == 0, result.stdout.str()
    assert outcomes.get("passed", 0) >= 1 and set(outcomes) <= {"passed", "warnings"}, outcomes


async def _rows(dsn: str) -> list[float]:
    import asyncpg  # type: ignore[import-untyped]

    connection = await asyncpg.connect(dsn, timeout=10)
    try:
        return [row["at"] for row in await connection.fetch("SELECT at FROM ticks ORDER BY at")]
    finally:
        await connection.close()


async def _drop_table(dsn: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(dsn, timeout=10)
    try:
        await connection.execute("DROP TABLE IF EXISTS ticks")
    finally:
        await connection.close()


@pytest.mark.postgres
@pytest.mark.subprocess
def test_the_readme_database_processor_runs_against_postgresql(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    pytest.importorskip("asyncpg")
    script = tmp_path / "database_processor_demo.py"
    script.write_text(_blocks()["database_processor_demo.py"], encoding="utf-8")
    dsn = postgres_server.dsn()
    asyncio.run(_drop_table(dsn))

    completed = subprocess.run(
        [sys.executable, str(script), dsn],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=tmp_path,  # as a user would: chronopype as installed, not from this checkout
    )

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == "inserted 3, skipped 0\n"
    rows = asyncio.run(_rows(dsn))
    assert len(rows) == 3 and rows == sorted(rows)


def test_the_readme_simulator_output_is_what_make_demo_prints(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from chronopype_testing.sim import main

    text = README.read_text(encoding="utf-8")
    block = re.search(r"```\n\$ make demo +# chronopype-sim (.*?)\n(.*?)```", text, re.DOTALL)
    assert block is not None
    argv, shown = block[1].split(), block[2]

    assert main(argv) == 0
    assert capsys.readouterr().out == shown
