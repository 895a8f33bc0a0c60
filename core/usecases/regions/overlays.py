"""All instances of an image drawn into one PNG, remembered: the overlay is shown with every click,
and drawing 100 instances costs ~150 ms (core.segment.view.instances_png). Masks never change, so a
drawing is keyed by the image and its set of live instances (an add, delete or undo makes a new key)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from core.segment.view import instances_png

OVERLAY_CACHE = 64          # images whose instance overlay is remembered


class OverlayMemo:
    def __init__(self, *, max_side: int, size: int = OVERLAY_CACHE) -> None:
        self.max_side, self.size = max_side, size
        self._drawn: OrderedDict[tuple[int, tuple[int, ...]], bytes | None] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, image_id: int, instance_ids: Sequence[int], rles: Sequence[dict[str, Any]]) -> bytes | None:
        """The overlay of these instances (ids and masks in drawing order)."""
        key = (int(image_id), tuple(int(i) for i in instance_ids))
        with self._lock:
            if key in self._drawn:
                self._drawn.move_to_end(key)
                return self._drawn[key]
        png = instances_png(rles, max_side=self.max_side)
        with self._lock:
            self._drawn[key] = png
            while len(self._drawn) > self.size:
                self._drawn.popitem(last=False)
        return png
