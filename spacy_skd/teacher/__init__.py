"""The teacher layer: everything about a KD teacher that is not a spaCy component of its own.

- `protocol`: what a teacher (and a student) component offers KD (`KDTeacher`, `KDStudent`);
- `load`: one function that loads and checks a teacher pipeline and component;
- `runner`: running a loaded teacher on batches of words (`TeacherRunner`, `run_teacher`);
- `caches`: the names and opening of the on-disk caches of its potentials and targets;
- `target_maker`: `TargetMaker`, cached potentials -> `KDTargets` for one student.

`pipes/structural_kd.py` orchestrates these during training; the offline pass (`skd annotate`,
`merge-cache`, in `training/`) calls the same public API. Nothing here imports `pipes/`.
"""
