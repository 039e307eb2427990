"""SenTScore decoding on a tiny random T5, against references that run the decoder without any
cache on every full prefix: greedy, constrained generation, exhaustive beam, batching, windows."""
import itertools
from types import SimpleNamespace

import numpy
import pytest
import torch

transformers = pytest.importorskip("transformers")
from spacy_skd.models import sentscore as S  # noqa: E402

TAGS = ["O", "I", "A", "B"]


def tiny_bundle(seed: int = 0, n_sentinels: int = 6, model_type: str = "t5"):
    """A random T5 and a toy word-piece map: each word becomes two ids fixed by its characters."""
    torch.manual_seed(seed)
    if model_type == "bert2bert":  # legacy tuple caches in this transformers line
        bert = dict(vocab_size=60, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                    hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, pad_token_id=0)
        config = transformers.EncoderDecoderConfig.from_encoder_decoder_configs(
            transformers.BertConfig(**bert), transformers.BertConfig(**bert, is_decoder=True, add_cross_attention=True))
        config.decoder_start_token_id, config.pad_token_id, config.eos_token_id = 2, 0, 1
        model = transformers.EncoderDecoderModel(config=config).eval()
        return SimpleNamespace(model=model, tokenizer=SimpleNamespace(cls_token_id=2),
                               sentinels=list(range(59, 59 - n_sentinels, -1)),
                               tag_ids={t: 10 + i for i, t in enumerate(TAGS)}, decoder_start_id=2, eos_id=1,
                               pad_id=0, word_pieces=_word_pieces)
    config = transformers.T5Config(vocab_size=60, d_model=32, d_ff=64, num_layers=2, num_decoder_layers=2,
                                   num_heads=2, d_kv=16, decoder_start_token_id=0, pad_token_id=0,
                                   eos_token_id=1, dropout_rate=0.0)
    model = transformers.T5ForConditionalGeneration(config).eval()
    return SimpleNamespace(model=model, tokenizer=SimpleNamespace(cls_token_id=None),
                           sentinels=list(range(59, 59 - n_sentinels, -1)),
                           tag_ids={t: 10 + i for i, t in enumerate(TAGS)}, decoder_start_id=0, eos_id=1, pad_id=0,
                           word_pieces=_word_pieces)


def _word_pieces(words):
    return [[20 + sum(map(ord, w)) % 20, 40 + len(w) % 7] for w in words]


def step_logprobs(bundle, words, tags):
    """log-probs [len(dec), V] of the decoder run from scratch on <start> <s0> t1 <s1> ... tags[-1] <s_k>."""
    dec = [bundle.decoder_start_id, bundle.sentinels[0]]
    for i, t in enumerate(tags, start=1):
        dec += [bundle.tag_ids[t], bundle.sentinels[i]]
    return full_pass(bundle, words, dec), dec


def full_pass(bundle, words, dec):
    """log-probs over the target vocabulary, as position -> {token id: log-prob}, from the model's
    own full-vocabulary logits (no cache, no restricted head)."""
    ids = sorted({*bundle.sentinels, *bundle.tag_ids.values(), bundle.eos_id})
    enc = torch.tensor([S.encoder_ids(bundle, words)])
    with torch.no_grad():
        logits = bundle.model(input_ids=enc, decoder_input_ids=torch.tensor([dec])).logits[0]
    lp = torch.log_softmax(logits[:, ids].double(), -1)
    return [{tok: float(lp[p, j]) for j, tok in enumerate(ids)} for p in range(len(dec))]


def reference_scores(bundle, words, prefix, closing=True):
    """l_i(t) for the next word after `prefix`, each candidate scored by a full uncached pass."""
    i = len(prefix)
    out = []
    for t in TAGS:
        lp, dec = step_logprobs(bundle, words, list(prefix) + [t])
        pos = 2 * i + 1  # logits here predict the tag; one later, the closing sentinel
        score = lp[pos][dec[pos + 1]] + (lp[pos + 1][dec[pos + 2]] if closing else 0.0)
        out.append(score)
    return numpy.array(out)


def reference_greedy(bundle, words, closing=True):
    prefix, table = [], []
    for _ in words:
        scores = reference_scores(bundle, words, prefix, closing)
        table.append(scores)
        prefix.append(TAGS[int(scores.argmax())])
    return [TAGS.index(t) for t in prefix], numpy.array(table)


def sequence_score(bundle, words, tags):
    """log P(t1 <s1> ... tL <sL> | <s0>, words): the quantity beam search maximises."""
    lp, dec = step_logprobs(bundle, words, list(tags))
    return sum(lp[p][dec[p + 1]] for p in range(1, 2 * len(tags) + 1))


SENTENCES = [["a", "bb", "c"], ["x"], ["p", "q", "rr", "s", "t"], ["hello", "world"]]


@pytest.mark.parametrize("model_type", ["t5", "bert2bert"])
@pytest.mark.parametrize("closing", [True, False])
def test_greedy_matches_uncached_reference(closing, model_type):
    bundle = tiny_bundle(model_type=model_type)
    decoded = S.SenTScorer(bundle, TAGS).decode(SENTENCES, beam_size=1, closing=closing)
    for words, result in zip(SENTENCES, decoded):
        tags, table = reference_greedy(bundle, words, closing)
        assert result.tags.tolist() == tags
        numpy.testing.assert_allclose(result.scores, table, atol=1e-4)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exhaustive_beam_finds_the_best_sequence(seed):
    bundle = tiny_bundle(seed)
    scorer = S.SenTScorer(bundle, TAGS)
    for words in (["a", "bb", "c"], ["x", "y"]):
        every = list(itertools.product(TAGS, repeat=len(words)))
        best = max(every, key=lambda tags: sequence_score(bundle, words, tags))
        result = scorer.decode([words], beam_size=len(every))[0]
        assert [TAGS[i] for i in result.tags] == list(best)
        # the returned table follows the best sequence's own prefix: its path sums to its score
        path = result.scores[numpy.arange(len(words)), result.tags].sum()
        assert path == pytest.approx(sequence_score(bundle, words, best), abs=1e-4)


def test_beam_never_scores_below_greedy():
    bundle = tiny_bundle(3)
    scorer = S.SenTScorer(bundle, TAGS)
    for words in SENTENCES:
        greedy = scorer.decode([words], beam_size=1)[0]
        beam = scorer.decode([words], beam_size=3)[0]
        assert sequence_score(bundle, words, [TAGS[i] for i in beam.tags]) >= \
            sequence_score(bundle, words, [TAGS[i] for i in greedy.tags]) - 1e-5


@pytest.mark.parametrize("model_type", ["t5", "bert2bert"])
@pytest.mark.parametrize("beam_size", [1, 2])
def test_batched_equals_one_at_a_time(beam_size, model_type):
    scorer = S.SenTScorer(tiny_bundle(model_type=model_type), TAGS)
    together = scorer.decode(SENTENCES, beam_size=beam_size, batch_size=4)
    alone = [scorer.decode([words], beam_size=beam_size)[0] for words in SENTENCES]
    for a, b in zip(together, alone):
        assert a.tags.tolist() == b.tags.tolist()
        numpy.testing.assert_allclose(a.scores, b.scores, atol=1e-5)


def test_scores_are_log_probabilities_of_disjoint_events():
    """exp(l_i(t)) = P(t, <s_i> | prefix): each <= 1 and their sum over tags <= 1; the KD
    distribution softmax(l_i) is normalised and tags always index the tag set."""
    scorer = S.SenTScorer(tiny_bundle(), TAGS)
    for result in scorer.decode(SENTENCES):
        assert result.scores.shape == (len(result.tags), len(TAGS))
        assert (result.scores <= 0).all()
        assert (numpy.logaddexp.reduce(result.scores, axis=1) <= 1e-6).all()
        probs = torch.softmax(torch.from_numpy(result.scores) / 10.0, -1)
        torch.testing.assert_close(probs.sum(-1), torch.ones(len(result.tags)), rtol=0, atol=1e-6)
        assert ((result.tags >= 0) & (result.tags < len(TAGS))).all()


def test_long_sentences_are_windowed():
    bundle = tiny_bundle(n_sentinels=4)  # 3 words per window
    scorer = S.SenTScorer(bundle, TAGS)
    words = [f"w{i}" for i in range(8)]
    whole = scorer.decode([words])[0]
    parts = scorer.decode([words[0:3], words[3:6], words[6:8]])
    assert whole.tags.tolist() == sum((p.tags.tolist() for p in parts), [])
    numpy.testing.assert_allclose(whole.scores, numpy.concatenate([p.scores for p in parts]), atol=1e-5)
    with pytest.raises(ValueError, match="E130"):
        S.encoder_ids(bundle, words)


def test_empty_sentence_and_bad_settings():
    scorer = S.SenTScorer(tiny_bundle(), TAGS)
    empty, one = scorer.decode([[], ["x"]])
    assert empty.tags.shape == (0,) and empty.scores.shape == (0, len(TAGS))
    assert one.tags.shape == (1,)
    with pytest.raises(ValueError, match="E132"):
        scorer.decode([["x"]], beam_size=0)
    with pytest.raises(ValueError, match="E131"):
        S.SenTScorer(tiny_bundle(), TAGS + ["C"])


@pytest.mark.parametrize("model_type", ["t5", "bert2bert"])
def test_lm_loss_matches_manual_teacher_forcing(model_type):
    bundle = tiny_bundle(model_type=model_type)
    words, tags = [["a", "bb"], ["x"]], [["A", "I"], ["O"]]
    expected = []
    for w, t in zip(words, tags):
        _, dec = step_logprobs(bundle, w, t)  # <start> <s0> t1 <s1> ... tL <sL>
        target = dec[1:] + [bundle.eos_id]  # <s0> t1 <s1> ... <sL> </s>
        lp = full_pass(bundle, w, dec)
        expected += [-lp[p][target[p]] for p in range(len(target))]
    with torch.no_grad():
        loss = float(S.lm_loss(S.DecoderHead.for_bundle(bundle), S.make_batch(bundle, words, tags)))
    assert loss == pytest.approx(numpy.mean(expected), abs=1e-5)


def test_head_rejects_tokens_outside_the_target_vocabulary():
    head = S.DecoderHead.for_bundle(tiny_bundle())
    with pytest.raises(ValueError, match="E142"):
        head.positions(torch.tensor([[59, 25]]))


def test_noisy_history_changes_only_the_tags_the_decoder_reads():
    bundle = tiny_bundle()
    batch = S.make_batch(bundle, [["a", "bb", "c"], ["x"]], [["A", "I", "O"], ["B"]])
    assert S.noisy_history(batch, bundle.tag_ids.values(), 0.0) is batch
    torch.manual_seed(0)
    noisy = S.noisy_history(batch, bundle.tag_ids.values(), 0.99)
    tags = torch.tensor(list(bundle.tag_ids.values()))
    is_tag = torch.isin(batch.decoder_input_ids, tags)
    assert torch.equal(noisy.labels, batch.labels) and torch.equal(noisy.input_ids, batch.input_ids)
    assert torch.equal(noisy.decoder_input_ids[~is_tag], batch.decoder_input_ids[~is_tag])
    assert torch.isin(noisy.decoder_input_ids[is_tag], tags).all()
    assert not torch.equal(noisy.decoder_input_ids, batch.decoder_input_ids)
