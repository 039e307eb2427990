"""The students' embedding layer: spaCy's MultiHashEmbed, with or without static vectors, chosen
when the vocab is known.

spaCy's `spacy.MultiHashEmbed.v2` fixes `include_static_vectors` when the model is built, before
`[initialize] vectors` has loaded a table, and with `true` and no table it fails deep inside
StaticVectors (an IndexError). The default students should use the teacher's vectors whenever a
workflow passes `--paths.vectors DIR`, and train on hash embeddings alone when it passes none,
from one config with no second override. So this layer holds both of spaCy's embeddings, built by
spaCy's own `MultiHashEmbed` (the same layers and seeds as `spacy.MultiHashEmbed.v2`), and at
initialize gives weights to one of them: the one with static vectors when the vocab has a table.
The choice is an attr of the model, saved with its weights, so a trained pipeline reloads with the
branch it was trained with; the other branch never gets weights and costs no memory.
"""
from typing import Callable, List, Optional, Tuple, Union

from spacy.ml.models.tok2vec import MultiHashEmbed
from spacy.tokens import Doc
from spacy.util import registry
from spacy.vocab import Vocab
from thinc.api import Model
from thinc.types import Floats2d

from ..errors import Errors


@registry.architectures("spacy-skd.StudentEmbed.v1")
def build_student_embed(
    width: int,
    attrs: List[Union[str, int]],
    rows: List[int],
    include_static_vectors: Optional[bool] = None,
) -> Model[List[Doc], List[Floats2d]]:
    """Hash embeddings of `attrs` (spaCy's MultiHashEmbed), plus the vocab's static vectors
    projected to `width` when there are any.

        [components.tok2vec.model.embed]
        @architectures = "spacy-skd.StudentEmbed.v1"
        width = ${components.tok2vec.model.encode.width}
        attrs = ["NORM", "PREFIX", "SUFFIX", "SHAPE"]
        rows = [20000, 5000, 5000, 5000]
        include_static_vectors = null

    width (int): output width, and the width of every embedding table.
    attrs (List[Union[str, int]]): the token attributes to hash-embed, one table each.
    rows (List[int]): rows of each table, as many as `attrs`.
    include_static_vectors (Optional[bool]): null (default): use the vocab's vectors if it has
        a table at initialize (`[initialize] vectors`, e.g. `--paths.vectors`), else hash
        embeddings alone; true: require a table (skd-E145 without one); false: never.
    RETURNS (Model[List[Doc], List[Floats2d]]): one [n_tokens, width] array per doc.
    """
    if include_static_vectors not in (None, True, False):
        raise TypeError(Errors.E144.format(value=include_static_vectors))
    hash_only = MultiHashEmbed(width=width, attrs=attrs, rows=rows, include_static_vectors=False)
    with_vectors = MultiHashEmbed(width=width, attrs=attrs, rows=rows, include_static_vectors=True)
    model: Model[List[Doc], List[Floats2d]] = Model(
        "student_embed", _forward, init=_init, layers=[hash_only, with_vectors], dims={"nO": width},
        # include_static_vectors: what the config asks; static_vectors: what initialize chose
        attrs={"include_static_vectors": include_static_vectors, "static_vectors": None},
    )
    model.set_ref("hash_only", hash_only)
    model.set_ref("with_vectors", with_vectors)
    model.set_ref("static_vectors", next(node for node in with_vectors.walk() if node.name == "static_vectors"))
    return model


def vectors_width(vocab: Vocab) -> int:
    """The width of the vocab's vectors table; 0 when it has none (no rows or no columns)."""
    n_rows, width = vocab.vectors.shape
    return int(width) if n_rows else 0


def _init(model: Model, X: Optional[List[Doc]] = None, Y=None) -> None:
    """Choose the branch from the sample docs' vocab, then initialize that branch only."""
    requested = model.attrs["include_static_vectors"]
    found = vectors_width(X[0].vocab) if X else None
    if requested is None and found is None:
        raise ValueError(Errors.E146)
    if requested and found == 0:
        raise ValueError(Errors.E145)
    use = bool(found) if requested is None else requested
    model.attrs["static_vectors"] = use
    model.get_ref("with_vectors" if use else "hash_only").initialize(X=X, Y=Y)


def _forward(model: Model, docs: List[Doc], is_train: bool) -> Tuple[List[Floats2d], Callable]:
    use = model.attrs["static_vectors"]
    if use is None:
        raise ValueError(Errors.E148)
    if use and docs:
        # spaCy's StaticVectors would fail on a table of another width with a bare gemm error
        expected = model.get_ref("static_vectors").get_dim("nM")
        found = vectors_width(docs[0].vocab)
        if found != expected:
            raise ValueError(Errors.E147.format(expected=expected, found=found))
    return model.get_ref("with_vectors" if use else "hash_only")(docs, is_train)
