"""The held-out confusion matrix is drawn whatever the class names: matplotlib's mathtext does not
get to parse them (a name with `$` raised ParseSyntaxException after the whole training run)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.usecases.training.evaluate import confusion_picture


def test_class_names_with_dollars_are_drawn_as_text(tmp_path: Path) -> None:
    names = ["x$^$", "$\\frac$", "$5 and $6", "<b>cat</b>"]
    confusion = np.array([[2, 0, 1, 0], [0, 1, 0, 0], [0, 0, 3, 0], [1, 0, 0, 2]])
    path = confusion_picture(confusion, names, tmp_path / "cm.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
