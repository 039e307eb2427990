"""`spacy skd annotate` and `spacy skd merge-cache`: the teacher pass ahead of training, in
shards that run in parallel, merged into the cache folder `structural_kd` reads
(`spacy_skd.training.annotate`)."""
from pathlib import Path
from typing import Callable, Dict, List, Optional

import typer
from spacy.cli._util import ENV_VARS, parse_config_overrides
from wasabi import msg

from ..errors import Errors
from ..teacher.runner import DEFAULT_MAX_BATCH_COST, TeacherRunner
from ..training.annotate import STORES, annotate, parse_shards
from ..training.merge import merge_shards
from ..training.texts import InputSplit
from . import skd_cli


def _run_local(*, shards, teacher, component, gpu_id, max_batch_cost, workers=None, address=None,
               beam_width=None, beam_density=None, **kwargs) -> List[Dict[str, object]]:
    """The shards one after the other in this process, with one loaded teacher and one read of the
    input (run several processes for parallelism)."""
    runner = TeacherRunner(teacher, component, gpu_id, max_batch_cost=max_batch_cost, beam_width=beam_width,
                           beam_density=beam_density)
    split = None
    if len(shards) > 1:
        split = InputSplit(kwargs["texts_path"], shards[0][1], kwargs.get("lang") or runner.lang)
    return [annotate(runner, shard=shard, split=split, **kwargs) for shard in shards]


def _run_ray(*, shards, teacher, texts_path, output, workers=None, address=None, beam_width=None,
             beam_density=None, **kwargs) -> List[Dict[str, object]]:
    """All shards through one Ray Data actor pool (extra `ray`)."""
    if beam_width is not None or beam_density is not None:
        raise ValueError(Errors.E326)
    try:
        import ray  # noqa: F401
        import ray.data  # noqa: F401
    except ImportError:
        raise ValueError(Errors.E241) from None
    from ..training.annotate_ray import annotate_ray

    return annotate_ray(teacher, texts_path, output, shards=shards, workers=workers, address=address, **kwargs)


# --engine name -> runner of the shards; another engine is one more entry.
ENGINES: Dict[str, Callable[..., List[Dict[str, object]]]] = {"local": _run_local, "ray": _run_ray}


def run_engine(engine: str, **kwargs) -> List[Dict[str, object]]:
    if engine not in ENGINES:
        raise ValueError(Errors.E236.format(name="--engine", value=engine, options=", ".join(ENGINES)))
    return ENGINES[engine](**kwargs)


@skd_cli.command("annotate", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def annotate_cli(
    ctx: typer.Context,  # extra arguments: overrides of --student-config, as for `spacy train`
    teacher: Path = typer.Argument(..., help="Trained teacher pipeline folder"),
    texts: Path = typer.Argument(..., help="Raw text (one text per line, .gz ok) or a .spacy DocBin"),
    output: Path = typer.Argument(..., help="Folder for the shard folders (shard-i-of-N)"),
    component: str = typer.Option("ner", "--component", "-c", help="Teacher component"),
    shard: str = typer.Option("0/1", "--shard", help="Shard i/N (0-based; text k goes to shard k % N), or all/N"),
    batch_size: int = typer.Option(64, "--batch-size", "-b", help="Sentences per teacher batch and per write"),
    max_batch_cost: int = typer.Option(DEFAULT_MAX_BATCH_COST, "--max-batch-cost", help="Bound of a teacher "
                                       "batch's padded size: sentences x the values the longest takes (tokens x "
                                       "tags^2 for taggers, tokens^2 x relations for parsers); a sentence over it "
                                       "alone is not stored (W341)"),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU id, -1 for the CPU (ray: >= 0 gives each actor a GPU)"),
    lang: str = typer.Option("", "--lang", "-l", help="Tokenizer language (default: the teacher's)"),
    store: str = typer.Option(STORES[0], "--store", help="What to store per sentence: potentials (the teacher's "
                              "outputs, for any student) or targets (one student's targets: needs --student-config)"),
    student_config: Optional[Path] = typer.Option(None, "--student-config", help="--store targets: the student's "
                                                  "training config (with its structural_kd component); config "
                                                  "overrides such as --components.kd.temperature 1 may follow"),
    beam_width: int = typer.Option(0, "--beam-width", help="A spaCy ner/beam_ner/parser/beam_parser teacher's "
                                   "beam (as the KD component's beam_width); 0 = the teacher's own"),
    beam_density: float = typer.Option(-1.0, "--beam-density", help="That beam's pruning threshold (as the KD "
                                       "component's beam_density; 0 keeps every analysis); -1 = the teacher's own"),
    engine: str = typer.Option("local", "--engine", help="local (this process) or ray (a Ray Data actor pool)"),
    workers: int = typer.Option(0, "--workers", help="ray: actors in the pool (default: the CPUs or GPUs Ray has)"),
    address: str = typer.Option("", "--ray-address", help="ray: cluster address (default: $RAY_ADDRESS or a local Ray)"),
) -> None:
    """Run a KD teacher over a corpus ahead of training and cache its outputs (or, with --store
    targets, one student's targets), shard by shard. Resumable: rerun the same command after an
    interruption."""
    # $SPACY_CONFIG_OVERRIDES applies to a student config only, as in `spacy train`
    overrides = parse_config_overrides(ctx.args, env_var=ENV_VARS.CONFIG_OVERRIDES if store == "targets" else None)
    try:
        shards = parse_shards(shard)
        summaries = run_engine(engine, teacher=teacher, texts_path=texts, output=output, shards=shards,
                               component=component, batch_size=batch_size, gpu_id=gpu_id, lang=lang or None,
                               store=store, student_config=student_config, overrides=overrides or None,
                               workers=workers or None, address=address or None, max_batch_cost=max_batch_cost,
                               beam_width=beam_width or None,
                               beam_density=None if beam_density == -1.0 else beam_density)
    except ValueError as err:
        msg.fail(str(err), exits=1)
    n = shards[0][1]
    for (i, _), summary in zip(shards, summaries):
        if summary["skipped"]:
            msg.info(f"Shard {i}/{n} is already complete ({summary['texts']} texts): nothing computed")
        else:
            too_long = f", {summary['too_long']} too long (not stored)" if summary.get("too_long") else ""
            msg.good(f"Shard {i}/{n}: {summary['texts']} texts, {summary['computed']} computed, "
                     f"{summary['reused']} reused{too_long}, {summary['sentences_per_second']:.1f} sentences/s")
        # print, not msg.text: wasabi wraps long lines, and these are meant to be copied
        print(f"Shard folder: {summary['shard_dir']}")
    if n == 1:
        print(f"Use it: SKD_CACHE_DIR={summaries[0]['shard_dir']} (or [initialize.components.kd] cache_dir)")
    else:
        print(f"When all {n} shards are done: python -m spacy skd merge-cache {output} MERGED")
    if store == "targets":
        msg.info(f"The targets of {student_config} only: train that config (same overrides) with this cache")


@skd_cli.command("merge-cache")
def merge_cache_cli(
    shards: List[Path] = typer.Argument(..., help="Shard folders (or a folder holding them)"),
    output: Path = typer.Argument(..., help="Merged cache folder"),
    allow_partial: bool = typer.Option(False, "--allow-partial", help="Merge even if some shards are missing"),
) -> None:
    """Check annotate shards and merge them into one teacher cache folder."""
    try:
        summary = merge_shards(shards, output, allow_partial=allow_partial)
    except ValueError as err:
        msg.fail(str(err), exits=1)
    msg.good(f"Merged {summary['shards']} shards: {summary['entries']} sentences in {summary['cache_path']}")
    if len(summary["inputs"]) > 1:
        for part in summary["inputs"]:
            msg.text(f"{part['name']}: {len(part['shards'])} of {part['count']} shards, {part['texts']} texts")
    for name, missing in summary["missing"].items():
        msg.warn(f"Missing shards of {name}: {missing}")
    print(f"Use it: SKD_CACHE_DIR={output} (or [initialize.components.kd] cache_dir = \"{output}\")")
