"""Shared test fixtures. Tests use tiny in-repo fixtures; integration tests that read the real
datasets in ../shared/data are marked `data` and skip cleanly when that folder is absent."""
import os
from pathlib import Path

import pytest
from hypothesis import settings

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
# CI runs the same examples every time, so a red build is reproducible.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

SHARED_DATA = Path(os.environ.get("SKD_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture
def shared_data() -> Path:
    """The real datasets (CoNLL, EWT, SNIPS, ATIS, Reuters); skip the test when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared datasets not found at {SHARED_DATA} (set SKD_DATA_DIR)")
    return SHARED_DATA
