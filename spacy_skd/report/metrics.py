"""Read the metrics folder of one run: `teacher.json` and `<objective>-seed<k>.json`, each the
JSON that `spacy evaluate --output` (or `spacy skd evaluate-slots`) writes."""
import json
import math
import re
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from ..errors import Errors

RUN_FILE = re.compile(r"^(?P<objective>[A-Za-z0-9_]+)-seed(?P<seed>\d+)\.json$")
TEACHER_FILE = "teacher.json"
# objectives in table order, and the names the paper gives them
ORDER = ["none", "top1", "token", "posterior", "structural"]
OBJECTIVE_NAMES = {"none": "w/o KD", "top1": "Top-1", "token": "Token KD", "posterior": "Pos. KD",
                   "structural": "Struct. KD"}
Score = Tuple[float, Optional[float]]  # (score x 100, words per second)


def read_json(path: Path) -> Dict:
    """A JSON object from `path`; E311 when it is not one (a half-written or foreign file)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf8"))
    except (OSError, ValueError) as err:
        raise ValueError(Errors.E311.format(path=path, err=err)) from err
    if not isinstance(data, dict):
        raise ValueError(Errors.E311.format(path=path, err=f"it holds a {type(data).__name__}, not an object"))
    return data


def read_score(path: Path, metric: str = "ents_f") -> Optional[Score]:
    """(score x 100, words per second) of one evaluate JSON; None when the file is absent or the
    score is null (nothing to score). A corrupt file (E311) or one without `metric` (E312) raises:
    reported as missing, it would hide a wrong --metric or a broken run."""
    path = Path(path)
    if not path.is_file():
        return None
    data = read_json(path)
    if metric not in data:
        raise ValueError(Errors.E312.format(path=path, metric=metric, keys=", ".join(sorted(data)) or "none"))
    value = data[metric]
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    speed = data.get("speed", data.get("words_per_second"))  # spacy evaluate | skd evaluate-slots
    return float(value) * 100.0, float(speed) if isinstance(speed, (int, float)) else None


def order_objectives(objectives: Sequence[str], order: Sequence[str] = ORDER) -> List[str]:
    """Known objectives in table order, then the others alphabetically."""
    return sorted(objectives, key=lambda o: (order.index(o) if o in order else len(order), o))


def collect(metrics_dir: Path, objectives: Optional[Sequence[str]] = None,
            seeds: Optional[Sequence[int]] = None, metric: str = "ents_f") -> Dict:
    """Scores found in `metrics_dir`, keyed by objective then seed; runs not (yet) there are None,
    and so is everything of a folder that does not exist (a case not run).

    objectives, seeds: the runs expected; None takes those present in the folder.
    RETURNS (Dict): {"teacher": Score | None, "runs": {objective: {seed: Score | None}},
        "objectives": [...], "seeds": [...]}.
    """
    found: Dict[str, Dict[int, Path]] = {}
    if metrics_dir.is_dir():
        for path in sorted(metrics_dir.iterdir()):
            m = RUN_FILE.match(path.name)
            if m:
                found.setdefault(m.group("objective"), {})[int(m.group("seed"))] = path
    if objectives is None:
        objectives = order_objectives(found)
    if seeds is None:
        seeds = sorted({s for runs in found.values() for s in runs})
    runs = {obj: {seed: (read_score(found[obj][seed], metric) if seed in found.get(obj, {}) else None)
                  for seed in seeds}
            for obj in objectives}
    return {"teacher": read_score(metrics_dir / TEACHER_FILE, metric), "runs": runs,
            "objectives": list(objectives), "seeds": list(seeds)}


def require_folder(path: Path) -> Path:
    """`path` if it is a folder; E310 otherwise (a typo would report every run as missing)."""
    if not Path(path).is_dir():
        raise ValueError(Errors.E310.format(path=path))
    return Path(path)


def mean_std(values: Sequence[float]) -> Tuple[float, Optional[float]]:
    """Mean and sample standard deviation (n - 1); the deviation is None for fewer than 2 values."""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
