#!/usr/bin/env python
"""Run this Python with the given arguments and the Hugging Face hub switched off.

    python scripts/offline.py -m spacy train configs/teacher_crf_minilm.cfg ...

Sets HF_HUB_OFFLINE=1 and TRANSFORMERS_OFFLINE=1, so a transformer is only ever loaded from a
local path. project.yml uses this instead of an `env HF_HUB_OFFLINE=1 python ...` prefix: weasel
replaces a *leading* `python` by the interpreter it runs under, which keeps commands in the
project's virtual environment even when it is not activated (weasel's `env` section only reads
environment variables into `${env.*}`; it cannot set them).
"""
import os
import subprocess
import sys

OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def offline_env() -> dict:
    env = os.environ.copy()
    env.update(OFFLINE_ENV)
    return env


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.exit(subprocess.call([sys.executable, *sys.argv[1:]], env=offline_env()))
