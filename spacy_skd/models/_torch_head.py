"""A torch module as the last layer of a thinc model: padded token vectors in, torch scores out.

Every skd head (taggers, parsers, span NER) works the same way: the tok2vec's list of [n_i, nI]
arrays is padded into one [B, N, nI] tensor, a torch module turns it into a tuple of score
tensors, and those come out *detached* in a small dataclass (`TaggerScores`, `ParserScores`,
`SpanScores`). The pipe computes its loss with torch on copies that require grad and hands the
gradients for every output back through the returned backprop in one call, so a shared tok2vec
or transformer gets one backward per batch.
"""
from typing import Callable, List, Optional, Tuple

import torch
from thinc.api import ArgsKwargs, Model, PyTorchWrapper_v2, torch2xp, xp2torch
from thinc.types import Floats2d

# (lengths [B], detached outputs) -> a scores object with a `potentials` tuple of those outputs
MakeScores = Callable[[torch.Tensor, Tuple[torch.Tensor, ...]], object]
# the head's thinc Model (dims nI/nO and attrs set) -> the torch module
BuildModule = Callable[[Model], torch.nn.Module]


def torch_head(name: str, build_module: BuildModule, make_scores: MakeScores, *, nO: Optional[int] = None,
               attrs: Optional[dict] = None) -> Model:
    """A thinc layer wrapping the module `build_module(layer)`, built lazily once nI and nO are
    known (nI from sample vectors or the tok2vec width, nO from the component's labels)."""
    # the builders live in closures, not attrs: thinc serializes attrs with msgpack
    def init(model: Model, X: Optional[List[Floats2d]] = None, Y=None) -> None:
        """Build the torch module once; called again on load (before the weights are read)."""
        if model.layers:
            return
        if X:
            model.set_dim("nI", int(X[0].shape[1]), force=True)
        if not model.has_dim("nI"):
            raise ValueError(f"Cannot infer the input width of layer '{model.name}': pass sample data to initialize.")
        model._layers.append(PyTorchWrapper_v2(build_module(model), convert_inputs=pad_inputs,
                                               convert_outputs=lambda m, XY, is_train: _outputs(make_scores, XY)))

    return Model(name, _forward, init=init, dims={"nI": None, "nO": nO}, attrs=dict(attrs or {}))


def _forward(model: Model, X: List[Floats2d], is_train: bool):
    return model.layers[0](X, is_train)


def pad_inputs(model: Model, X: List[Floats2d], is_train: bool) -> Tuple[ArgsKwargs, Callable]:
    """List of [n_i, nI] arrays -> one zero-padded torch tensor [B, N, nI]."""
    lengths = [len(x) for x in X]
    width = X[0].shape[1] if X else 0
    if max(lengths, default=0) == 0:
        padded = model.ops.alloc3f(len(X), 0, width)
    else:
        padded = model.ops.pad(X)  # [B, N, nI]
    Xtorch = xp2torch(padded, requires_grad=is_train, device=model.shims[0].device)

    def backprop(dX: ArgsKwargs) -> List[Floats2d]:
        d_padded = torch2xp(dX.args[0])
        return [d_padded[i, :n] for i, n in enumerate(lengths)]

    return ArgsKwargs(args=(Xtorch,), kwargs={}), backprop


def _outputs(make_scores: MakeScores, X_Ytorch) -> Tuple[object, Callable]:
    X, Ytorch = X_Ytorch
    Ytorch = tuple(Ytorch)
    lengths = torch.tensor([len(x) for x in X], dtype=torch.long, device=Ytorch[0].device)
    scores = make_scores(lengths, tuple(t.detach() for t in Ytorch))

    def backprop(d_potentials: Tuple[Optional[torch.Tensor], ...]) -> ArgsKwargs:
        pairs = [(y, d) for y, d in zip(Ytorch, d_potentials) if d is not None]
        return ArgsKwargs(args=(tuple(y for y, _ in pairs),), kwargs={"grad_tensors": tuple(d for _, d in pairs)})

    return scores, backprop
