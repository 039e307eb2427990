"""Where a student loses to its teacher: entity recall on test entities whose words all have a
teacher vector against entities with at least one word that has none.

The words with a vector are those of a plain (default-mode) `spacy skd vectors` table, the words
the teacher was run over. A student that matches its teacher on the first group and falls behind
on the second lacks knowledge of unseen words, not capacity; that is what `--subwords` vectors
and more raw text address. Each system's found entities are counted per group, with how many
the teacher finds and the student misses, and the reverse:

    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 OMP_NUM_THREADS=1 python benchmarks/unseen_words.py \
        training/vectors/teacher-en corpus/conll2003_en/test.spacy \
        --system teacher=training/teacher_crf/model-best \
        --system default=training/pareto-probe-depth6/structural-seed0/model-best \
        [--output docs/results/unseen_words.json]

The first --system is the reference the others are compared with.
"""
import argparse
import json
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Set, Tuple

import spacy
from spacy.tokens import Doc, DocBin

import spacy_skd  # noqa: F401  (registers the student's and teacher's factories)

Span = Tuple[int, int, str]
GROUPS = ("all words seen", "a word unseen")


def entity_sets(docs: Sequence[Doc]) -> List[Set[Span]]:
    return [{(ent.start, ent.end, ent.label_) for ent in doc.ents} for doc in docs]


def recall_by_group(gold: Sequence[Doc], systems: Dict[str, List[Set[Span]]],
                    has_vector: Callable[[str], bool]) -> Dict[str, Dict[str, float]]:
    """Per group of gold entities (all words with a vector, or not): their number, and for each
    system the share it finds. For every system after the first, also how many entities the first
    finds and it misses (`lost`) and the reverse (`gained`)."""
    names = list(systems)
    reference = names[0] if names else None
    table: Dict[str, Dict[str, float]] = {group: {"entities": 0} for group in GROUPS}
    counts: Dict[Tuple[str, str], int] = {}
    for i, doc in enumerate(gold):
        for ent in doc.ents:
            span = (ent.start, ent.end, ent.label_)
            group = GROUPS[0] if all(has_vector(token.text) for token in ent) else GROUPS[1]
            table[group]["entities"] += 1
            for name in names:
                found = span in systems[name][i]
                counts[group, name] = counts.get((group, name), 0) + found
                if name != reference:
                    by_reference = span in systems[reference][i]
                    counts[group, f"{name} lost"] = counts.get((group, f"{name} lost"), 0) + (by_reference and not found)
                    counts[group, f"{name} gained"] = counts.get((group, f"{name} gained"), 0) + (found and not by_reference)
    for (group, key), value in counts.items():
        n = table[group]["entities"]
        table[group][key] = value / n if key in systems and n else value
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("vectors", type=Path, help="plain `spacy skd vectors` folder: the words with a vector")
    parser.add_argument("test", type=Path, help="gold .spacy DocBin")
    parser.add_argument("--system", action="append", required=True, help="NAME=PIPELINE; the first is the reference")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    vectors = spacy.load(args.vectors).vocab.vectors
    if vectors.mode != "default":
        parser.error(f"{args.vectors} is a {vectors.mode} table: give the plain table (without --subwords), "
                     "whose rows are the words the teacher saw")
    seen = {vectors.strings[key] for key in vectors.keys()}
    gold = list(DocBin().from_disk(args.test).get_docs(spacy.blank("en").vocab))
    systems: Dict[str, List[Set[Span]]] = {}
    for item in args.system:
        name, _, path = item.partition("=")
        nlp = spacy.load(path)
        docs = nlp.pipe([Doc(nlp.vocab, words=[t.text for t in doc], spaces=[bool(t.whitespace_) for t in doc])
                         for doc in gold], batch_size=64)
        systems[name] = entity_sets(list(docs))
    table = recall_by_group(gold, systems, seen.__contains__)
    for group, row in table.items():
        cells = ", ".join(f"{key} {value:.1%}" if key in systems else f"{key} {value}" for key, value in row.items())
        print(f"{group}: {cells}")
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps({"vectors": str(args.vectors), "test": str(args.test),
                                           "systems": dict(s.partition("=")[::2] for s in args.system),
                                           "groups": table}, indent=2), encoding="utf8")


if __name__ == "__main__":
    main()
