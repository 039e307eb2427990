"""Student training step with structural KD from a warm teacher cache vs a plain step.

Builds two identical students from configs/student_crf_kd.cfg (or --student-config): one with
the `kd` component (objective structural, its teacher outputs cached by an initial teacher pass
that is timed separately), one without it. Both take the same batches of CoNLL-2003 sentences,
interleaved, so the ratio is measured side by side on the same machine state.

    python benchmarks/kd_step_time.py --teacher benchmarks/results/ner_conll03/skd_crf_tagger/model-best

The teacher must tag CoNLL-2003's labels with the student's scheme (BIOES): the CRF tagger
trained by benchmarks/ner_conll03.py is a good one. Parsers (cases 1b/2b) read CoNLL-U:

    python benchmarks/kd_step_time.py --teacher training/teacher_biaffine/model-best \
        --student-config configs/student_seqlabel_kd.cfg --data assets/ud_en_ewt/en_ewt-ud-train.conllu.gz \
        --sentences 1500 --repeats 3

On a loaded machine, compare two versions of the code by running both at the same time, each
with its own PYTHONPATH: each run's ratio is taken side by side, and both see the same load.

Prints ms per step and the ratio; writes benchmarks/results/kd_step_time.json (the default
student config) or kd_step_time-<config name>.json.
"""
import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from spacy.training import Example
from spacy.util import load_config, load_model_from_config, minibatch

from spacy_skd.training.conllu import create_conllu_reader
from spacy_skd.training.readers import create_conll_ner_reader

ROOT = Path(__file__).resolve().parent.parent


def build(config_path: Path, teacher: Path, cache_dir: Path, objective: str, with_kd: bool):
    config = load_config(config_path, overrides={"paths.teacher": str(teacher), "paths.cache": str(cache_dir),
                                                 "components.kd.objective": objective})
    config["components"]["kd"]["kd_weight"] = 0.5  # a fixed lambda: both loss terms every step
    if not with_kd:
        config["nlp"]["pipeline"] = [p for p in config["nlp"]["pipeline"] if p != "kd"]
        del config["components"]["kd"]
        del config["initialize"]["components"]["kd"]
    return load_model_from_config(config, auto_fill=True, validate=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", type=Path, required=True)
    parser.add_argument("--student-config", type=Path, default=ROOT / "configs" / "student_crf_kd.cfg")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "conll2003_en" / "train.conll")
    parser.add_argument("--objective", default="structural")
    parser.add_argument("--sentences", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=64, help="sentences per step")
    parser.add_argument("--repeats", type=int, default=1,
                        help="passes over the batches; on a loaded machine more steps steady the medians")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as cache_dir:
        nlp_plain = build(args.student_config, args.teacher, Path(cache_dir), args.objective, with_kd=False)
        nlp_kd = build(args.student_config, args.teacher, Path(cache_dir), args.objective, with_kd=True)
        if args.data.name.endswith((".conllu", ".conllu.gz")):
            reader = create_conllu_reader(args.data, limit=args.sentences)
        else:
            reader = create_conll_ner_reader(args.data, scheme="IOB1", limit=args.sentences)
        examples = list(reader(nlp_kd))
        opt_plain = nlp_plain.initialize(lambda: examples)
        started = time.perf_counter()
        opt_kd = nlp_kd.initialize(lambda: examples)  # includes the teacher pass into the cache
        teacher_pass = time.perf_counter() - started
        batches = list(minibatch(examples, size=args.batch_size))
        plain, kd = [], []
        for batch in batches * max(args.repeats, 1):
            for nlp, opt, times in ((nlp_plain, opt_plain, plain), (nlp_kd, opt_kd, kd)):
                copied = [Example(eg.predicted.copy(), eg.reference) for eg in batch]  # as spacy train does
                start = time.perf_counter()
                nlp.update(copied, sgd=opt, drop=0.1)
                times.append(time.perf_counter() - start)
    ms_plain, ms_kd = 1000 * statistics.median(plain), 1000 * statistics.median(kd)
    # one ratio per pass over the batches: their spread shows how much the machine's load moved it
    per_pass = [statistics.median(kd[i : i + len(batches)]) / statistics.median(plain[i : i + len(batches)])
                for i in range(0, len(plain), len(batches))]
    result = {"student_config": args.student_config.name, "data": args.data.name,
              "objective": args.objective, "sentences": len(examples), "steps": len(plain),
              "batch_size": args.batch_size, "teacher_pass_s": teacher_pass,
              "ms_per_step_plain": ms_plain, "ms_per_step_kd": ms_kd, "ratio": ms_kd / ms_plain,
              "ratio_per_pass": per_pass}
    print(f"student step, {args.batch_size} sentences, median of {len(plain)} interleaved steps "
          f"(teacher pass over {len(examples)} sentences before training: {teacher_pass:.1f} s)")
    print(f"  without KD: {ms_plain:7.1f} ms/step")
    print(f"  {args.objective} KD from warm cache: {ms_kd:7.1f} ms/step")
    print(f"  ratio: {ms_kd / ms_plain:.2f}x" + (f" (per pass: {', '.join(f'{r:.2f}' for r in per_pass)})"
                                                  if len(per_pass) > 1 else ""))
    default = args.student_config.resolve() == (ROOT / "configs" / "student_crf_kd.cfg").resolve()
    out = ROOT / "benchmarks" / "results" / ("kd_step_time.json" if default else
                                             f"kd_step_time-{args.student_config.stem}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
