"""Every reference to the algorithm and design notes points at a section that exists in docs/."""
import re

from tests.conftest import REPO_ROOT

SOURCES = [p for folder in ("spacy_skd", "tests", "benchmarks", "scripts", "configs")
           for p in sorted((REPO_ROOT / folder).rglob("*")) if p.suffix in (".py", ".cfg")] + [REPO_ROOT / "README.md"]
REFERENCE = re.compile(r"docs/(algorithms|design)\.md((?: §[0-9]+(?:\.[0-9]+)?,?)+)")


def _sections(name: str) -> set:
    text = (REPO_ROOT / "docs" / f"{name}.md").read_text(encoding="utf8")
    return set(re.findall(r"^#+ §([0-9]+(?:\.[0-9]+)?) ", text, flags=re.M))


def test_doc_references_name_existing_sections():
    sections = {name: _sections(name) for name in ("algorithms", "design")}
    missing, found = [], 0
    for path in SOURCES:
        if path.name == "test_docs.py":
            continue
        text = path.read_text(encoding="utf8")
        for name, refs in REFERENCE.findall(text):
            for section in re.findall(r"§([0-9]+(?:\.[0-9]+)?)", refs):
                found += 1
                if section not in sections[name]:
                    missing.append(f"{path.relative_to(REPO_ROOT)}: docs/{name}.md §{section}")
        # a reference must name the file in the repository, not a copy elsewhere
        for match in re.finditer(r"(?<![/\w])(algorithms|DESIGN)\.md", text):
            missing.append(f"{path.relative_to(REPO_ROOT)}: bare {match.group(0)}")
    assert found > 10 and missing == []
