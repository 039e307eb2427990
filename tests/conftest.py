"""Shared test fixtures. Tests use tiny in-repo fixtures; integration tests that read the real
datasets in ../shared/data are marked `data` and skip cleanly when that folder is absent."""
import importlib.util
import os
import types
from pathlib import Path
from typing import Callable, List, Sequence, Tuple

import pytest
import spacy
from hypothesis import settings
from spacy.language import Language
from spacy.tokens import Span
from spacy.training import Example

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


def load_script(name: str) -> types.ModuleType:
    """A script of scripts/ (not a package) imported as a module, for testing its functions."""
    spec = importlib.util.spec_from_file_location(f"skd_scripts_{name}", REPO_ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def examples_from(nlp: Language, data: Sequence[Tuple[str, List[Tuple[int, int, str]]]]) -> List[Example]:
    """Examples from (text, [(start, end, label), ...]) pairs, entity offsets in tokens."""
    examples = []
    for text, ents in data:
        ref = nlp.make_doc(text)
        ref.ents = [Span(ref, start, end, label=label) for start, end, label in ents]
        examples.append(Example(nlp.make_doc(text), ref))
    return examples


def train_tagger(factory: str, make_examples: Callable[[Language], List[Example]], path: Path,
                 steps: int, **cfg) -> Path:
    """Train a tiny skd tagger (a KD teacher in tests) on `make_examples(nlp)`; save it to `path`."""
    nlp = spacy.blank("en")
    nlp.add_pipe(factory, name="ner", config=cfg)
    examples = make_examples(nlp)
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(steps):
        nlp.update(examples, sgd=optimizer)
    nlp.to_disk(path)
    return path
