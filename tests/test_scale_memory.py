"""Memory is bounded: a 200,000-image project (D = 512, bench/ui_latency.py's own builder) opens and
serves decisions in a process whose address space is capped (RLIMIT_AS) at what it had after its
imports plus BUDGET_MB, a cap the previous design (every embedding decoded from SQL blobs, joined
into one buffer and converted) exceeds: the same child with the vector file turned off must fail.

Run as a script, this file is the child: `python tests/test_scale_memory.py DB MODE` with MODE
`file` (core.store.vectors) or `sql` (the previous read path)."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
IMAGES = 200_000
BUDGET_MB = 650  # measured: the file path serves within 550 MB, the SQL path fails at 700 MB (passes at 850)
DECISIONS = 5


def _vm_size_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmSize in /proc/self/status")


def child(db: str, mode: str) -> None:
    sys.path.insert(0, str(REPO))
    import scipy.sparse  # noqa: F401  (imported by the ranking on first use: not part of the budget)
    import sklearn.linear_model  # noqa: F401

    from core.config import Settings
    from core.service import Service
    from core.store import vectors

    if mode == "sql":
        vectors.folder_of = lambda session: None  # type: ignore[assignment]
    truth = {int(k): v for k, v in json.loads(Path(db + ".truth.json").read_text()).items()}
    service = Service(Settings(db=db, media_dir=Path(db).parent / "media", user="t"), background_refit=True)
    limit = int((_vm_size_mb() + BUDGET_MB) * 2**20)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    current = service.labeling.next_items("bench", n=1)[0].image_id
    for _ in range(DECISIONS):
        decided = service.labeling.decide("bench", image_id=current, action="correct", label=truth[current], next_n=1)
        current = decided.next[0].image_id
    assert service.wait_for_refits(120)
    print(json.dumps({"served": DECISIONS, "images": service.labeling.state("bench").image_ids.size}))


def _run(db: Path, mode: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, __file__, str(db), mode], capture_output=True, text=True, timeout=600,
                          check=False, cwd=REPO)


@pytest.mark.slow
def test_200k_project_opens_and_serves_under_a_memory_cap(tmp_path: Path) -> None:
    from PIL import Image as PILImage

    from bench.ui_latency import build_project
    from core.config import Settings
    from core.service import Service

    db = tmp_path / "scale.sqlite"
    service = Service(Settings(db=str(db), media_dir=tmp_path / "media", user="t"))
    picture = tmp_path / "picture.jpg"
    PILImage.new("RGB", (64, 48), (120, 160, 200)).save(picture)
    truth = build_project(service, n=IMAGES, picture=picture, rng=np.random.default_rng(0))
    service.close()
    Path(str(db) + ".truth.json").write_text(json.dumps(truth))
    old = _run(db, "sql")
    assert old.returncode != 0 and "MemoryError" in old.stderr, old.stderr[-2000:]
    new = _run(db, "file")
    assert new.returncode == 0, new.stderr[-3000:]
    assert json.loads(new.stdout.strip().splitlines()[-1]) == {"served": DECISIONS, "images": IMAGES}


if __name__ == "__main__":
    child(sys.argv[1], sys.argv[2])
