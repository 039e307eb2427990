"""`spacy skd vectors` and `spacy skd floret`: static word vectors for a student, from the
teacher's own encoder (`spacy_skd.training.teacher_vectors`) or trained by floret on the same text
(`spacy_skd.training.floret_vectors`, the baseline)."""
from pathlib import Path
from typing import Optional

import spacy
import typer
from wasabi import msg

from ..training.annotate import parse_shards
from ..training.floret_vectors import train_floret
from ..training.lexicon_vectors import read_word_list_file
from ..training.subword_vectors import FloretHashing
from ..training.teacher_vectors import SUBWORD_L2, TeacherEncoder, teacher_vectors
from . import skd_cli


@skd_cli.command("vectors")
def vectors_cli(
    teacher: Path = typer.Argument(..., help="Trained teacher pipeline folder"),
    texts: Path = typer.Argument(..., help="Raw text (one text per line, .gz ok), a folder of them, or a .spacy DocBin"),
    output: Path = typer.Argument(..., help="Vectors pipeline folder to write (for [initialize] vectors)"),
    component: str = typer.Option("ner", "--component", "-c", help="Teacher component whose tok2vec is read"),
    width: int = typer.Option(0, "--width", "-w", help="Dimensions kept by PCA, at most the encoder's width "
                             "(0: 300, or the encoder's width if smaller)"),
    min_count: int = typer.Option(2, "--min-count", "-m", help="Words seen fewer times get no vector"),
    shard: str = typer.Option("0/1", "--shard", help="Shard i/N (chunk k goes to shard k % N), or all/N"),
    chunk_size: int = typer.Option(2000, "--chunk-size", help="Texts per resumable chunk"),
    batch_size: int = typer.Option(64, "--batch-size", "-b", help="Texts per teacher batch"),
    limit: int = typer.Option(0, "--limit", help="Read only the first N texts (0: all)"),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU id, -1 for the CPU"),
    replace_stale: bool = typer.Option(False, "--replace-stale", help="Delete the work files of another teacher or "
                                       "input (OUTPUT.parts) and start afresh, instead of refusing them "
                                       "(one process only)"),
    subwords: bool = typer.Option(False, "--subwords", help="Write a floret table of character n-grams fitted "
                                  "to the words' vectors, so that words the text never had get a vector too"),
    bucket: int = typer.Option(50000, "--bucket", help="With --subwords: rows of the n-gram table"),
    minn: int = typer.Option(3, "--minn", help="With --subwords: shortest character n-gram"),
    maxn: int = typer.Option(5, "--maxn", help="With --subwords: longest character n-gram"),
    parts: Optional[Path] = typer.Option(None, "--parts", help="Work folder of the teacher's pass (default: "
                                         "OUTPUT.parts); give another output's to build a second table "
                                         "from its pass, e.g. with --subwords"),
    extra_words: Optional[Path] = typer.Option(None, "--extra-words", help="Word list (one per line) whose words "
                                               "the text lacks get a vector too: each encoded alone by the "
                                               "teacher, mapped into the table's space (e.g. the teacher "
                                               "transformer's whole-word vocabulary)"),
    l2: float = typer.Option(SUBWORD_L2, "--l2", help="With --subwords: ridge weight of the fit (higher: "
                             "smoother vectors for unseen words, looser fit of the seen ones)"),
) -> None:
    """Build static vectors for the words of a raw-text corpus: each word's vector is the mean of
    the teacher's contextual token vectors over its occurrences, reduced by PCA. The student loads
    them with `[initialize] vectors = OUTPUT` (`--paths.vectors OUTPUT` for the shipped student
    configs; a `spacy.MultiHashEmbed.v2` tok2vec also needs `include_static_vectors = true`).
    Resumable: rerun the same command after an interruption; with --shard i/N, the run that finds
    every chunk on disk (or any later run) writes OUTPUT. --replace-stale lets a workflow rerun
    on new text without deleting the old work files first. With --subwords, the table is a floret
    table of character n-grams solved so that each word's n-gram mean gives back its vector: an
    unseen word gets the vector its n-grams say, in the teacher's space."""
    try:
        hashing = FloretHashing(bucket=bucket, minn=minn, maxn=maxn) if subwords else None
        listed = read_word_list_file(extra_words) if extra_words is not None else []
        shards = parse_shards(shard)
        if gpu_id >= 0:
            spacy.require_gpu(gpu_id)
        encoder = TeacherEncoder(teacher, component)
        for one in shards:
            summary = teacher_vectors(encoder, texts, output, width=width or None, min_count=min_count, shard=one,
                                      chunk_size=chunk_size, batch_size=batch_size, limit=limit,
                                      replace_stale=replace_stale, subwords=hashing, l2=l2,
                                      parts=parts, extra_words=listed)
            msg.good(f"Shard {one[0]}/{one[1]}: {summary['computed']} chunks computed, {summary['reused']} "
                     f"already there ({summary['chunks']} chunks, {summary['texts']} texts in the input)")
    except ValueError as err:
        msg.fail(str(err), exits=1)
    meta = summary["meta"]
    if meta is None:
        msg.info(f"Waiting for the other shards: chunks {summary['missing'][:10]}"
                 f"{' ...' if len(summary['missing']) > 10 else ''} are missing. Rerun any shard "
                 f"(or without --shard) once they are done to write {output}.")
        return
    msg.good(f"{meta['words']} words x {meta['width']} dims in {output} ({meta['tokens_covered']} of "
             f"{meta['tokens']} tokens covered; PCA keeps {meta['explained_variance']:.1%} of the variance)")
    if listed:
        msg.good(f"{meta['extra_words_added']} of the {meta['extra_words_listed']} listed words added (the "
                 f"others have a vector from the text); held-out cosine of the map: "
                 f"{meta['extra_words_map_cosine']:.3f} (unmapped {meta['extra_words_unmapped_cosine']:.3f})")
    if hashing is not None:
        msg.good(f"n-gram table: {bucket} rows, mean cosine {meta['fit_cosine']:.3f} between the words' "
                 f"n-gram vectors and their own ({meta['iterations']} steps)")
    print(f"Use it: --paths.vectors {output} (a spacy.MultiHashEmbed.v2 tok2vec also needs "
          "--components.tok2vec.model.embed.include_static_vectors true)")


@skd_cli.command("floret")
def floret_cli(
    texts: Path = typer.Argument(..., help="Raw text (one text per line, .gz ok), a folder of them, or a .spacy DocBin"),
    output: Path = typer.Argument(..., help="Vectors pipeline folder to write (for [initialize] vectors)"),
    lang: str = typer.Option("en", "--lang", "-l", help="Tokenizer language (use the student's)"),
    dim: int = typer.Option(300, "--dim", "-d", help="Vector width"),
    epochs: int = typer.Option(5, "--epochs", help="Passes over the text"),
    min_count: int = typer.Option(2, "--min-count", "-m", help="Words seen fewer times get no entry of their own"),
    bucket: int = typer.Option(50000, "--bucket", help="Rows of the hashed table"),
    threads: int = typer.Option(1, "--threads", help="Training threads"),
) -> None:
    """Train floret vectors on a raw-text corpus (the baseline for `spacy skd vectors`): words
    and character n-grams in one hashed table, read by spaCy in floret mode."""
    try:
        summary = train_floret(texts, output, lang=lang, dim=dim, epochs=epochs, min_count=min_count,
                               bucket=bucket, threads=threads)
    except ValueError as err:
        msg.fail(str(err), exits=1)
    msg.good(f"floret vectors ({summary['dim']} dims, {summary['bucket']} rows) from {summary['texts']} texts, "
             f"{summary['tokens']} tokens, in {output}")
    print(f"Use it: --paths.vectors {output} (a spacy.MultiHashEmbed.v2 tok2vec also needs "
          "--components.tok2vec.model.embed.include_static_vectors true)")
