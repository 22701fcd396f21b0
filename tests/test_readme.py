"""The README's Python examples run as written (it is the user's door: keep it true)."""

import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_readme_has_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples may write files
    exec(compile(BLOCKS[index], f"README.md block {index}", "exec"), {"__name__": "__readme__"})
    assert capsys.readouterr().out  # each example prints something a reader can compare


def test_readme_quickstart_commands():
    text = README.read_text(encoding="utf-8")
    assert 'python -m pip install -e ".[dev]"' in text
    assert "python -m pytest" in text


def test_readme_is_a_door_not_a_manual():
    """At most 200 lines: the depth is in docs/, the reading order in docs/README.md alone."""
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200
    assert "## Reading order" not in text and "docs/README.md#reading-order-of-the-package" in text
