"""Shared fixtures: small synthetic logs with a known answer, and the real data when present."""

from __future__ import annotations

from pathlib import Path

import pytest

from movierec.data.synthetic import Synthetic, SyntheticConfig, generate

ROOT = Path(__file__).resolve().parents[1]
ML_LATEST_SMALL = ROOT.parent / "shared" / "data" / "ml-latest-small"


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory):
    """Keep downloads and parse caches of the test run out of the user's ~/.cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv("MOVIEREC_CACHE", str(tmp_path_factory.mktemp("cache")))
    yield
    mp.undo()


@pytest.fixture(scope="session")
def small() -> Synthetic:
    """600 users x 400 items x 30,000 ratings from a known low-rank model; floor about 0.5."""
    return generate(SyntheticConfig(n_users=600, n_items=400, n_ratings=30_000, rank=4, noise=0.5, seed=7))


@pytest.fixture(scope="session")
def ml_latest_small() -> Path:
    """The genuine MovieLens latest-small release, when ../shared/data has it."""
    if not (ML_LATEST_SMALL / "ratings.csv").exists():
        pytest.skip(f"real data not present at {ML_LATEST_SMALL}")
    return ML_LATEST_SMALL
