"""Import of N files from a zip against N loose files, through core.io (walk + sniff + stream + decode).

    .venv/bin/python bench/import_speed.py [--count 10000] [--old 2000]

Issue 12 asked for a 10,000-entry zip within 2x the time of 10,000 loose files. Both sides run the
same path the importer takes (iter_candidates, then admit per candidate: first bytes sniffed, the
rest hashed, the image validated; zip entries also written to the media folder). `--old` times the
previous per-entry reader (a fresh zipfile.ZipFile per entry, which re-parsed the whole central
directory each time) on that many entries of the same archive, for comparison.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.io.intake import admit  # noqa: E402
from core.io.sources import Candidate, iter_candidates  # noqa: E402


def _images(count: int) -> list[bytes]:
    rng = np.random.default_rng(0)
    out = []
    for _ in range(count):
        from io import BytesIO

        buffer = BytesIO()
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(buffer, "PNG")
        out.append(buffer.getvalue())
    return out


def _build(root: Path, images: list[bytes]) -> tuple[Path, Path]:
    loose = root / "loose"
    archive = root / "photos.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as opened:
        for index, data in enumerate(images):
            name = f"c{index % 10}/{index:05d}.png"
            (loose / name).parent.mkdir(parents=True, exist_ok=True)
            (loose / name).write_bytes(data)
            opened.writestr(name, data)
    return loose, archive


def _import(path: Path, media: Path) -> tuple[float, int]:
    start = time.perf_counter()
    admitted = 0
    for item in iter_candidates([path]):
        if isinstance(item, Candidate):
            admit(item, media_dir=media)
            admitted += 1
    return time.perf_counter() - start, admitted


def _old_reads(archive: Path, count: int) -> float:
    start = time.perf_counter()
    with zipfile.ZipFile(archive) as listing:
        names = [info.filename for info in listing.infolist()][:count]
    for name in names:
        with zipfile.ZipFile(archive) as opened:
            opened.read(name)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--old", type=int, default=2_000, help="entries read the old way (0: skip)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        loose, archive = _build(Path(tmp), _images(args.count))
        loose_s, loose_n = _import(loose, Path(tmp) / "media-loose")
        zip_s, zip_n = _import(archive, Path(tmp) / "media-zip")
        print(f"{'source':<34}{'files':>8}{'seconds':>10}{'files/s':>10}")
        print(f"{'loose files':<34}{loose_n:>8}{loose_s:>10.2f}{loose_n / loose_s:>10.0f}")
        print(f"{'zip entries':<34}{zip_n:>8}{zip_s:>10.2f}{zip_n / zip_s:>10.0f}")
        print(f"zip / loose time ratio: {zip_s / loose_s:.2f} (target < 2)")
        if args.old:
            old_s = _old_reads(archive, args.old)
            print(f"old reader, {args.old} of {args.count} entries read only: {old_s:.2f} s "
                  f"(~{old_s / args.old * args.count:.0f} s for all; grows with the archive: quadratic)")  # fmt: skip


if __name__ == "__main__":
    main()
