"""spacy-skd.BiLSTMEncoder.v1: the word + character BiLSTM encoder of Lample et al. (2016).

SenTScore (Farina et al. 2023) distils its seq2seq teacher into a MaxEnt tagger on this encoder:
a word embedding concatenated with the final states of a character BiLSTM, dropout, then a
word-level BiLSTM (100 units per direction). The paper initialises the word embeddings with
GloVe; no pretrained vectors are available offline here, so hashed NORM embeddings trained from
scratch stand in for them, while the character BiLSTM keeps the casing the NORM drops.
"""
from functools import partial
from typing import Callable, List, Tuple

import numpy
import torch
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import ArgsKwargs, Model, PyTorchWrapper_v2, torch2xp, xp2torch
from thinc.types import Floats2d
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..errors import Errors


@registry.architectures("spacy-skd.BiLSTMEncoder.v1")
def build_bilstm_encoder(word_rows: int = 20000, word_width: int = 100, char_rows: int = 512,
                         char_width: int = 25, char_hidden: int = 25, hidden: int = 100,
                         depth: int = 1, dropout: float = 0.5) -> Model[List[Doc], List[Floats2d]]:
    """Token vectors from a BiLSTM over [word embedding; character BiLSTM] features.

    word_rows (int): hash buckets of the word embedding; a token's row is its NORM hash modulo this.
    word_width (int): width of the word embedding.
    char_rows (int): rows of the character embedding; a character's row is ord(c) modulo this.
    char_width (int): width of the character embedding.
    char_hidden (int): hidden units per direction of the character BiLSTM.
    hidden (int): hidden units per direction of the word BiLSTM; the output width is 2 * hidden.
    depth (int): layers of the word BiLSTM.
    dropout (float): dropout on the token features and between word BiLSTM layers, in training
        only. It is the encoder's own rate, as for spacy.TorchBiLSTMEncoder.v1: `training.dropout`
        does not change it.
    RETURNS (Model[List[Doc], List[Floats2d]]): one [n_tokens, 2 * hidden] array per doc; nO is
        set when built.
    """
    sizes = {"word_rows": word_rows, "word_width": word_width, "char_rows": char_rows,
             "char_width": char_width, "char_hidden": char_hidden, "hidden": hidden, "depth": depth}
    for field, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(Errors.E116.format(field=field, value=value))
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ValueError(Errors.E117.format(value=dropout))
    module = BiLSTMEncoder(word_rows, word_width, char_rows, char_width, char_hidden, hidden, depth,
                           float(dropout))
    model = PyTorchWrapper_v2(module, convert_inputs=partial(docs_to_ids, word_rows=word_rows,
                                                             char_rows=char_rows),
                              convert_outputs=unpad_outputs)
    model.name = "bilstm_encoder"
    model.set_dim("nO", 2 * hidden)
    return model


class BiLSTMEncoder(torch.nn.Module):
    """[word embedding; char BiLSTM final states] -> dropout -> word BiLSTM.

    Padding never reaches an LSTM: both run on packed sequences.
    """

    def __init__(self, word_rows: int, word_width: int, char_rows: int, char_width: int,
                 char_hidden: int, hidden: int, depth: int, dropout: float):
        super().__init__()
        self.word_embed = torch.nn.Embedding(word_rows, word_width)
        self.char_embed = torch.nn.Embedding(char_rows, char_width)
        self.char_lstm = torch.nn.LSTM(char_width, char_hidden, batch_first=True, bidirectional=True)
        self.dropout = torch.nn.Dropout(dropout)
        # torch applies `dropout` between stacked layers only, so depth 1 takes none there
        self.lstm = torch.nn.LSTM(word_width + 2 * char_hidden, hidden, num_layers=depth,
                                  batch_first=True, bidirectional=True, dropout=dropout if depth > 1 else 0.0)

    def forward(self, words: torch.Tensor, chars: torch.Tensor, char_lengths: torch.Tensor,
                lengths: torch.Tensor) -> torch.Tensor:
        """words [B, N]; chars [T, C] for the T = sum(lengths) real tokens in doc order;
        char_lengths [T] and lengths [B] on the CPU, as packing wants them.
        RETURNS [B, N, 2 * hidden], zero past each length."""
        B, N = words.shape
        mask = torch.arange(N, device=words.device) < lengths.to(words.device).unsqueeze(1)  # [B, N]
        char_feats = self.word_embed.weight.new_zeros(B, N, 2 * self.char_lstm.hidden_size)
        if chars.shape[0]:
            packed = pack_padded_sequence(self.char_embed(chars), char_lengths, batch_first=True,
                                          enforce_sorted=False)
            _, (h_n, _) = self.char_lstm(packed)  # h_n: [2, T, char_hidden], at each token's end
            char_feats = char_feats.masked_scatter(mask.unsqueeze(-1), torch.cat([h_n[0], h_n[1]], -1))
        X = self.dropout(torch.cat([self.word_embed(words), char_feats], -1))  # [B, N, D]
        # An empty doc runs one padding step (never read back) since packing rejects length 0.
        packed = pack_padded_sequence(X, lengths.clamp(min=1), batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        return pad_packed_sequence(out, batch_first=True, total_length=N)[0]


def docs_to_ids(model: Model, docs: List[Doc], is_train: bool, *, word_rows: int,
                char_rows: int) -> Tuple[ArgsKwargs, Callable]:
    """Docs -> padded word ids [B, N], char ids [T, C] of the T real tokens, their char counts
    [T] (C, N, B >= 1) and the doc lengths [B]. Ids are integers, so nothing flows back."""
    # packing rejects empty tensors, so no docs at all run as one empty doc (its row is unread)
    lengths = numpy.array([len(doc) for doc in docs] or [0], dtype="int64")
    n_max = max(int(lengths.max(initial=0)), 1)
    in_doc = numpy.arange(n_max) < lengths[:, None]  # [B, N]
    # NORM hashes are stable uint64s; reduce them in uint64 (a mixed-type % would round via float64)
    norms = numpy.fromiter((t.norm for doc in docs for t in doc), dtype="uint64", count=int(lengths.sum()))
    words = numpy.zeros((len(lengths), n_max), dtype="int64")
    words[in_doc] = (norms % numpy.uint64(word_rows)).astype("int64")
    texts = [t.text for doc in docs for t in doc]
    char_lengths = numpy.array([len(text) for text in texts], dtype="int64")
    chars = numpy.zeros((len(texts), max(int(char_lengths.max(initial=0)), 1)), dtype="int64")
    codepoints = numpy.frombuffer("".join(texts).encode("utf-32-le"), dtype="<u4")
    chars[numpy.arange(chars.shape[1]) < char_lengths[:, None]] = codepoints % char_rows
    device = model.shims[0].device
    args = (xp2torch(words, device=device), xp2torch(chars, device=device),
            torch.from_numpy(char_lengths.clip(min=1)), torch.from_numpy(lengths))
    return ArgsKwargs(args=args, kwargs={}), lambda d_inputs: []


def unpad_outputs(model: Model, docs_and_Ytorch, is_train: bool) -> Tuple[List[Floats2d], Callable]:
    """[B, N, nO] torch output -> one [n_i, nO] array per doc; gradients are padded back."""
    docs, Ytorch = docs_and_Ytorch
    lengths = [len(doc) for doc in docs]
    Y = torch2xp(Ytorch.detach(), ops=model.ops)
    outputs = [Y[i, :n] for i, n in enumerate(lengths)]

    def backprop(dY: List[Floats2d]) -> ArgsKwargs:
        d_padded = model.ops.alloc3f(*Ytorch.shape)
        for i, (n, d) in enumerate(zip(lengths, dY)):
            d_padded[i, :n] = d
        return ArgsKwargs(args=(Ytorch,), kwargs={"grad_tensors": xp2torch(d_padded, device=Ytorch.device)})

    return outputs, backprop
