"""`spacy skd init-config`: a complete student config for a trained teacher.

Reads the teacher pipeline (which component, its structure, labels and tag scheme), picks the KD
case and a student, and writes one of the package's student configs (`templates/`, the configs of
the repository's `configs/` folder) filled in for that teacher: the `structural_kd` block, the
student component with the teacher's labels and scheme, a CNN (or BiLSTM) tok2vec, the readers of
the teacher's own training corpus, teacher annealing and the teacher-output cache. The result
trains with `spacy train OUTPUT --paths.train ... --paths.dev ...` and no edits.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import typer
from spacy.language import Language
from thinc.api import Config
from wasabi import msg

from ..errors import Errors
from ..teacher.load import check_teacher, load_pipeline
from ..teacher.spacy_transition import SPACY_FACTORIES
from . import skd_cli

TEMPLATES = Path(__file__).parent / "templates"

# teacher factory -> structure kind (the KD adapters' names; "sentscore" is MaxEnt-like)
TEACHER_KINDS = {
    "skd_crf_tagger": "crf",
    "skd_maxent_tagger": "maxent",
    "skd_span_ner": "span",
    "skd_biaffine_parser": "biaffine",
    "skd_mfvi_parser": "mfvi",
    "skd_sentscore": "sentscore",
    # spaCy's own transition components (issue 21); `read_teacher` takes their kind from the
    # wrapper, which reads the component's own beam width (a `ner` saved with beam_width 4 gives
    # beam marginals, a `beam_ner` saved with beam_width 1 only greedy steps)
    "ner": "ner_greedy",
    "beam_ner": "ner_beam",
    "parser": "parser_beam",
    "beam_parser": "parser_beam",
}
# teacher kind -> {student: template}; the first student is the default (the paper's case)
STUDENTS = {
    "crf": {"crf": "student_crf_kd.cfg", "maxent": "student_maxent_kd.cfg"},  # cases 1a, 2a
    "maxent": {"crf": "student_crf_kd.cfg", "maxent": "student_maxent_kd.cfg"},  # case 3, token KD
    "span": {"maxent": "student_maxent_span_kd.cfg"},  # case 4
    "biaffine": {"seqlabel": "student_seqlabel_kd.cfg"},  # case 1b
    "mfvi": {"seqlabel": "student_seqlabel_kd.cfg"},  # case 2b
    "sentscore": {"maxent": "student_bilstm_sentscore_kd.cfg"},  # SenTScore
    "ner_greedy": {"maxent": "student_maxent_kd.cfg", "crf": "student_crf_kd.cfg"},  # token KD, case 3
    "ner_beam": {"crf": "student_crf_kd.cfg", "maxent": "student_maxent_kd.cfg"},  # beam marginals
    "parser_beam": {"seqlabel": "student_seqlabel_kd.cfg"},  # case 1b from the beam
}
# tok2vec size per --optimize: the templates' own CNN (efficiency: the best student of the pareto
# table) or a wider and deeper one, and a wider BiLSTM for the SenTScore student
CNN_SIZES = {"efficiency": {"width": 128, "depth": 4}, "accuracy": {"width": 256, "depth": 8}}
BILSTM_SIZES = {"efficiency": {"hidden": 100, "depth": 1}, "accuracy": {"hidden": 200, "depth": 2}}


@dataclass
class TeacherInfo:
    """What the student config needs from a teacher pipeline."""

    path: str
    lang: str
    component: str
    factory: str
    kind: str
    labels: List[str]
    scheme: Optional[str]
    corpora: Dict  # the teacher config's [corpora] section, uninterpolated


def read_teacher(path: Union[str, Language], component: Optional[str] = None) -> TeacherInfo:
    """Load the teacher (`teacher.load`: E224, E303) and find the component to distil from.

    path (str | Language): a pipeline folder, an installed package name, or the pipeline.
    component (Optional[str]): its name, when the teacher has several distillable components.
    RETURNS (TeacherInfo): kind, labels, scheme and training corpora of the teacher.
    """
    nlp, path = load_pipeline(path)
    factories = {name: nlp.get_pipe_meta(name).factory for name in nlp.pipe_names}
    found = [name for name in nlp.pipe_names if factories[name] in TEACHER_KINDS]
    if component is None:
        if not found:
            raise ValueError(Errors.E362.format(path=path, pipes=nlp.pipe_names,
                                                factories=sorted(set(factories.values())),
                                                supported=", ".join(TEACHER_KINDS)))
        if len(found) > 1:
            raise ValueError(Errors.E363.format(path=path, pipes=", ".join(found)))
        component = found[0]
    pipe = check_teacher(nlp, component, path)  # E225, E226: the checks training makes
    if component not in found:  # it can teach, but no student template is written for it
        raise ValueError(Errors.E367.format(component=component, path=path, pipes=found or "none"))
    kind = pipe.kd_kind if factories[component] in SPACY_FACTORIES else TEACHER_KINDS[factories[component]]
    return TeacherInfo(path=path, lang=nlp.lang, component=component, factory=factories[component],
                       kind=kind, labels=list(pipe.labels),
                       scheme=getattr(pipe, "cfg", {}).get("scheme"), corpora=dict(nlp.config.get("corpora", {})))


def student_config(teacher: TeacherInfo, student: Optional[str] = None, optimize: str = "efficiency",
                   vectors: Optional[str] = None, raw: Optional[str] = None) -> Tuple[str, Config]:
    """The student config for `teacher`: (student kind, config, uninterpolated).

    student (Optional[str]): "crf", "maxent" or "seqlabel"; None picks the teacher's case.
    optimize (str): "efficiency" (spaCy-sm-like CNN) or "accuracy" (wider and deeper).
    vectors (Optional[str]): static vectors for the tok2vec (`[initialize] vectors`), then
        required (`include_static_vectors = true`); without, the templates' `null` uses a table
        passed later with `--paths.vectors`.
    raw (Optional[str]): unlabeled text for KD (SenTScore: a folder of silver sentences).
    """
    options = STUDENTS[teacher.kind]
    student = student or next(iter(options))
    if student not in options:
        raise ValueError(Errors.E364.format(kind=teacher.kind, component=teacher.component, factory=teacher.factory,
                                            student=student, options=", ".join(options)))
    if optimize not in CNN_SIZES:
        raise ValueError(Errors.E365.format(value=optimize))
    sentscore = teacher.kind == "sentscore"
    if vectors and sentscore:
        raise ValueError(Errors.E366.format(student=student))
    config = Config().from_disk(TEMPLATES / options[student], interpolate=False)
    name = config["components"]["kd"]["student"]
    kd = config["components"]["kd"]
    kd["teacher_component"] = teacher.component
    if teacher.kind in ("maxent", "ner_greedy") and student == "maxent":
        kd["objective"] = "token"  # what "structural" means for a MaxEnt pair, said plainly
    component = config["components"][name]
    if teacher.scheme and "scheme" in component:
        component["scheme"] = teacher.scheme  # KD compares tags of one scheme
    if teacher.kind in ("maxent", "ner_greedy") and student == "crf":
        component["constrained"] = False  # case 3: the products of unaries need a free CRF
    if student != "seqlabel":  # a tagger takes the teacher's labels; a parser's come from the trees
        config["initialize"]["components"][name] = {"labels": sorted(teacher.labels)}
    config["nlp"]["lang"] = teacher.lang
    paths = config["paths"]
    paths["teacher"] = teacher.path
    paths["train"] = None
    paths["dev"] = None
    paths["cache"] = f"cache/{Path(teacher.path).name or 'teacher'}"
    paths["vectors"] = vectors
    if sentscore:
        paths["silver"] = raw
        encoder = component["model"]["tok2vec"]
        encoder.update(BILSTM_SIZES[optimize])
    else:
        paths["raw"] = raw
        tok2vec = config["components"]["tok2vec"]["model"]
        tok2vec["encode"].update(CNN_SIZES[optimize])
        if vectors:  # asked for by name: a path without vectors is an error, not hash embeddings
            tok2vec["embed"]["include_static_vectors"] = True
    _readers_from_teacher(config, teacher.corpora)
    return student, config


def _readers_from_teacher(config: Config, corpora: Dict) -> None:
    """Read gold train and dev data as the teacher's config did (reader and its settings, e.g.
    the tag scheme of the corpus), where the teacher used a reader of the same kind."""
    for key, section in (("train", config["corpora"]["train"]["gold"]), ("dev", config["corpora"]["dev"])):
        theirs = corpora.get(key) or {}
        if theirs.get("@readers") != section.get("@readers"):
            continue
        for setting, value in theirs.items():
            if setting not in ("path", "limit"):
                section[setting] = value


@skd_cli.command("init-config")
def init_config_cli(
    teacher: str = typer.Argument(..., help="Trained teacher pipeline: a folder such as training/teacher/model-best"),
    output_path: Path = typer.Argument(..., help="Where to write the student config (.cfg); '-' for stdout"),
    student: Optional[str] = typer.Option(None, "--student", "-s", help="crf | maxent | seqlabel; default: the teacher's case (CRF/MaxEnt teacher -> CRF, span -> MaxEnt, parser -> seqlabel, SenTScore -> MaxEnt)"),
    optimize: str = typer.Option("efficiency", "--optimize", "-o", help="efficiency (CNN width 128, depth 4) | accuracy (width 256, depth 8)"),
    vectors: Optional[str] = typer.Option(None, "--vectors", "-V", help="Static vectors for the student's tok2vec (a spaCy vectors package or folder)"),
    raw: Optional[str] = typer.Option(None, "--raw", "-r", help="Unlabeled text for KD (RawText reader; SenTScore: a SlotFilling folder of silver sentences)"),
    component: Optional[str] = typer.Option(None, "--component", "-c", help="Teacher component to distil, if it has several"),
) -> None:
    """Write a student config that distils TEACHER: `spacy train OUTPUT --paths.train ... --paths.dev ...`."""
    info = read_teacher(teacher, component)
    kind, config = student_config(info, student, optimize=optimize, vectors=vectors, raw=raw)
    header = (f"# Student for teacher {info.path} (component '{info.component}', {info.factory}, "
              f"{len(info.labels)} labels), written by `spacy skd init-config`.\n"
              f"# Train: python -m spacy train {output_path} --paths.train TRAIN --paths.dev DEV\n")
    text = header + config.to_str(interpolate=False)
    if str(output_path) == "-":
        print(text)
        return
    output_path.parent.mkdir(parents=True, exist_ok=True)
    output_path.write_text(text, encoding="utf8")
    msg.good(f"Wrote a {kind} student config for the {info.kind} teacher '{info.component}' to {output_path}")
