"""`spacy skd annotate --store targets`: one student's KD targets instead of the teacher's potentials.

When the student is known, a shard can hold exactly what it reads (`benchmarks/cache_bytes.py`:
a span-NER teacher's O(n^2 R) potentials are ~4.7x the bytes of a MaxEnt BIOES student's unary
targets). The targets are made by the `structural_kd` component of the student's own training
config (its public `initialize`, through the same `TargetMaker`), so they are the entries its
training run would store, byte for byte.
"""
from pathlib import Path
from typing import Dict, Iterator, Optional, Sequence, Tuple, Union

import spacy
from spacy.tokens import Doc
from spacy.training import Example

from ..errors import Errors
from ..pipes.structural_kd import StructuralKD
from ..teacher.caches import targets_cache
from ..teacher.protocol import Words
from ..teacher.runner import TeacherRunner
from ..teacher.target_maker import PARSER_KINDS, TargetMaker
from .cache import TeacherCache
from .texts import hash_input


class StudentTargets:
    """The targets of one student for a teacher (`--store targets`), made by the `structural_kd`
    component of the student's training config: the entries its initialize would store in its
    targets namespace, with the teacher's potentials kept in memory only.

    config_path (str | Path): a student training config with a `structural_kd` component.
    runner (TeacherRunner): the loaded teacher; not a parser (its student's labels come from gold trees).
    overrides (Optional[Dict[str, object]]): config overrides, dotted keys as for `spacy train`
        (e.g. {"components.kd.temperature": 1.0}).
    """

    def __init__(self, config_path: Union[str, Path], runner: TeacherRunner,
                 overrides: Optional[Dict[str, object]] = None) -> None:
        path = Path(config_path)
        if not path.is_file():
            raise ValueError(Errors.E247.format(path=path))
        if runner.kind in PARSER_KINDS:
            raise ValueError(Errors.E244.format(component=runner.component, path=runner.path, kind=runner.kind))
        self.overrides = dict(overrides or {})
        config = spacy.util.load_config(path, overrides=self.overrides)
        self.nlp = spacy.util.load_model_from_config(config, auto_fill=True)
        names = [name for name, proc in self.nlp.pipeline if isinstance(proc, StructuralKD)]
        if len(names) != 1:
            raise ValueError(Errors.E243.format(path=path, found=names or "none", pipes=self.nlp.pipe_names))
        self.kd: StructuralKD = self.nlp.get_pipe(names[0])
        if self.kd.teacher_component != runner.component:
            raise ValueError(Errors.E245.format(path=path, name=names[0], config=self.kd.teacher_component,
                                                component=runner.component))
        if not self.kd.use_cache:
            raise ValueError(Errors.E246.format(path=path, name=names[0]))
        self.runner = runner
        student = self.nlp.get_pipe(self.kd.student_name)
        # the pair's checks (E166, E173, ...) now, not after the texts are read
        maker = TargetMaker(runner.pipe, student, self.kd.objective, temperature=self.kd.temperature,
                            temperature_mode=self.kd.temperature_mode)
        # the namespace structural_kd opens at initialize (checked against it in `make`)
        self.space = maker.space
        self.temperature = maker.temperature
        self.mode = maker.mode
        self.identity = {"config_name": path.name, "config_sha256": hash_input(path),
                         "overrides": self.overrides, "component": self.kd.student_name,
                         "objective": self.kd.objective, "temperature": self.kd.temperature,
                         "temperature_mode": self.kd.temperature_mode}

    def open_cache(self, directory: Union[str, Path]) -> TeacherCache:
        """This student's targets namespace in `directory`."""
        return targets_cache(directory, self.runner.fingerprint, self.space, self.temperature, self.mode)

    def make(self, directory: Union[str, Path], texts: Sequence[Words], batch_size: int) -> Tuple[int, int]:
        """Store the targets of `texts` in `directory` (`batch_size` sentences per teacher batch
        and write): the config's structural_kd initialize on unlabeled docs, which reuses stored
        targets, so a rerun after a kill computes only the rest. RETURNS (computed, reused)."""
        vocab = self.nlp.vocab

        def get_examples() -> Iterator[Example]:
            for words in texts:
                yield Example(Doc(vocab, words=list(words)), Doc(vocab, words=list(words)))

        self.kd.batch_size = batch_size
        try:
            self.kd.initialize(get_examples, nlp=self.nlp, teacher=self.runner.nlp, cache_dir=str(directory),
                               keep_potentials=False)
            stored = self.kd.targets_store
            # the manifest names this namespace: it must be the one structural_kd wrote
            assert (stored.meta["space"], stored.meta["temperature"], stored.meta["mode"]) == \
                (self.space, self.temperature, self.mode), stored.meta
            # one lookup of every text before any write: its misses are the texts computed
            return stored.stats.misses, stored.stats.hits
        finally:
            self.kd.close()  # the potentials were in memory only: free them
