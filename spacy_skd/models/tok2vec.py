"""Token encoders: several tok2vecs side by side, their per-token vectors concatenated.

The teachers pair an uncased transformer (MiniLM, through a spacy-transformers listener) with a
cased hash embedding (NORM/PREFIX/SUFFIX/SHAPE): the transformer brings context, the SHAPE and
affix features bring the capitalisation the uncased wordpieces have lost.
"""
from typing import Callable, List, Optional, Tuple

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Model, concatenate
from thinc.types import Floats2d

from ..errors import Errors


@registry.architectures("spacy-skd.ConcatTok2Vec.v1")
def build_concat_tok2vec(*tok2vecs: Model[List[Doc], List[Floats2d]]) -> Model[List[Doc], List[Floats2d]]:
    """Run every encoder on the docs and concatenate their vectors token by token.

    The encoders are positional arguments because a config can only give a list of models as
    variable positional blocks, in file order (as for thinc's `chain.v1`):

        [components.ner.model.tok2vec]
        @architectures = "spacy-skd.ConcatTok2Vec.v1"

        [components.ner.model.tok2vec.*.transformer]
        @architectures = "spacy-transformers.TransformerListener.v1"
        ...

        [components.ner.model.tok2vec.*.features]
        @architectures = "spacy.Tok2Vec.v2"
        ...

    *tok2vecs (Model[List[Doc], List[Floats2d]]): encoders with one row per token, e.g. a
        `spacy-transformers.TransformerListener.v1` and a `spacy.Tok2Vec.v2`.
    RETURNS (Model[List[Doc], List[Floats2d]]): one [n_tokens, sum of widths] array per doc. Its
        nO is set when built if every encoder declares its width (spacy.Tok2Vec.v2 does), else at
        initialize (a transformer listener's width is known only once the transformer is).
    """
    tok2vecs = list(tok2vecs)
    if not tok2vecs or not all(isinstance(layer, Model) for layer in tok2vecs):
        raise ValueError(Errors.E106.format(value=repr(tok2vecs)))
    widths = [_declared_width(layer) for layer in tok2vecs]
    n_out = sum(widths) if all(w is not None for w in widths) else None
    # A private wrapper around thinc's concatenate, whose own init leaves nO unset whenever
    # one branch (a listener chain) does not declare it.
    concat = concatenate(*tok2vecs)
    model: Model[List[Doc], List[Floats2d]] = Model(
        "concat_tok2vec", _forward, init=_init, layers=[concat], dims={"nO": n_out}
    )
    for i, layer in enumerate(tok2vecs):
        model.set_ref(f"tok2vec_{i}", layer)
    model.attrs["n_tok2vecs"] = len(tok2vecs)
    return model


def _forward(model: Model, docs: List[Doc], is_train: bool) -> Tuple[List[Floats2d], Callable]:
    return model.layers[0](docs, is_train)


def _init(model: Model, X: Optional[List[Doc]] = None, Y=None) -> None:
    """Initialize the encoders, then fix nO: from their declared widths, else from the output
    on the sample docs."""
    model.layers[0].initialize(X=X, Y=Y)
    widths = [_declared_width(model.get_ref(f"tok2vec_{i}")) for i in range(model.attrs["n_tok2vecs"])]
    if all(w is not None for w in widths):
        model.set_dim("nO", sum(widths), force=True)
    elif X:
        # Empty docs may come back zero-wide from a listener, so measure a non-empty one.
        width = next((int(y.shape[1]) for y in model.layers[0].predict(X) if len(y)), None)
        if width is not None:
            model.set_dim("nO", width, force=True)


def _declared_width(layer: Model) -> Optional[int]:
    return layer.get_dim("nO") if layer.has_dim("nO") else None
