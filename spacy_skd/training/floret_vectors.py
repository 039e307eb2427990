"""floret vectors trained on a raw-text corpus: the baseline that `spacy skd vectors` (vectors from
the teacher's encoder) is compared against (`spacy skd floret`).

floret (Explosion's fastText fork) stores word and subword vectors in one small hashed table, so
every word, seen or not, gets a vector from its character n-grams; spaCy reads it with
`spacy init vectors --mode floret`. The corpus is tokenized exactly as `spacy-skd.RawText.v1`
tokenizes it for the student, so the vectors' words are the student's tokens.
"""
import os
import shutil
import tempfile
from pathlib import Path
from typing import Dict, Union

import floret
import spacy
from spacy.training.initialize import convert_vectors

from ..errors import Errors
from .annotate import read_texts


def train_floret(texts_path: Union[str, Path], output: Union[str, Path], *, lang: str = "en", dim: int = 300,
                 epochs: int = 5, min_count: int = 2, bucket: int = 50000, minn: int = 3, maxn: int = 5,
                 threads: int = 1) -> Dict[str, object]:
    """Train floret (CBOW, floret mode, 2 hashes per entry) on the texts and write a vectors
    pipeline folder to `output` (built in a temporary folder, then renamed into place)."""
    texts_path, output = Path(texts_path), Path(output)
    if dim < 1 or epochs < 1 or min_count < 1 or bucket < 1:
        raise ValueError(Errors.E397.format(dim=dim, epochs=epochs, min_count=min_count, bucket=bucket))
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "tokens.txt"
        n_texts = n_tokens = 0
        with open(corpus, "w", encoding="utf8") as f:
            for words in read_texts(texts_path, lang):
                if words:
                    f.write(" ".join(w.replace(" ", "_") for w in words) + "\n")
                    n_texts, n_tokens = n_texts + 1, n_tokens + len(words)
        if n_texts == 0:
            raise ValueError(Errors.E394.format(path=texts_path))
        model = floret.train_unsupervised(str(corpus), model="cbow", mode="floret", hashCount=2, bucket=bucket,
                                          minn=minn, maxn=maxn, dim=dim, epoch=epochs, minCount=min_count,
                                          thread=threads, verbose=0)
        table = Path(tmp) / "vectors.floret"
        model.save_floret_vectors(str(table))
        nlp = spacy.blank(lang)
        convert_vectors(nlp, table, truncate=0, prune=-1, mode="floret")
        staging = output.parent / (output.name + ".tmp")
        if staging.exists():
            shutil.rmtree(staging)
        nlp.to_disk(staging)
        if output.exists():
            shutil.rmtree(output)
        os.replace(staging, output)
    return {"texts": n_texts, "tokens": n_tokens, "dim": dim, "bucket": bucket, "epochs": epochs}
