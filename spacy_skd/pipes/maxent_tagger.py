"""`skd_maxent_tagger`: a MaxEnt (per-token softmax) sequence tagger writing `doc.ents`."""
from typing import Callable, Optional

import torch
from spacy.language import Language
from thinc.api import Config, Model

from ..models.tagger import TaggerScores
from ..structs._util import log_zero
from ..structs.chain import LinearChainCRF
from ._defaults import TOK2VEC_CONFIG
from .tagger import SequenceTagger

DEFAULT_MAXENT_MODEL = Config().from_str(
    '[model]\n@architectures = "spacy-skd.MaxEntTagger.v1"\nnO = null\n' + TOK2VEC_CONFIG
)["model"]


@Language.factory(
    "skd_maxent_tagger",
    assigns=["doc.ents", "token.ent_iob", "token.ent_type"],
    default_config={
        "model": DEFAULT_MAXENT_MODEL,
        "scheme": "BIOES",
        "constrained": False,
        "scorer": {"@scorers": "spacy.ner_scorer.v1"},
    },
    default_score_weights={"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None},
)
def make_maxent_tagger(nlp: Language, name: str, model: Model, scheme: str, constrained: bool,
                       scorer: Optional[Callable]) -> "MaxEntTagger":
    """Create a MaxEnt tagger.

    model (Model[List[Doc], TaggerScores]): e.g. spacy-skd.MaxEntTagger.v1.
    scheme (str): tag scheme: BIOES, BILUO, IOB2, IOB1 or sBIO.
    constrained (bool): decode the best *valid* sequence under the scheme (Viterbi with zero
        transition scores) instead of the per-token argmax followed by repair. Slower.
    scorer (Optional[Callable]): scores doc.ents; spaCy's NER scorer by default.
    """
    return MaxEntTagger(nlp.vocab, model, name, scheme=scheme, constrained=constrained, scorer=scorer)


class MaxEntTagger(SequenceTagger):
    """Token-level cross-entropy training; argmax (or constrained Viterbi) decoding."""

    kd_kind = "maxent"

    def _log_likelihood(self, scores: TaggerScores, allowed: torch.Tensor) -> torch.Tensor:
        log_probs = scores.emissions.log_softmax(-1)  # [B, N, L]
        mask = torch.arange(log_probs.shape[1], device=log_probs.device) < scores.lengths.unsqueeze(1)
        # log P(tag in allowed) per token: the gold tag's log-prob, or 0 for an open token
        per_token = log_probs.masked_fill(~allowed, log_zero(log_probs.dtype)).logsumexp(-1)
        return per_token.masked_fill(~mask, 0.0).sum(-1)

    def _decode(self, scores: TaggerScores) -> torch.Tensor:
        mask = self.transition_mask(scores.emissions.device)
        if mask is None:
            return scores.emissions.argmax(-1)
        L = scores.emissions.shape[-1]
        zeros = scores.emissions.new_zeros(L, L)
        return LinearChainCRF(scores.emissions, zeros, scores.lengths, mask=mask).argmax

    def _kd_loss(self, scores: TaggerScores, targets, loss: Callable, temperature: float) -> torch.Tensor:
        return loss(scores.emissions, scores.lengths, targets, temperature=temperature)
