"""spacy-skd.numpy_gemm.v1: a student's thinc layers off blis, set from the config, kept on load."""
import json
import subprocess
import sys
from pathlib import Path

import numpy
import pytest
import spacy
from spacy.lang.en import English
from spacy.tokens import DocBin
from thinc.api import Config, Linear, NumpyOps

from spacy_skd.models.cpu_ops import numpy_gemm, use_numpy_gemm
from tests.conftest import examples_from

TRAIN_DATA = [
    ("John Smith lives in New York City .", [(0, 2, "PER"), (4, 7, "LOC")]),
    ("Mary works at Google in London .", [(0, 1, "PER"), (3, 4, "ORG"), (5, 6, "LOC")]),
]

CONFIG = """
[nlp]
lang = "en"
pipeline = ["tok2vec", "ner"]

[nlp.after_pipeline_creation]
@callbacks = "spacy-skd.numpy_gemm.v1"

[components]

[components.tok2vec]
factory = "tok2vec"

[components.tok2vec.model]
@architectures = "spacy.Tok2Vec.v2"

[components.tok2vec.model.embed]
@architectures = "spacy-skd.StudentEmbed.v1"
width = 32
attrs = ["NORM", "SHAPE"]
rows = [500, 50]

[components.tok2vec.model.encode]
@architectures = "spacy.MaxoutWindowEncoder.v2"
width = 32
depth = 2
window_size = 1
maxout_pieces = 3

[components.ner]
factory = "skd_crf_tagger"

[components.ner.model]
@architectures = "spacy-skd.CRFTagger.v1"

[components.ner.model.tok2vec]
@architectures = "spacy.Tok2VecListener.v1"
width = 32
"""


def thinc_ops(nlp):
    """The ops of every thinc node that computes with them: the torch heads (built at initialize,
    after the callback ran) multiply in torch, whatever their ops."""
    return [node.ops for _, pipe in nlp.pipeline for node in pipe.model.walk() if node.name != "pytorch"]


def build(with_callback: bool):
    config = Config().from_str(CONFIG)
    if not with_callback:
        config["nlp"]["after_pipeline_creation"] = None
    return spacy.util.load_model_from_config(config, auto_fill=True, validate=True)


def test_the_config_callback_moves_every_layer_off_blis_and_load_keeps_it(tmp_path):
    assert all(type(ops) is NumpyOps and ops.use_blis for ops in thinc_ops(build(False)))
    nlp = build(True)
    assert all(type(ops) is NumpyOps and not ops.use_blis for ops in thinc_ops(nlp))
    nlp.initialize(lambda: examples_from(nlp, TRAIN_DATA))
    nlp.to_disk(tmp_path / "student")
    loaded = spacy.load(tmp_path / "student")
    assert loaded.config["nlp"]["after_pipeline_creation"]["@callbacks"] == "spacy-skd.numpy_gemm.v1"
    assert all(not ops.use_blis for ops in thinc_ops(loaded))


def test_numpy_products_give_the_blis_outputs():
    nlp = build(False)
    nlp.initialize(lambda: examples_from(nlp, TRAIN_DATA))
    docs = [nlp.make_doc(text) for text, _ in TRAIN_DATA]
    blis_out = nlp.get_pipe("tok2vec").predict(docs)
    swapped = use_numpy_gemm(nlp)
    assert swapped is nlp
    numpy_out = nlp.get_pipe("tok2vec").predict(docs)
    assert all(not ops.use_blis for ops in thinc_ops(nlp))
    for a, b in zip(blis_out, numpy_out):
        assert a.shape == b.shape
        numpy.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    # the CRF decodes the same entities
    ents = [[(e.start, e.end, e.label_) for e in doc.ents] for doc in nlp.pipe(docs)]
    assert ents == [[(e.start, e.end, e.label_) for e in doc.ents] for doc in build_and_copy(nlp).pipe(docs)]


def build_and_copy(nlp):
    """The same weights on blis, for comparison."""
    other = build(False)
    other.from_bytes(nlp.to_bytes())
    assert all(ops.use_blis for ops in thinc_ops(other))
    return other


class OtherCPUOps(NumpyOps):
    """Stands for AppleOps/BigEndianOps: a NumpyOps subclass with its own BLAS."""

    name = "other-cpu-for-test"


@pytest.mark.parametrize("ops,swapped", [(NumpyOps(), 1), (NumpyOps(use_blis=False), 0), (OtherCPUOps(), 0)])
def test_only_plain_blis_ops_are_swapped(ops, swapped):
    layer = Linear(3, 2)
    layer.ops = ops
    target = NumpyOps(use_blis=False)
    assert numpy_gemm(layer, target) == swapped
    assert layer.ops is (target if swapped else ops)


def test_a_pipe_without_a_thinc_model_is_skipped():
    nlp = English()
    nlp.add_pipe("sentencizer")
    assert use_numpy_gemm(nlp) is nlp


def test_the_gemm_benchmark_times_both_backends_on_a_saved_student(tmp_path):
    nlp = build(True)
    examples = examples_from(nlp, TRAIN_DATA)
    nlp.initialize(lambda: examples)
    nlp.to_disk(tmp_path / "student")
    DocBin(docs=[eg.reference for eg in examples]).to_disk(tmp_path / "test.spacy")
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "gemm_backend.py"
    out = tmp_path / "gemm.json"
    subprocess.run([sys.executable, str(script), str(tmp_path / "student"), str(tmp_path / "test.spacy"),
                    "--rounds", "1", "--output", str(out)], check=True, capture_output=True)
    result = json.loads(out.read_text())
    for backend in ("blis", "numpy"):
        assert result[backend]["words_per_s"] > 0 and result[backend]["product_ms"] > 0
    assert result["speedup_words_per_s"] == result["numpy"]["words_per_s"] / result["blis"]["words_per_s"]
