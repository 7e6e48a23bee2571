"""The session's seed: settled once at start-up, shared with pytest-xdist workers.

Standard library and pytest only, so that the plugin costs nothing to load in a project
that never uses the fake clock.
"""

from __future__ import annotations

import random
import secrets

import pytest

__all__ = [
    "DEFAULT_SEED",
    "RANDOM_SEED",
    "configure_seed",
    "derive_rng",
    "parse_seed",
    "seed_was_random",
    "session_seed",
]

#: The seed used when neither ``--chronopype-seed`` nor the ``chronopype_seed`` ini value is
#: given. Fixed, so that a plain ``pytest`` run is reproducible with no flags at all.
DEFAULT_SEED = 0

_SEED = pytest.StashKey[int]()
_SEED_WAS_RANDOM = pytest.StashKey[bool]()


RANDOM_SEED = "random"

#: Largest seed ``--chronopype-seed=random`` picks (exclusive): short enough to retype.
_RANDOM_SEED_LIMIT = 2**32


def parse_seed(text: str, source: str) -> int | str:
    """An int seed, or ``RANDOM_SEED``; anything else is a usage error naming ``source``."""
    value = text.strip()
    if value.lower() == RANDOM_SEED:
        return RANDOM_SEED
    try:
        return int(value)
    except ValueError:
        raise pytest.UsageError(
            f"{source} must be an integer or 'random', got {text!r}"
        ) from None


def configure_seed(config: pytest.Config) -> int:
    """Settle the session's seed once, at start-up: ``--chronopype-seed``, else the
    ``chronopype_seed`` ini value, else ``DEFAULT_SEED``; ``random`` picks one.

    Under pytest-xdist every worker takes the seed its controller settled, so
    ``--chronopype-seed=random -n 2`` still runs the whole suite under one seed.
    """
    worker_input = getattr(config, "workerinput", None)
    if isinstance(worker_input, dict) and "chronopype_seed" in worker_input:
        seed = int(worker_input["chronopype_seed"])
        config.stash[_SEED] = seed
        config.stash[_SEED_WAS_RANDOM] = bool(worker_input.get("chronopype_seed_random"))
        return seed
    option = config.getoption("chronopype_seed", default=None)
    if option is not None:
        chosen = parse_seed(str(option), "--chronopype-seed")
    else:
        text = str(config.getini("chronopype_seed") or "").strip()
        chosen = parse_seed(text, "ini option chronopype_seed") if text else DEFAULT_SEED
    was_random = chosen == RANDOM_SEED
    seed = secrets.randbelow(_RANDOM_SEED_LIMIT) if isinstance(chosen, str) else chosen
    config.stash[_SEED] = seed
    config.stash[_SEED_WAS_RANDOM] = was_random
    return seed


def session_seed(config: pytest.Config) -> int:
    """The seed settled by ``configure_seed`` (settled now, if the plugin did not run)."""
    seed = config.stash.get(_SEED, None)
    return seed if seed is not None else configure_seed(config)


def seed_was_random(config: pytest.Config) -> bool:
    return config.stash.get(_SEED_WAS_RANDOM, False)


def derive_rng(seed: int, nodeid: str, label: str) -> random.Random:
    """An rng that depends only on the seed, the test's node id and what it is for.

    String seeds are hashed with SHA-512 by ``random.Random``, so the result is the same in
    every process, whatever ``PYTHONHASHSEED`` is.
    """
    return random.Random(f"{seed}:{nodeid}:{label}")
