#!/usr/bin/env python
"""Place the project's datasets in assets/: from a local data folder first, else from their URLs.

`project.yml` lists every public file a workflow reads as an asset with a pinned `url` and its MD5
`checksum` (`spacy project assets` downloads them), and under `derived` the files made from
assets (the gzipped EWT train file, the Reuters-21578 paragraphs). For each asset of the chosen
groups this script:

1. keeps `assets/<folder>/<file>` when its checksum is right;
2. else copies `<data>/<folder>/<file>` from the local data folder (`--data`, default
   `../shared/data`), so machines without internet keep working;
3. else downloads the asset's `url`.

A derived file is taken from the local folder in the same way, and otherwise made from its
sources (fetched as above) and verified. A `.gz` file is verified on its decompressed content, so
a derived file need not repeat the compressor's bytes. A missing source or a checksum mismatch is
an error (exit status 1).

    python scripts/fetch_assets.py --data ../shared/data --only conll2003_en
    python scripts/fetch_assets.py --data ../shared/data --extra      # also the `extra: true` assets
"""
import argparse
import gzip
import hashlib
import html
import re
import shutil
import sys
import urllib.request
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence

ASSETS_DIR = "assets"


def md5(path: Path) -> str:
    """MD5 of a file's bytes, or of its decompressed content for a `.gz` file."""
    digest = hashlib.md5()
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_project(project_dir: Path) -> Dict:
    """project.yml as weasel loads it (validated, variables substituted)."""
    from weasel.util import load_project_config

    return load_project_config(project_dir)


def group_of(dest: str) -> str:
    parts = Path(dest).parts
    return parts[1] if len(parts) > 1 else ""


def source_of(dest: str, data_dir: Path) -> Optional[Path]:
    """`<data>/<rel>` for a file whose dest is `assets/<rel>`; None for other files."""
    parts = Path(dest).parts
    if len(parts) < 2 or parts[0] != ASSETS_DIR:
        return None
    return data_dir.joinpath(*parts[1:])


def download(url: str, dest: Path) -> None:
    with urllib.request.urlopen(url, timeout=60) as response, open(dest, "wb") as f:
        shutil.copyfileobj(response, f)


# --- derivations: name -> function(sources, dest) ------------------------------------------------


def derive_gzip(sources: Sequence[Path], dest: Path) -> None:
    """The one source gzipped (no name or time in the header)."""
    (source,) = sources
    with open(source, "rb") as f_in, gzip.GzipFile(dest, "wb", mtime=0) as f_out:
        shutil.copyfileobj(f_in, f_out)


def reuters_paragraphs(texts: Iterable[str]) -> List[str]:
    """Paragraphs of the Reuters-21578 article bodies in SGML `texts`, one string each.

    Entities are decoded and the "Reuter" sign-off dropped; a line indented by two or more spaces
    starts a paragraph, and wrapped lines are joined. Kept: paragraphs of at least 6 tokens that
    end like a sentence, are mostly letters, and were not seen before (tables and datelines go).
    """
    seen = set()
    kept = []
    for text in texts:
        for body in re.findall(r"<BODY>(.*?)</BODY>", text, re.S):
            body = re.sub(r"\s*\bReuter\s*\x03?\s*$", "", html.unescape(body))
            paragraphs, lines = [], []
            for line in body.split("\n"):
                if line.startswith("  ") and lines:
                    paragraphs.append(" ".join(lines))
                    lines = []
                if line.strip():
                    lines.append(line.strip())
            if lines:
                paragraphs.append(" ".join(lines))
            for paragraph in paragraphs:
                paragraph = re.sub(" +", " ", paragraph).strip()
                letters = sum(c.isalpha() for c in paragraph)
                if (len(paragraph.split()) < 6 or not re.search(r"[.!?)\"']$", paragraph)
                        or letters < 0.5 * len(paragraph.replace(" ", "")) or paragraph in seen):
                    continue
                seen.add(paragraph)
                kept.append(paragraph)
    return kept


def derive_reuters_paragraphs(sources: Sequence[Path], dest: Path) -> None:
    texts = (Path(s).read_bytes().decode("latin-1") for s in sorted(sources))
    with gzip.GzipFile(dest, "wb", mtime=0) as f:
        f.write("".join(p + "\n" for p in reuters_paragraphs(texts)).encode("utf8"))


DERIVATIONS = {"gzip": derive_gzip, "reuters_paragraphs": derive_reuters_paragraphs}


# --- placing files -------------------------------------------------------------------------------


def place(project_dir: Path, entry: Dict, data_dir: Path, make=None) -> Optional[str]:
    """Put one asset or derived file in place; returns None on success, else what went wrong.
    `make(dest)` builds the file when neither a good copy nor the local folder has it."""
    dest_rel = entry["dest"]
    dest = project_dir / dest_rel
    checksum = entry.get("checksum")
    if dest.is_file() and (not checksum or md5(dest) == checksum):
        print(f"ok       {dest_rel}")
        return None
    dest.parent.mkdir(parents=True, exist_ok=True)
    local = source_of(dest_rel, data_dir)
    local_checksum = entry.get("local_checksum", checksum)
    if local is not None and local.is_file():
        shutil.copyfile(local, dest)
        if local_checksum and md5(dest) != local_checksum:
            return f"BAD MD5  {dest_rel}: copied from {local}, md5 {md5(dest)} != {local_checksum}"
        print(f"copied   {dest_rel} <- {local}")
        return None
    if make is None and not entry.get("url"):
        return f"MISSING  {dest_rel}: {local} not found and no url (pass --data, or place the file yourself)"
    try:
        if make is not None:
            make(dest)
            how = f"derived  {dest_rel} ({entry['derive']})"
        else:
            download(entry["url"], dest)
            how = f"fetched  {dest_rel} <- {entry['url']}"
    except Exception as err:  # a network or derivation failure: report it with the others
        dest.unlink(missing_ok=True)
        return f"FAILED   {dest_rel}: {err} (pass --data with a local copy)"
    if checksum and md5(dest) != checksum:
        found = md5(dest)
        dest.unlink()  # a wrong download never stands in for the asset
        return f"BAD MD5  {dest_rel}: {how.split(maxsplit=1)[0]} file has md5 {found} != {checksum}; removed"
    print(how)
    return None


def fetch(project_dir: Path, data_dir: Path, only: Optional[Sequence[str]] = None, extra: bool = False) -> int:
    """Place and verify the assets and derived files of the chosen groups; returns the number of
    failures. Sources of a derived file are fetched only when the file has to be made."""
    config = load_project(project_dir)
    assets = {a["dest"]: a for a in config.get("assets", [])}
    wanted = lambda e: (group_of(e["dest"]) in only) if only else (extra or not e.get("extra", False))  # noqa: E731
    errors: List[str] = []
    only_sources = set()
    for entry in config.get("derived", []):
        only_sources.update(entry["from"])
        if not wanted(entry):
            continue

        def make(dest: Path, entry=entry) -> None:
            failed = [err for src in entry["from"] if (err := place(project_dir, assets[src], data_dir))]
            if failed:
                raise RuntimeError("; ".join(failed))
            DERIVATIONS[entry["derive"]]([project_dir / src for src in entry["from"]], dest)

        errors.append(place(project_dir, entry, data_dir, make=make))
    for dest_rel, asset in assets.items():
        if wanted(asset) and dest_rel not in only_sources:
            errors.append(place(project_dir, asset, data_dir))
    errors = [e for e in errors if e]
    for error in errors:
        print(error)
    return len(errors)


def main(argv: Sequence[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"),
                        help="local folder holding the datasets, tried first (default ../shared/data)")
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
