#!/usr/bin/env python
"""Take the project's assets from a local data folder and verify their MD5 checksums.

The machines these experiments run on have no internet, so `project.yml` lists every dataset as
a "place it yourself" asset: a `dest` under `assets/`, the MD5 `checksum`, and the public source
in the description (`spacy project assets` then only checks what is there). This script places
them: the asset `assets/<folder>/<file>` is copied from `<data>/<folder>/<file>` (default data
folder: `../shared/data`), unless a file with the right checksum is already there, and every
copy is verified. A missing source or a checksum mismatch is an error (exit status 1).

    python scripts/fetch_assets.py --data ../shared/data --only conll2003_en
    python scripts/fetch_assets.py --data ../shared/data --extra      # also the `extra: true` assets
"""
import argparse
import hashlib
import shutil
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

ASSETS_DIR = "assets"


def md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_assets(project_dir: Path) -> List[Dict]:
    """The `assets` of project.yml (validated by weasel)."""
    from weasel.util import load_project_config

    return list(load_project_config(project_dir).get("assets", []))


def source_of(asset: Dict, data_dir: Path) -> Optional[Path]:
    """`<data>/<rel>` for an asset whose dest is `assets/<rel>`; None for other assets."""
    parts = Path(asset["dest"]).parts
    if len(parts) < 2 or parts[0] != ASSETS_DIR:
        return None
    return data_dir.joinpath(*parts[1:])


def fetch(project_dir: Path, data_dir: Path, only: Optional[Sequence[str]] = None, extra: bool = False) -> int:
    """Place and verify the assets; returns the number of failures."""
    failures = 0
    for asset in load_assets(project_dir):
        dest_rel = asset["dest"]
        group = Path(dest_rel).parts[1] if len(Path(dest_rel).parts) > 1 else ""
        if only and group not in only:
            continue
        if asset.get("extra", False) and not extra and not only:
            continue
        dest = project_dir / dest_rel
        checksum = asset.get("checksum")
        if dest.is_file() and (not checksum or md5(dest) == checksum):
            print(f"ok       {dest_rel}")
            continue
        source = source_of(asset, data_dir)
        if source is None:
            print(f"SKIPPED  {dest_rel}: not under {ASSETS_DIR}/, place it yourself")
            continue
        if not source.is_file():
            print(f"MISSING  {dest_rel}: {source} not found (pass --data, or place the file yourself)")
            failures += 1
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest)
        if checksum and md5(dest) != checksum:
            print(f"BAD MD5  {dest_rel}: copied from {source}, md5 {md5(dest)} != {checksum}")
            failures += 1
            continue
        print(f"copied   {dest_rel} <- {source}")
    return failures


def main(argv: Sequence[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"),
                        help="local folder holding the datasets (default ../shared/data)")
    parser.add_argument("--only", default=None,
                        help="comma-separated dataset folders, e.g. conll2003_en,conll2002_es (extra ones included)")
    parser.add_argument("--extra", action="store_true", help="also the assets marked `extra: true`")
    parser.add_argument("--project", type=Path, default=Path("."), help="project folder (default: .)")
    args = parser.parse_args(argv)
    only = [g.strip() for g in args.only.split(",") if g.strip()] if args.only else None
    failures = fetch(args.project, args.data, only=only, extra=args.extra)
    if failures:
        print(f"{failures} asset(s) missing or with a wrong checksum", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
