"""README.md's catalogues are generated from the registries and must be current."""

from pathlib import Path

from fedpoison.docs import render

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_catalogues_match_registries():
    text = README.read_text(encoding="utf-8")
    assert render(text) == text, "README catalogues are stale: run `python -m fedpoison.docs`"


def test_readme_quick_start_has_the_two_commands():
    text = README.read_text(encoding="utf-8")
    assert 'pip install -e ".[dev]" && fedpoison' in text
    assert "\npytest\n" in text
