"""Static word vectors distilled from a teacher's own encoder (`spacy skd vectors`).

A student that starts from hash embeddings learned on the gold corpus alone knows nothing about
the words it has not seen; the teacher does. Following Bommasani et al. (ACL 2020, "Interpreting
Pretrained Contextualized Representations via Reductions to Static Embeddings"), a word's static
vector is the mean of the teacher's contextual token vectors over all its occurrences in a raw
corpus. The token vectors are what the teacher component's own `tok2vec` sublayer outputs (a
transformer listener, a CNN `Tok2Vec`, or a concatenation of both): exactly the features the
teacher's head reads. The means of the words seen at least `min_count` times are reduced by PCA to
`width` dimensions and written as a spaCy pipeline folder holding only the vectors, which a
student loads through `[initialize] vectors` and `include_static_vectors = true` (words without
a vector get a zero vector there, and keep their hash embeddings).

The pass over the corpus is the expensive part. It runs in chunks of `chunk_size` texts; each
chunk's per-word sums and counts go to their own file in `OUTPUT.parts/`, written atomically, so
a killed run resumes at the first missing chunk, and `--shard i/N` runs chunks k with k % N == i
in as many processes as there are shards. Once every chunk is on disk, the table is built from
them in chunk order (float64 sums, so the result does not depend on the shard count) and the
pipeline folder is written to a temporary folder and renamed into place: nothing half-written is
ever loaded. Rebuilding with another `width` or `min_count` reuses the chunks, and so does a
second output that names this one's work folder (`--parts`).

Words the text never had get no vector from this table. `--extra-words FILE` adds the listed ones,
each encoded alone and mapped into the table's space (`lexicon_vectors`; a few minutes for tens of
thousands of words, done again on each build, not chunked); `--subwords` writes instead a floret
table of character n-grams fitted to the words' vectors (`subword_vectors`), which gives every
word one.
"""
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy
import spacy
import torch
from spacy.language import Language
from spacy.tokens import Doc
from spacy.vectors import Vectors
from thinc.api import Model
from tqdm import tqdm

from .. import __version__
from ..errors import Errors
from ..teacher.load import load_pipeline
from ..teacher.runner import docs_before
from .cache import fingerprint_pipeline
from .lexicon_vectors import lexicon_vectors
from .subword_vectors import FloretHashing, fit_subword_table
from .texts import hash_input, input_format, read_texts

Words = Tuple[str, ...]

PARTS_SUFFIX = ".parts"
PARTS_MANIFEST = "manifest.json"
VECTORS_META = "skd_vectors.json"
PARTS_FORMAT = 1
# ridge weight of the n-gram fit: on the CoNLL teacher's 22,543 words, 1e-3 fits the seen words
# closer (mean cosine 0.99 vs 0.94) but gives held-out words worse vectors (0.52 vs 0.60)
SUBWORD_L2 = 1e-2
DEFAULT_WIDTH = 300  # fastText's and GloVe's usual width; MiniLM teachers give 384 + hash features
# Manifest fields that must agree for chunks to be reused: the teacher, its layer, the input and
# how it is cut into chunks. Not the shard count: a chunk is the same whichever shard computed it.
_IDENTITY = ("teacher_fingerprint", "component", "input_sha256", "input_format", "lang", "chunk_size", "format")


class TeacherEncoder:
    """The contextual token vectors a teacher component reads: its model's `tok2vec` sublayer,
    run after the components before it (a transformer or tok2vec it listens to).

    teacher (str | Path | Language): a trained teacher pipeline or its folder.
    component (str): the teacher component; its model must have a `tok2vec` reference, as every
        spaCy and spacy-skd component built on a token encoder does.
    """

    def __init__(self, teacher: Union[str, Path, Language], component: str) -> None:
        self.nlp, self.path = load_pipeline(teacher)  # E224, E303; any component with a tok2vec will do
        if component not in self.nlp.pipe_names:
            raise ValueError(Errors.E225.format(path=self.path, component=component,
                                                pipes=", ".join(self.nlp.pipe_names)))
        model = getattr(self.nlp.get_pipe(component), "model", None)
        if not isinstance(model, Model) or not model.has_ref("tok2vec"):
            raise ValueError(Errors.E390.format(component=component, path=self.path))
        self.component = component
        self.tok2vec: Model = model.get_ref("tok2vec")
        self.fingerprint = fingerprint_pipeline(self.nlp, component)
        self.lang = self.nlp.lang

    @property
    def width(self) -> int:
        """The encoder's output width (known once the teacher was initialized)."""
        return int(self.tok2vec.get_dim("nO"))

    def __call__(self, batch: Sequence[Sequence[str]]) -> List[numpy.ndarray]:
        """One float32 array [n_words, width] per text."""
        docs = docs_before(self.nlp, self.component, [Doc(self.nlp.vocab, words=list(words)) for words in batch])
        with torch.no_grad():
            vectors = self.tok2vec.predict(docs)
        return [numpy.asarray(self.tok2vec.ops.to_numpy(v), dtype="float32") for v in vectors]


class WordSums:
    """Per-word sums of vectors (float64) and occurrence counts: what one chunk contributes."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.index: Dict[str, int] = {}
        self._rows: List[numpy.ndarray] = []
        self._counts: List[int] = []

    def add(self, words: Sequence[str], vectors: numpy.ndarray) -> None:
        for word, vector in zip(words, vectors):
            row = self.index.get(word)
            if row is None:
                self.index[word] = len(self._rows)
                self._rows.append(vector.astype("float64"))
                self._counts.append(1)
            else:
                self._rows[row] += vector
                self._counts[row] += 1

    def merge(self, words: Sequence[str], sums: numpy.ndarray, counts: numpy.ndarray) -> None:
        for word, total, count in zip(words, sums, counts):
            row = self.index.get(word)
            if row is None:
                self.index[word] = len(self._rows)
                self._rows.append(numpy.array(total, dtype="float64"))
                self._counts.append(int(count))
            else:
                self._rows[row] += total
                self._counts[row] += int(count)

    def arrays(self) -> Tuple[List[str], numpy.ndarray, numpy.ndarray]:
        """(words, sums [n, width] float64, counts [n] int64), in first-seen order."""
        sums = numpy.stack(self._rows) if self._rows else numpy.zeros((0, self.width))
        return list(self.index), sums, numpy.asarray(self._counts, dtype="int64")


def parts_dir(output: Union[str, Path], parts: Optional[Union[str, Path]] = None) -> Path:
    """The work folder that holds the chunks: `parts` if given (tables of one pass written to
    several outputs, e.g. with and without --subwords), else OUTPUT.parts beside OUTPUT."""
    if parts is not None:
        return Path(parts)
    output = Path(output)
    return output.parent / (output.name + PARTS_SUFFIX)


def chunk_path(parts: Path, k: int) -> Path:
    return parts / f"chunk-{k:06d}.npz"


def iter_chunks(texts: Iterator[Words], chunk_size: int) -> Iterator[Tuple[int, List[Words]]]:
    """(k, texts of chunk k) in order; the last chunk may be shorter."""
    chunk: List[Words] = []
    k = 0
    for words in texts:
        chunk.append(words)
        if len(chunk) == chunk_size:
            yield k, chunk
            chunk, k = [], k + 1
    if chunk:
        yield k, chunk


def save_chunk(path: Path, sums: WordSums) -> None:
    """Write one chunk's sums atomically (a temporary file renamed into place)."""
    words, totals, counts = sums.arrays()
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        numpy.savez(f, words=numpy.asarray(words, dtype=object), sums=totals, counts=counts)
    os.replace(tmp, path)


def load_chunk(path: Path) -> Tuple[List[str], numpy.ndarray, numpy.ndarray]:
    try:
        with numpy.load(path, allow_pickle=True) as data:
            return list(data["words"]), data["sums"], data["counts"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(Errors.E391.format(path=path, err=err)) from None


def _parts_manifest(encoder: TeacherEncoder, texts_path: Path, chunk_size: int) -> Dict[str, object]:
    return {"format": PARTS_FORMAT, "teacher": encoder.path, "teacher_fingerprint": encoder.fingerprint,
            "component": encoder.component, "input": str(texts_path), "input_sha256": hash_input(texts_path),
            "input_format": input_format(texts_path), "lang": encoder.lang, "chunk_size": chunk_size, "width": encoder.width,
            "spacy_skd": __version__}


def _open_parts(parts: Path, manifest: Dict[str, object], replace_stale: bool = False) -> Dict[str, object]:
    """Create the work folder, or check that the one there holds chunks of the same pass. With
    `replace_stale`, a folder of another pass (or an unreadable manifest) is deleted and started
    afresh instead of refused: a workflow rerun on new data must not stop at the old chunks."""
    path = parts / PARTS_MANIFEST
    if path.exists():
        try:
            found = json.loads(path.read_text(encoding="utf8"))
        except (OSError, ValueError) as err:
            if not replace_stale:
                raise ValueError(Errors.E391.format(path=path, err=err)) from None
            found = {}
        # written before CoNLL-U input: every input but a DocBin was read as raw text
        found.setdefault("input_format", "docbin" if str(found.get("input", "")).endswith(".spacy") else "text")
        diffs = [f"{key}: {found.get(key)!r} there, {manifest[key]!r} now" for key in _IDENTITY
                 if found.get(key) != manifest[key]]
        if not diffs:
            return found
        if not replace_stale:
            raise ValueError(Errors.E392.format(parts=parts, diffs="; ".join(diffs)))
        shutil.rmtree(parts)
    parts.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2), encoding="utf8")
    os.replace(tmp, path)
    return manifest


def encode_chunks(encoder: TeacherEncoder, texts_path: Union[str, Path], output: Union[str, Path], *,
                  shard: Tuple[int, int] = (0, 1), chunk_size: int = 2000, batch_size: int = 64,
                  limit: int = 0, progress: bool = True, replace_stale: bool = False,
                  parts: Optional[Union[str, Path]] = None) -> Dict[str, object]:
    """Run the teacher's encoder over the chunks of shard `shard` (chunk k belongs to shard
    k % N) that are not on disk yet, in the work folder `parts_dir(output, parts)`;
    `replace_stale` starts afresh where the work folder holds
    chunks of another teacher or input (one process only: shards would delete each other's).
    RETURNS a summary: chunks in the input, computed here, already there, and which chunks are
    still missing (other shards')."""
    texts_path = Path(texts_path)
    if not texts_path.exists():
        raise ValueError(Errors.E227.format(path=texts_path))
    if chunk_size < 1 or batch_size < 1:
        raise ValueError(Errors.E393.format(chunk_size=chunk_size, batch_size=batch_size))
    i, n = shard
    parts = parts_dir(output, parts)
    _open_parts(parts, _parts_manifest(encoder, texts_path, chunk_size), replace_stale=replace_stale)
    texts: Iterator[Words] = read_texts(texts_path, encoder.lang)
    if limit:
        texts = (words for k, words in zip(range(limit), texts))
    n_chunks = computed = reused = n_texts = 0
    bar = tqdm(desc=f"Teacher vectors, shard {i}/{n}", unit="text", disable=not progress)
    for k, chunk in iter_chunks(texts, chunk_size):
        n_chunks, n_texts = k + 1, n_texts + len(chunk)
        if k % n != i:
            continue
        if chunk_path(parts, k).exists():
            reused += 1
            continue
        sums = WordSums(encoder.width)
        for start in range(0, len(chunk), batch_size):
            batch = [words for words in chunk[start:start + batch_size] if words]
            for words, vectors in zip(batch, encoder(batch)):
                sums.add(words, vectors)
            bar.update(len(chunk[start:start + batch_size]))
        save_chunk(chunk_path(parts, k), sums)
        computed += 1
    bar.close()
    if n_texts == 0:
        raise ValueError(Errors.E394.format(path=texts_path))
    missing = [k for k in range(n_chunks) if not chunk_path(parts, k).exists()]
    return {"chunks": n_chunks, "texts": n_texts, "computed": computed, "reused": reused,
            "missing": missing, "parts": str(parts)}


def pca(means: numpy.ndarray, width: int) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """Project centred rows onto their `width` leading principal axes. Each axis's sign is fixed
    (largest coordinate positive), so the table is deterministic. RETURNS (projected [n, width],
    explained variance ratio per kept axis)."""
    centre, axes, explained = pca_axes(means, width)
    return (means - centre) @ axes, explained


def pca_axes(means: numpy.ndarray, width: int) -> Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
    """The rows' centre [d], their `width` leading principal axes [d, width] (signs fixed as in
    `pca`) and the explained variance ratio per kept axis."""
    centre = means.mean(axis=0)
    centred = means - centre
    covariance = centred.T @ centred / max(len(centred) - 1, 1)
    values, axes = numpy.linalg.eigh(covariance)  # ascending
    order = numpy.argsort(values)[::-1][:width]
    values, axes = values[order], axes[:, order]
    signs = numpy.sign(axes[numpy.abs(axes).argmax(axis=0), numpy.arange(axes.shape[1])])
    axes = axes * numpy.where(signs == 0, 1.0, signs)
    total = float(numpy.clip(numpy.linalg.eigvalsh(covariance), 0, None).sum()) or 1.0
    return centre, axes, numpy.clip(values, 0, None) / total


def all_word_sums(parts: Union[str, Path]) -> Tuple[List[str], numpy.ndarray, numpy.ndarray]:
    """Every chunk in `parts` added up, in chunk order: (words, sums, counts)."""
    parts = Path(parts)
    manifest = json.loads((parts / PARTS_MANIFEST).read_text(encoding="utf8"))
    totals = WordSums(int(manifest["width"]))
    for path in sorted(parts.glob("chunk-*.npz")):
        totals.merge(*load_chunk(path))
    return totals.arrays()


def word_means(parts: Union[str, Path], *, min_count: int) -> Tuple[List[str], numpy.ndarray, numpy.ndarray]:
    """The mean vector of every word seen at least `min_count` times, over all chunks in `parts`
    (summed in chunk order). RETURNS (words, means [n, encoder width] float64, counts [n])."""
    return _frequent_means(*all_word_sums(parts), min_count=min_count)


def _frequent_means(words: List[str], sums: numpy.ndarray, counts: numpy.ndarray, *, min_count: int
                    ) -> Tuple[List[str], numpy.ndarray, numpy.ndarray]:
    keep = counts >= min_count
    if not keep.any():
        raise ValueError(Errors.E396.format(min_count=min_count, n_words=len(words),
                                            max_count=int(counts.max()) if len(counts) else 0))
    return [w for w, k in zip(words, keep) if k], sums[keep] / counts[keep, None], counts[keep]


def build_table(parts: Union[str, Path], *, width: int, min_count: int,
                extra_words: Sequence[str] = (), encoder: Optional[TeacherEncoder] = None
                ) -> Tuple[List[str], numpy.ndarray, numpy.ndarray, Dict[str, object]]:
    """The vectors of the words seen at least `min_count` times, from every chunk in `parts`,
    reduced by PCA to `width` and scaled to unit mean variance per dimension (one factor for the
    whole table, so the student's projection starts in the range its hash embeddings live in).
    The words of `extra_words` that the text lacks follow them, encoded alone by `encoder` and
    mapped into the means' space (`lexicon_vectors`), then projected on the same axes (count 0).
    RETURNS (words, table [n, width] float32, counts, stats)."""
    parts = Path(parts)
    manifest = json.loads((parts / PARTS_MANIFEST).read_text(encoding="utf8"))
    encoder_width = int(manifest["width"])
    if not 1 <= width <= encoder_width:
        raise ValueError(Errors.E395.format(width=width, encoder_width=encoder_width))
    if min_count < 1:
        raise ValueError(Errors.E396.format(min_count=min_count, n_words="?", max_count="?"))
    all_words, sums, all_counts = all_word_sums(parts)  # every chunk read once
    words, means, counts = _frequent_means(all_words, sums, all_counts, min_count=min_count)
    extra_stats: Dict[str, object] = {}
    new_words: List[str] = []
    new_means = numpy.zeros((0, means.shape[1]))
    if extra_words:
        if encoder is None:
            raise TypeError("build_table: extra_words are encoded by the teacher, pass its encoder")
        new_words, new_means, extra_stats = lexicon_vectors(encoder, words, means, extra_words)
    if len(words) > width:
        centre, axes, explained = pca_axes(means, width)
    else:  # fewer words than dimensions: PCA cannot give `width` axes, keep the leading coordinates
        centre, axes = means.mean(axis=0), numpy.eye(means.shape[1])[:, :width]
        explained = numpy.full(width, numpy.nan)
    table = (numpy.concatenate([means, new_means]) - centre) @ axes
    scale = float(numpy.sqrt((table[:len(words)] ** 2).mean())) or 1.0
    stats = {"words": len(words) + len(new_words), "tokens": int(all_counts.sum()), "tokens_covered": int(counts.sum()),
             "encoder_width": encoder_width, "explained_variance": float(numpy.nansum(explained)), "scale": scale,
             **extra_stats}
    counts = numpy.concatenate([counts, numpy.zeros(len(new_words), dtype=counts.dtype)])
    return words + new_words, (table / scale).astype("float32"), counts, stats


def write_vectors(output: Union[str, Path], lang: str, words: Sequence[str], table: numpy.ndarray,
                  meta: Dict[str, object], hashing: Optional[FloretHashing] = None) -> Path:
    """A pipeline folder with only these vectors (what `spacy init vectors` writes), built in a
    temporary folder and renamed into place. With `hashing`, `table` is a floret n-gram table
    [bucket, width] (spaCy's floret mode); else one row per word of `words`."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    nlp = spacy.blank(lang)
    keys = [nlp.vocab.strings.add(word) for word in words]  # kept in the folder's strings
    if hashing is None:
        nlp.vocab.vectors = Vectors(strings=nlp.vocab.strings, data=table, keys=keys)
    else:
        nlp.vocab.vectors = hashing.vectors(table, nlp.vocab.strings)
    nlp.meta["name"] = "skd_teacher_vectors"
    nlp.meta["description"] = "Static vectors distilled from a spacy-skd teacher's encoder"
    # a folder of this process's own: two shards that finish together may both build the table
    tmp = Path(tempfile.mkdtemp(dir=output.parent, prefix=f"{output.name}.tmp-"))
    nlp.to_disk(tmp)
    (tmp / VECTORS_META).write_text(json.dumps(meta, indent=2), encoding="utf8")
    old = output.parent / f"{output.name}.old-{os.getpid()}"
    if output.exists():
        os.replace(output, old)
    try:
        os.replace(tmp, output)
    except OSError:
        if not output.exists():
            raise
        shutil.rmtree(tmp)  # another shard put the same table there in between
    if old.exists():
        shutil.rmtree(old)
    return output


def build_vectors(output: Union[str, Path], *, width: int = 300, min_count: int = 2,
                  subwords: Optional[FloretHashing] = None, l2: float = SUBWORD_L2,
                  parts: Optional[Union[str, Path]] = None, extra_words: Sequence[str] = (),
                  encoder: Optional[TeacherEncoder] = None) -> Dict[str, object]:
    """Build the vectors folder from the chunks in `parts_dir(output, parts)` (all must be
    there), plus the words of `extra_words` the text lacks (encoded alone by `encoder`, see
    `build_table`). With `subwords`,
    the words' vectors are turned into a floret n-gram table fitted to them (ridge `l2`), so
    every word gets a vector (`subword_vectors`)."""
    parts = parts_dir(output, parts)
    manifest = json.loads((parts / PARTS_MANIFEST).read_text(encoding="utf8"))
    words, table, counts, stats = build_table(parts, width=width, min_count=min_count, extra_words=extra_words,
                                              encoder=encoder)
    meta = {"teacher": manifest["teacher"], "teacher_fingerprint": manifest["teacher_fingerprint"],
            "component": manifest["component"], "input": manifest["input"],
            "input_sha256": manifest["input_sha256"], "width": width, "min_count": min_count,
            **stats, "mode": "default", "spacy_skd": __version__}
    if subwords is not None:
        table, fit = fit_subword_table(words, table, subwords, l2=l2)
        meta.update({"mode": "floret", "subwords": subwords.settings(), "l2": l2, **fit})
    write_vectors(output, manifest["lang"], words, table, meta, hashing=subwords)
    return meta


def teacher_vectors(teacher: Union[str, Path, Language, TeacherEncoder], texts_path: Union[str, Path],
                    output: Union[str, Path], *, component: str = "ner", width: Optional[int] = None,
                    min_count: int = 2,
                    shard: Tuple[int, int] = (0, 1), chunk_size: int = 2000, batch_size: int = 64,
                    limit: int = 0, progress: bool = True, replace_stale: bool = False,
                    subwords: Optional[FloretHashing] = None, l2: float = SUBWORD_L2,
                    parts: Optional[Union[str, Path]] = None, extra_words: Sequence[str] = ()
                    ) -> Dict[str, object]:
    """Encode this shard's chunks, then build OUTPUT if every chunk is on disk. `width` None keeps
    300 dimensions, or all of the encoder's if it is narrower; `replace_stale` as in
    `encode_chunks`; `subwords`, `l2`, `parts` and `extra_words` as in `build_vectors`.
    RETURNS the summary of `encode_chunks`, plus "meta" (the table's statistics) once built."""
    encoder = teacher if isinstance(teacher, TeacherEncoder) else TeacherEncoder(teacher, component)
    width = min(DEFAULT_WIDTH, encoder.width) if width is None else width
    if not 1 <= width <= encoder.width:
        raise ValueError(Errors.E395.format(width=width, encoder_width=encoder.width))
    if min_count < 1:
        raise ValueError(Errors.E396.format(min_count=min_count, n_words="?", max_count="?"))
    summary = encode_chunks(encoder, texts_path, output, shard=shard, chunk_size=chunk_size,
                            batch_size=batch_size, limit=limit, progress=progress, replace_stale=replace_stale,
                            parts=parts)
    summary["meta"] = None if summary["missing"] else build_vectors(output, width=width, min_count=min_count,
                                                                    subwords=subwords, l2=l2, parts=parts,
                                                                    extra_words=extra_words, encoder=encoder)
    return summary

