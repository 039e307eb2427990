"""`[nlp.after_pipeline_creation] @callbacks = "spacy-skd.numpy_gemm.v1"`: the thinc layers of a
CPU pipeline multiply matrices with numpy's BLAS instead of blis.

thinc's `NumpyOps` sends every matrix product (Maxout, Linear, the CNN encoder's windows) to blis.
On some CPUs blis runs far below the machine's speed: on the AMD EPYC (Zen 4) machine of our
benchmarks numpy's OpenBLAS did the CNN student's [n_tokens, 384] x [384, 384] products 3x
faster, and the whole depth-6 student ran 2x faster (`benchmarks/gemm_backend.py`). Those
products are most of a CNN student's time, so this is the cheapest speed a student can get.

The callback runs whenever spaCy builds the pipeline from its config: `spacy train`, `spacy.load`
and a packaged student alike, so the setting travels with the saved config. It swaps only plain
`NumpyOps` that use blis: GPU ops (CupyOps), other CPU backends (AppleOps, BigEndianOps) and torch
layers are left as they are. The weights stay numpy arrays, so outputs agree with blis up to
float rounding; delete the block from the config to go back to blis.
"""
from typing import Callable

from spacy.language import Language
from spacy.util import registry
from thinc.api import Model, NumpyOps


@registry.callbacks("spacy-skd.numpy_gemm.v1")
def create_numpy_gemm() -> Callable[[Language], Language]:
    """The `after_pipeline_creation` callback: `use_numpy_gemm`."""
    return use_numpy_gemm


def use_numpy_gemm(nlp: Language) -> Language:
    """`nlp` with every thinc layer on blis-backed NumpyOps moved to numpy matrix products.

    nlp (Language): a pipeline just built from its config; changed in place.
    RETURNS (Language): `nlp`, as spaCy's callbacks must.
    """
    ops = NumpyOps(use_blis=False)
    for _, component in nlp.pipeline:
        model = getattr(component, "model", None)
        if isinstance(model, Model):
            numpy_gemm(model, ops)
    return nlp


def numpy_gemm(model: Model, ops: NumpyOps) -> int:
    """Give `ops` to each node of `model` that runs on blis-backed NumpyOps; returns how many.

    model (Model): any thinc model; its nodes are changed in place.
    ops (NumpyOps): the ops to use instead, e.g. NumpyOps(use_blis=False).
    """
    swapped = 0
    for node in model.walk():
        # exact type: AppleOps/BigEndianOps subclass NumpyOps and pick their own BLAS
        if type(node.ops) is NumpyOps and node.ops.use_blis:
            node.ops = ops
            swapped += 1
    return swapped
