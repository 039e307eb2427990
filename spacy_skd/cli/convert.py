"""`spacy skd convert`: a corpus in any of the plugin's reader formats -> a .spacy DocBin,
the input `spacy evaluate` and `spacy benchmark speed` expect."""
from pathlib import Path

import spacy
import typer
from spacy.tokens import DocBin
from spacy.util import registry
from wasabi import msg

from . import skd_cli

READERS = {
    "conll": "spacy-skd.CoNLLNER.v1",
    "slots": "spacy-skd.SlotFilling.v1",
    "conllu": "spacy-skd.CoNLLU.v1",
}
# Formats whose reader decodes entity tags and so takes `scheme`; CoNLL-U has no tag column.
TAGGED = {"conll", "slots"}


def convert_corpus(input_path: Path, output_path: Path, fmt: str = "conll", scheme: str = "IOB1",
                   lang: str = "en") -> int:
    """Write the reference docs of a corpus to `output_path`; returns the number of docs.
    `scheme` is only passed to the formats in TAGGED."""
    if fmt not in READERS:
        raise ValueError(f"Unknown format '{fmt}'. Choose one of: {', '.join(READERS)}.")
    kwargs = {"scheme": scheme} if fmt in TAGGED else {}
    reader = registry.readers.get(READERS[fmt])(input_path, **kwargs)
    nlp = spacy.blank(lang)
    docs = [eg.reference for eg in reader(nlp)]
    output_path.parent.mkdir(parents=True, exist_ok=True)
    DocBin(docs=docs, store_user_data=True).to_disk(output_path)
    return len(docs)


@skd_cli.command("convert")
def convert_cli(
    input_path: Path = typer.Argument(..., help="CoNLL column file (or folder), SNIPS/ATIS split folder, or CoNLL-U file (or folder)"),
    output_path: Path = typer.Argument(..., help="Output .spacy file"),
    fmt: str = typer.Option("conll", "--format", "-f", help="conll | slots | conllu"),
    scheme: str = typer.Option("IOB1", "--scheme", "-s", help="Tag scheme of the input: IOB1, IOB2, BIOES, BILUO, sBIO (not used by conllu)"),
    lang: str = typer.Option("en", "--lang", "-l", help="Language of the blank pipeline that builds the docs"),
) -> None:
    """Convert a CoNLL NER, slot-filling or CoNLL-U corpus to spaCy's binary .spacy format."""
    # Registers the readers when the package is not installed (no entry points).
    from ..training import conllu, readers  # noqa: F401

    n = convert_corpus(input_path, output_path, fmt=fmt, scheme=scheme, lang=lang)
    msg.good(f"Wrote {n} docs to {output_path}")
