"""The encoder-decoder models a SenTScore teacher fine-tunes (Farina et al. 2023), with their
tokenizers, built so that every sentinel and every sBIO tag is exactly one token.

SenT' reads `<extra_id_0> w_1 <extra_id_1> ... w_L <extra_id_L>` and writes
`<extra_id_0> t_1 <extra_id_1> ... t_L <extra_id_L> </s>`. With single-token tags each candidate
continuation is two tokens (tag, next sentinel), so `models/sentscore.py` scores all tags in one
decoder call per step (docs/algorithms.md §10). Three sources of weights:

- `scratch_t5`: a small T5 and a Unigram tokenizer trained on the training text (cased);
- `minilm_encoder_decoder`: BERT2BERT warm-started from a local BERT (the offline MiniLM);
- `from_checkpoint`: any local Hugging Face seq2seq directory, e.g. a T5 with its own sentinels.

All load from local files only. `save_bundle` / `load_bundle` store the model, the tokenizer and
the token ids in one directory.
"""
import json
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import torch
from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers
from tokenizers.models import Unigram
from tokenizers.trainers import UnigramTrainer
from transformers import (AddedToken, AutoConfig, AutoModelForSeq2SeqLM, AutoTokenizer, BertTokenizerFast,
                          EncoderDecoderModel, PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration)
from transformers import logging as hf_logging
from transformers.models.auto.modeling_auto import MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES

from ..errors import Errors

SENTINEL = "<extra_id_{}>"
BUNDLE_FILE = "seq2seq_bundle.json"
BUNDLE_FORMAT = 1


@dataclass
class Seq2SeqBundle:
    """A Hugging Face encoder-decoder and the token ids SenT' needs.

    model (torch.nn.Module): T5ForConditionalGeneration or EncoderDecoderModel (BERT2BERT).
    tokenizer (PreTrainedTokenizerFast): its tokenizer, holding the sentinels and tags.
    sentinels (List[int]): sentinels[i] is the id of `<extra_id_i>`.
    tag_ids (Dict[str, int]): sBIO tag -> its single token id.
    decoder_start_id (int): first decoder input (T5: pad; BERT2BERT: [CLS]).
    eos_id (int): closes the target (T5: </s>; BERT2BERT: [SEP]).
    pad_id (int): padding on both sides.
    kind (str): "t5", "encoder-decoder" or "checkpoint", after the builder that made it.
    """

    model: torch.nn.Module
    tokenizer: PreTrainedTokenizerFast
    sentinels: List[int]
    tag_ids: Dict[str, int]
    decoder_start_id: int
    eos_id: int
    pad_id: int
    kind: str

    def word_pieces(self, words: Sequence[str]) -> List[List[int]]:
        """Token ids of each word alone, without special tokens. Added tokens (sentinels, tags)
        are never matched inside a word, so the text cannot forge them; a word that tokenizes
        to nothing (e.g. a whitespace token) gets [unk id]."""
        unk = self.tokenizer.unk_token_id
        fallback = [self.pad_id if unk is None else unk]
        return [ids or fallback for ids in _pieces(self.tokenizer, words)]


def scratch_t5(texts: Iterable[str], tags: Sequence[str], *, n_sentinels: int = 100, vocab_size: int = 8000,
               d_model: int = 256, d_ff: int = 1024, n_layers: int = 4, n_heads: int = 4, d_kv: int = 64,
               dropout: float = 0.1, seed: int = 0) -> Seq2SeqBundle:
    """A randomly initialised T5 with a cased Unigram tokenizer trained on `texts`.

    texts (Iterable[str]): training sentences for the tokenizer.
    tags (Sequence[str]): sBIO tags; each becomes one token.
    n_sentinels (int): `<extra_id_0>` .. `<extra_id_{n-1}>`; ids 0, 1, 2 are pad, </s>, <unk>.
    vocab_size (int): the tokenizer's vocabulary size before the tags are added.
    d_model, d_ff, n_layers, n_heads, d_kv, dropout: the T5Config dims (n_layers on each side).
    seed (int): seeds the weights; the global torch RNG is left as it was.
    RETURNS (Seq2SeqBundle): kind "t5", model in eval mode.
    """
    _check_n_sentinels(n_sentinels)
    tags = _check_tags(tags)
    texts = list(texts)
    lines = [text for text in texts if text.strip()]
    if not lines:
        raise ValueError(Errors.E122.format(n=len(texts)))
    sentinels = [SENTINEL.format(i) for i in range(n_sentinels)]
    backend = _train_unigram(lines, ["<pad>", "</s>", "<unk>", *sentinels], vocab_size)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="</s>",
                                        unk_token="<unk>", additional_special_tokens=sentinels)
    sentinel_ids, tag_ids = ensure_single_tokens(None, tokenizer, tags, n_sentinels)
    config = T5Config(vocab_size=len(tokenizer), d_model=d_model, d_ff=d_ff, d_kv=d_kv, num_layers=n_layers,
                      num_decoder_layers=n_layers, num_heads=n_heads, dropout_rate=dropout,
                      pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                      decoder_start_token_id=tokenizer.pad_token_id)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = T5ForConditionalGeneration(config)
    return Seq2SeqBundle(model.eval(), tokenizer, sentinel_ids, tag_ids, decoder_start_id=config.pad_token_id,
                         eos_id=config.eos_token_id, pad_id=config.pad_token_id, kind="t5")


def minilm_encoder_decoder(path: Union[str, Path], tags: Sequence[str], *, n_sentinels: int = 100,
                           seed: int = 0, decoder_layers: Optional[int] = None,
                           dropout: Optional[float] = None) -> Seq2SeqBundle:
    """BERT2BERT warm-started from a local BERT directory (e.g. the offline MiniLM): encoder and
    decoder both start from its weights, the decoder's cross-attention and LM head are new.

    path (Union[str, Path]): local BERT directory with its tokenizer files.
    tags (Sequence[str]): sBIO tags; each becomes one token.
    n_sentinels (int): `<extra_id_i>` special tokens added to the WordPiece vocabulary.
    seed (int): seeds the new weights; the global torch RNG is left as it was.
    decoder_layers (Optional[int]): keep only the first N decoder layers (None: all). A SenT'
        decoder emits only tags and sentinels: a shallow one learns its new cross-attention
        from few sentences faster, and decodes several times faster.
    dropout (Optional[float]): hidden and attention dropout of both sides (None: MiniLM's 0.1).

    The decoder's cross-attention starts as a copy of its own (pretrained) self-attention
    rather than at random, so that from the first step a decoder state attends to encoder
    states like itself, such as the input's copy of the sentinel it has just read.
    RETURNS (Seq2SeqBundle): kind "encoder-decoder" ([CLS] starts the decoder, [SEP] ends it),
        model in eval mode.
    """
    _check_n_sentinels(n_sentinels)
    tags = _check_tags(tags)
    path = _existing_dir(path)
    if decoder_layers is not None and (isinstance(decoder_layers, bool) or int(decoder_layers) < 1):
        raise ValueError(Errors.E129.format(value=decoder_layers))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            tokenizer = BertTokenizerFast.from_pretrained(str(path), local_files_only=True)
            with _quiet():  # it warns that the cross-attention is newly initialised, as intended
                extra = {} if decoder_layers is None else {"decoder_num_hidden_layers": int(decoder_layers)}
                if dropout is not None:
                    for side in ("encoder", "decoder"):
                        extra[f"{side}_hidden_dropout_prob"] = extra[f"{side}_attention_probs_dropout_prob"] = \
                            float(dropout)
                model = EncoderDecoderModel.from_encoder_decoder_pretrained(
                    str(path), str(path), encoder_local_files_only=True, decoder_local_files_only=True, **extra)
            _cross_attention_from_self(model.decoder)
        except (OSError, ValueError, TypeError, KeyError, ImportError) as err:
            raise ValueError(Errors.E121.format(path=path, reason=f"cannot load it as a BERT ({err})")) from err
        sentinels, tag_ids = ensure_single_tokens(model, tokenizer, tags, n_sentinels)
    ids = _set_special_ids(model, tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id)
    return Seq2SeqBundle(model.eval(), tokenizer, sentinels, tag_ids, *ids, kind="encoder-decoder")


def _cross_attention_from_self(decoder: torch.nn.Module) -> None:
    """Copy each BERT decoder layer's self-attention weights into its new cross-attention."""
    with torch.no_grad():
        for layer in decoder.bert.encoder.layer:
            for name, param in layer.crossattention.named_parameters():
                param.copy_(layer.attention.get_parameter(name))


def from_checkpoint(path: Union[str, Path], tags: Sequence[str], *, n_sentinels: int = 100) -> Seq2SeqBundle:
    """Any local Hugging Face seq2seq directory: an AutoModelForSeq2SeqLM (T5, BART, ...) or an
    EncoderDecoderModel, with a fast tokenizer. Its `<extra_id_i>` sentinels are reused where the
    tokenizer has them and added otherwise.

    path (Union[str, Path]): the directory.
    tags (Sequence[str]): sBIO tags; each becomes one token.
    n_sentinels (int): sentinels needed.
    RETURNS (Seq2SeqBundle): kind "checkpoint", model in eval mode.
    """
    _check_n_sentinels(n_sentinels)
    tags = _check_tags(tags)
    model, tokenizer = _load_pretrained(path)
    sentinels, tag_ids = ensure_single_tokens(model, tokenizer, tags, n_sentinels)
    config = model.config
    start = config.decoder_start_token_id
    if start is None:
        start = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    eos = config.eos_token_id if isinstance(config.eos_token_id, int) else None
    eos = _first_id(eos, tokenizer.eos_token_id, tokenizer.sep_token_id)
    pad = _first_id(tokenizer.pad_token_id, config.pad_token_id)
    for name, value in (("decoder start", start), ("end-of-sequence", eos), ("padding", pad)):
        if value is None:
            raise ValueError(Errors.E121.format(path=path, reason=f"neither its config nor its tokenizer "
                                                                   f"names a {name} token"))
    ids = _set_special_ids(model, start, eos, pad)
    return Seq2SeqBundle(model.eval(), tokenizer, sentinels, tag_ids, *ids, kind="checkpoint")


def ensure_single_tokens(model: Optional[torch.nn.Module], tokenizer: PreTrainedTokenizerFast, tags: Sequence[str],
                         n_sentinels: int) -> Tuple[List[int], Dict[str, int]]:
    """Make `<extra_id_0>` .. `<extra_id_{n-1}>` and each tag exactly one token of `tokenizer`.

    A string that already is a token (its id maps back to the same string) keeps its id. Any
    other is added: sentinels as special tokens, tags as single-word tokens. When `model` is
    given, its token embeddings (both sides of an EncoderDecoderModel) grow to the tokenizer's
    length and each new row, in the input and output embeddings and the output bias, starts as
    the mean of the rows of the pieces the string split into before (for a sentinel i: of the
    number i).

    model (Optional[torch.nn.Module]): the seq2seq model, or None when it is built afterwards.
    tokenizer (PreTrainedTokenizerFast): modified in place.
    RETURNS (Tuple[List[int], Dict[str, int]]): the sentinel ids and the tag -> id map.
    """
    _check_n_sentinels(n_sentinels)
    tags = _check_tags(tags)
    sentinels = [SENTINEL.format(i) for i in range(n_sentinels)]
    specials = set(tokenizer.all_special_tokens)
    for tag in tags:
        if tag in sentinels or tag in specials:
            raise ValueError(Errors.E127.format(tag=tag, other="a sentinel" if tag in sentinels else "a special token"))
    n_old = len(tokenizer)
    strings = sentinels + tags
    # a new sentinel i starts from the embedding of the number i, not of the string
    # "<extra_id_i>" (whose pieces are the same for every i): sentinels start distinct, and the
    # encoder's and decoder's copies of sentinel i start equal, so the decoder's new
    # cross-attention can find word i by matching them
    sources = [str(i) for i in range(n_sentinels)] + tags
    pieces = {s: ids or [tokenizer.unk_token_id or 0] for s, ids in zip(strings, _pieces(tokenizer, sources))}
    new_sentinels = [s for s in sentinels if not _is_token(tokenizer, s)]
    if new_sentinels:
        tokenizer.add_special_tokens({"additional_special_tokens": new_sentinels},
                                     replace_additional_special_tokens=False)
    tokenizer.add_tokens([AddedToken(t, single_word=True, normalized=False) for t in tags
                          if not _is_token(tokenizer, t)])
    ids = {s: tokenizer.convert_tokens_to_ids(s) for s in strings}
    assert len(set(ids.values())) == len(ids), "each string is its own token"
    if model is not None:
        _grow_embeddings(model, len(tokenizer), {ids[s]: rows for s, rows in pieces.items() if ids[s] >= n_old})
    return [ids[s] for s in sentinels], {t: ids[t] for t in tags}


def save_bundle(bundle: Seq2SeqBundle, path: Union[str, Path]) -> None:
    """Write the model and tokenizer (`save_pretrained`) and the token ids (seq2seq_bundle.json)
    into the directory `path`, created if missing."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    bundle.model.save_pretrained(path)
    bundle.tokenizer.save_pretrained(path)
    meta = {"format": BUNDLE_FORMAT, "kind": bundle.kind, "sentinels": bundle.sentinels, "tag_ids": bundle.tag_ids,
            "decoder_start_id": bundle.decoder_start_id, "eos_id": bundle.eos_id, "pad_id": bundle.pad_id}
    (path / BUNDLE_FILE).write_text(json.dumps(meta, indent=2), encoding="utf8")


def load_bundle(path: Union[str, Path]) -> Seq2SeqBundle:
    """Read a bundle written by `save_bundle`, offline; the model comes back in eval mode and
    gives the outputs it gave when saved."""
    path = _existing_dir(path)
    try:
        meta = json.loads((path / BUNDLE_FILE).read_text(encoding="utf8"))
        version, kind = meta["format"], meta["kind"]
        sentinels, tag_ids = list(meta["sentinels"]), dict(meta["tag_ids"])
        ids = meta["decoder_start_id"], meta["eos_id"], meta["pad_id"]
    except (OSError, ValueError, TypeError, KeyError) as err:
        raise ValueError(Errors.E125.format(path=path, file=BUNDLE_FILE, err=repr(err))) from err
    if version != BUNDLE_FORMAT:
        raise ValueError(Errors.E126.format(path=path, found=version, expected=BUNDLE_FORMAT))
    model, tokenizer = _load_pretrained(path)
    named = {SENTINEL.format(i): token_id for i, token_id in enumerate(sentinels)}
    for name, token_id in {**named, **tag_ids}.items():
        token = tokenizer.convert_ids_to_tokens(token_id)
        if token != name:
            raise ValueError(Errors.E128.format(path=path, name=repr(name), id=token_id, file=BUNDLE_FILE,
                                                found=token))
    return Seq2SeqBundle(model.eval(), tokenizer, sentinels, tag_ids, *ids, kind=kind)


def _train_unigram(lines: List[str], specials: List[str], vocab_size: int) -> Tokenizer:
    """A cased Unigram tokenizer (T5's kind: Metaspace words) trained on `lines`; `specials`
    take the first ids, in order, and specials[2] is the unknown token."""
    def make(model: Unigram) -> Tokenizer:
        tokenizer = Tokenizer(model)
        tokenizer.normalizer = normalizers.NFC()
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
        tokenizer.decoder = decoders.Metaspace()
        return tokenizer

    trained = make(Unigram())
    trained.train_from_iterator(lines, UnigramTrainer(vocab_size=vocab_size, special_tokens=specials,
                                                      unk_token=specials[2], show_progress=False))
    # the trainer sums in parallel, so scores vary in the last bits and equal ones come in any
    # order: round and sort them so that pieces and ids are reproducible
    pieces = [(piece, round(score, 6)) for piece, score in json.loads(trained.to_str())["model"]["vocab"]
              if piece not in specials]
    vocab = [(token, 0.0) for token in specials] + sorted(pieces, key=lambda p: (-p[1], p[0]))
    tokenizer = make(Unigram(vocab, unk_id=2, byte_fallback=False))
    tokenizer.add_special_tokens(specials)
    return tokenizer


def _load_pretrained(path: Union[str, Path]) -> Tuple[torch.nn.Module, PreTrainedTokenizerFast]:
    """A local seq2seq model and its fast tokenizer, or E120/E121."""
    path = _existing_dir(path)
    try:
        config = AutoConfig.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError) as err:
        raise ValueError(Errors.E121.format(path=path, reason=f"no readable config.json ({err})")) from err
    if config.model_type not in MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES:
        raise ValueError(Errors.E121.format(path=path, reason=f"its model type '{config.model_type}' has "
                                                               f"no decoder"))
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True, use_fast=True)
        model = AutoModelForSeq2SeqLM.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError, TypeError, KeyError, ImportError) as err:
        raise ValueError(Errors.E121.format(path=path, reason=f"loading it failed ({err})")) from err
    if not tokenizer.is_fast:
        raise ValueError(Errors.E121.format(path=path, reason="it has no fast tokenizer (tokenizer.json)"))
    return model, tokenizer


def _pieces(tokenizer: PreTrainedTokenizerFast, texts: Sequence[str]) -> List[List[int]]:
    """Ids of each text alone as the tokenizer's normalizer, pre-tokenizer and model split it.
    Added tokens are not matched, and a special token the model itself finds (T5's Unigram
    vocabulary holds '</s>') becomes the unknown token, so no text yields a special id."""
    backend = tokenizer.backend_tokenizer
    unk = tokenizer.unk_token_id
    reserved = set(tokenizer.all_special_ids) - {unk}
    out = []
    for text in texts:
        if backend.normalizer is not None:
            text = backend.normalizer.normalize_str(text)
        words = backend.pre_tokenizer.pre_tokenize_str(text) if backend.pre_tokenizer is not None else [(text, None)]
        ids = [token.id for word, _ in words if word for token in backend.model.tokenize(word)]
        ids = [unk if i in reserved else i for i in ids]
        out.append([i for i in ids if i is not None])  # no unknown token: drop them
    return out


def _is_token(tokenizer: PreTrainedTokenizerFast, text: str) -> bool:
    token_id = tokenizer.convert_tokens_to_ids(text)
    return token_id is not None and tokenizer.convert_ids_to_tokens(token_id) == text


def _grow_embeddings(model: torch.nn.Module, n_tokens: int, new_rows: Dict[int, List[int]]) -> None:
    """Resize the token embeddings to at least `n_tokens` rows; row `new` of each token matrix
    (and output bias) becomes the mean of the rows `new_rows[new]`."""
    parts = [model.encoder, model.decoder] if isinstance(model, EncoderDecoderModel) else [model]
    for part in parts:
        if part.get_input_embeddings().num_embeddings < n_tokens:
            part.resize_token_embeddings(n_tokens, mean_resizing=False)  # rows are set below
    if isinstance(model, EncoderDecoderModel):
        model.config.vocab_size = model.config.decoder.vocab_size
    tensors: List[torch.Tensor] = []
    for part in parts:
        for module in (part.get_input_embeddings(), part.get_output_embeddings()):
            for tensor in (getattr(module, "weight", None), getattr(module, "bias", None)):
                if tensor is not None and not any(tensor is seen for seen in tensors):  # tied weights once
                    tensors.append(tensor)
    with torch.no_grad():
        for tensor in tensors:
            for new, old in new_rows.items():
                tensor[new] = tensor[old].mean(0)


def _set_special_ids(model: torch.nn.Module, start: int, eos: int, pad: int) -> Tuple[int, int, int]:
    """Write the ids into the config (and generation config) so that they are saved with it."""
    for config in (model.config, getattr(model, "generation_config", None)):
        if config is not None:
            config.decoder_start_token_id, config.eos_token_id, config.pad_token_id = start, eos, pad
    return start, eos, pad


def _first_id(*ids: Optional[int]) -> Optional[int]:
    return next((i for i in ids if i is not None), None)


def _check_tags(tags: Sequence[str]) -> List[str]:
    """The tags in order without repeats, or E123 for an empty tag or one with whitespace."""
    for tag in tags:
        if not isinstance(tag, str) or not tag or any(c.isspace() for c in tag):
            raise ValueError(Errors.E123.format(tag=tag))
    return list(dict.fromkeys(tags))


def _check_n_sentinels(n_sentinels: int) -> None:
    if isinstance(n_sentinels, bool) or not isinstance(n_sentinels, int) or n_sentinels < 2:
        raise ValueError(Errors.E124.format(value=n_sentinels))


def _existing_dir(path: Union[str, Path]) -> Path:
    path = Path(path)
    if not path.is_dir():
        raise ValueError(Errors.E120.format(path=path))
    return path


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence transformers' logging (warnings about weights it initialised) for a block."""
    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
