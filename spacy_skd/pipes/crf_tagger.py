"""`skd_crf_tagger`: a linear-chain CRF sequence tagger writing `doc.ents`."""
from typing import Callable, Optional, Tuple

import torch
from spacy.language import Language
from thinc.api import Config, Model

from ..kd.objectives import structural_crf_loss
from ..models.tagger import TaggerScores
from ..structs.chain import LinearChainCRF
from ._defaults import TOK2VEC_CONFIG
from .tagger import SequenceTagger

DEFAULT_CRF_MODEL = Config().from_str(
    '[model]\n@architectures = "spacy-skd.CRFTagger.v1"\nnO = null\n' + TOK2VEC_CONFIG
)["model"]


@Language.factory(
    "skd_crf_tagger",
    assigns=["doc.ents", "token.ent_iob", "token.ent_type"],
    default_config={
        "model": DEFAULT_CRF_MODEL,
        "scheme": "BIOES",
        "constrained": True,
        "scorer": {"@scorers": "spacy.ner_scorer.v1"},
    },
    default_score_weights={"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None},
)
def make_crf_tagger(nlp: Language, name: str, model: Model, scheme: str, constrained: bool,
                    scorer: Optional[Callable]) -> "CRFTagger":
    """Create a CRF tagger.

    model (Model[List[Doc], TaggerScores]): e.g. spacy-skd.CRFTagger.v1.
    scheme (str): tag scheme for the CRF states: BIOES, BILUO, IOB2, IOB1 or sBIO.
    constrained (bool): forbid sequences the scheme makes invalid (e.g. O -> I-PER in BIOES),
        in training and decoding.
    scorer (Optional[Callable]): scores doc.ents; spaCy's NER scorer by default.
    """
    return CRFTagger(nlp.vocab, model, name, scheme=scheme, constrained=constrained, scorer=scorer)


class CRFTagger(SequenceTagger):
    """Exact likelihood training (forward algorithm) and Viterbi decoding."""

    kd_kind = "crf"

    def chain(self, scores: TaggerScores) -> LinearChainCRF:
        """The CRF distribution for a batch of scores."""
        return LinearChainCRF(scores.emissions, scores.transitions, scores.lengths, scores.start, scores.end,
                              mask=self.transition_mask(scores.emissions.device))

    def _log_likelihood(self, scores: TaggerScores, allowed: torch.Tensor) -> torch.Tensor:
        crf = self.chain(scores)
        return crf.restrict(allowed).log_partition - crf.log_partition

    def _decode(self, scores: TaggerScores) -> torch.Tensor:
        return self.chain(scores).argmax

    def _kd_loss(self, scores: TaggerScores, targets, loss: Callable, temperature: float) -> torch.Tensor:
        mask = self.transition_mask(scores.emissions.device)
        # locally tempered pair targets (paper parity, warned about at initialize) need the clamp
        clamp = {"clamp_negative": True} if loss is structural_crf_loss and not targets.consistent else {}
        return loss(scores.emissions, scores.transitions, scores.lengths, scores.start, scores.end, mask,
                    targets, temperature=temperature, **clamp)

    def crf_parameters(self) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        module = self.model.get_ref("head").layers[0].shims[0]._model
        return module.transitions.detach(), module.start.detach(), module.end.detach()
