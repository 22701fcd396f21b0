"""The docs' Python examples run as written, and every relative link of README.md and docs/ resolves."""

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [ROOT / "README.md", *DOCS]
BLOCKS = [(page.name, i, block)
          for page in DOCS
          for i, block in enumerate(re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.S))]
NOT_YET: set = set()  # files a link may name before they exist (none)
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _relative_links(page):
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)  # links in code are not links
    for target in LINK.findall(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # http(s), mailto, ... and anchors within the page
        yield target.split("#", 1)[0]


def test_docs_exist():
    assert (ROOT / "docs" / "README.md") in DOCS
    assert BLOCKS


@pytest.mark.parametrize("page, index, block", BLOCKS, ids=[f"{p}-{i}" for p, i, _ in BLOCKS])
def test_docs_example_runs(page, index, block, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples may write files
    exec(compile(block, f"docs/{page} block {index}", "exec"), {"__name__": "__docs__"})
    assert capsys.readouterr().out  # each example prints something a reader can compare


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_relative_links_resolve(page):
    dead = [t for t in _relative_links(page)
            if (page.parent / t).resolve() not in NOT_YET and not (page.parent / t).resolve().is_file()]
    assert not dead, f"{page.relative_to(ROOT)}: links to missing files: {dead}"


def test_link_check_sees_links():
    assert "docs/layers.md" in list(_relative_links(ROOT / "README.md"))


def test_no_committed_file_names_a_path_of_the_machine_that_made_it():
    """Reports and docs are read on other machines: a folder of this one (a data path, a checkout)
    would be wrong there and says more than it should. Tests and code name temporary folders
    through tmp_path, never by an absolute path."""
    import subprocess

    root = pathlib.Path(__file__).resolve().parent.parent
    files = subprocess.run(["git", "ls-files"], cwd=root, capture_output=True, text=True).stdout.split()
    if not files:
        pytest.skip("not a git checkout")
    pattern = re.compile(r"(^|[^\w.~/])/(work|home|root|Users|tmp|mnt|opt|var/folders)/")
    found = []
    for name in files:
        path = root / name
        if path.suffix in (".png", ".gz", ".npz", ".npy") or not path.is_file():
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if pattern.search(line):
                found.append(f"{name}:{number}: {line.strip()[:100]}")
    assert not found, "\n".join(found)
