"""``docs/api.md`` runs as written: its examples are doctests, run from the repository."""

from __future__ import annotations

import doctest
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_library_page_runs(monkeypatch):
    monkeypatch.chdir(ROOT)  # its paths are the repository's
    failures, tried = doctest.testfile(
        str(ROOT / "docs" / "api.md"), module_relative=False, optionflags=doctest.ELLIPSIS
    )
    assert tried > 10
    assert failures == 0


def test_every_public_name_resolves():
    import placer

    assert sorted(placer.__all__) == sorted(["__version__", *placer._PUBLIC])
    for name in placer.__all__:
        assert getattr(placer, name) is not None
