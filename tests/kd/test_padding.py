"""kd/padding: per-sentence teacher outputs -> one padded batch."""
import numpy
import pytest
import torch

from spacy_skd.kd.padding import pad_outputs


@pytest.mark.parametrize("fill", [0.0, -7.0])
def test_pad_outputs_places_each_sentence_and_fills_the_rest(fill):
    rng = numpy.random.default_rng(0)
    arrays = [{"arc": rng.normal(size=(n, n + 1)).astype("float32")} for n in (2, 0, 3)]
    batch, lengths = pad_outputs(arrays, "arc", lambda n: (n, n + 1), device=torch.device("cpu"), fill=fill)
    assert batch.shape == (3, 3, 4) and batch.dtype == torch.float32 and lengths.tolist() == [2, 0, 3]
    for b, a in enumerate(arrays):
        n = len(a["arc"])
        expected = torch.full((3, 4), fill)
        expected[:n, : n + 1] = torch.from_numpy(a["arc"])
        assert torch.equal(batch[b], expected)


def test_pad_outputs_of_no_sentences():
    batch, lengths = pad_outputs([], "emissions", lambda n: (n, 5), device=torch.device("cpu"))
    assert batch.shape == (0, 0, 5) and lengths.shape == (0,)
