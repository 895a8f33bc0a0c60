"""The prompts a person gives Segment Anything, checked at the boundary: points (x, y, 1 positive |
0 negative) and an optional box, in the image's own pixels, as the browser or the CLI sends them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from core.errors import InvalidInput

MAX_POINTS = 64


@dataclass(frozen=True)
class Prompts:
    """What a person gave SAM: points (x, y, 1 positive | 0 negative) and an optional box, in the
    image's own pixels."""

    points: tuple[tuple[float, float, int], ...] = ()
    box: tuple[float, float, float, float] | None = None

    @classmethod
    def parse(cls, data: object, *, width: int, height: int) -> Prompts:
        """Validate what the browser or CLI sent: {"points": [[x, y, 1|0], ...], "box": [x0, y0, x1, y1]}."""
        data = {} if data is None else data
        if not isinstance(data, dict):
            raise InvalidInput(f"prompts: give {{'points': [[x, y, 1|0], ...], 'box': [x0, y0, x1, y1]}}, not {data!r}")
        raw_points = data.get("points") or []
        if not isinstance(raw_points, list) or len(raw_points) > MAX_POINTS:
            raise InvalidInput(f"points: give a list of at most {MAX_POINTS} [x, y, 1|0] points")
        points = tuple(_point(p, width, height) for p in raw_points)
        box = _box(data.get("box"), width, height)
        if not points and box is None:
            raise InvalidInput("points: click the image (or draw a box) first")
        return cls(points=points, box=box)

    def as_json(self) -> dict[str, Any]:
        return {"points": [list(p) for p in self.points], "box": list(self.box) if self.box else None}


def _point(value: Any, width: int, height: int) -> tuple[float, float, int]:
    if not isinstance(value, list | tuple):
        raise InvalidInput(f"points: {value!r} is not [x, y, 1|0]")
    try:
        x, y, positive = float(value[0]), float(value[1]), int(value[2]) if len(value) > 2 else 1
    except (TypeError, ValueError, IndexError) as exc:
        raise InvalidInput(f"points: {value!r} is not [x, y, 1|0]") from exc
    if not (0 <= x <= width and 0 <= y <= height) or positive not in (0, 1):
        raise InvalidInput(f"points: {value!r} is outside the {width}x{height} image or its label is not 1/0")
    return (x, y, positive)


def _box(value: Any, width: int, height: int) -> tuple[float, float, float, float] | None:
    if value is None:
        return None
    try:
        x0, y0, x1, y1 = (float(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"box: {value!r} is not [x0, y0, x1, y1]") from exc
    if not np.isfinite([x0, y0, x1, y1]).all():
        raise InvalidInput(f"box: {value!r} has a number that is not finite")
    x0, x1 = sorted((max(0.0, min(x0, width)), max(0.0, min(x1, width))))
    y0, y1 = sorted((max(0.0, min(y0, height)), max(0.0, min(y1, height))))
    if x1 - x0 < 1 or y1 - y0 < 1:
        raise InvalidInput(f"box: {value!r} is empty inside the {width}x{height} image")
    return (x0, y0, x1, y1)
