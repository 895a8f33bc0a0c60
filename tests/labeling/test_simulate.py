"""The simulation benchmark: files, exact columns, the label grid, summary keys, npz errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from core.errors import InvalidInput
from core.labeling.simulate import (
    CURVE_COLUMNS,
    SimData,
    label_grid,
    labels_to_halve_errors,
    load_npz,
    run_simulation,
)


def _write_npz(path: Path, *, head: bool = True, drop: str | None = None, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    k, d, per = 4, 16, 30
    centres = rng.normal(size=(k, d))
    labels = np.repeat(np.arange(k), per)
    emb = centres[labels] + 0.9 * rng.normal(size=(labels.size, d))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    arrays: dict[str, np.ndarray] = {
        "image_embeddings": emb.astype(np.float16),
        "labels": labels.astype(np.int64),
        "class_names": np.array([f"class {i}" for i in range(k)]),
    }
    if head:
        text = centres + 0.8 * rng.normal(size=centres.shape)
        arrays["text_embeddings"] = (text / np.linalg.norm(text, axis=1, keepdims=True)).astype(np.float16)
    if drop:
        arrays.pop(drop)
    np.savez(path, **arrays)  # type: ignore[arg-type]
    return path


def _read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def test_load_npz_normalises_and_reads_fields(tmp_path: Path) -> None:
    data = load_npz(_write_npz(tmp_path / "s.npz"))
    assert data.image_embeddings.dtype == np.float32 and data.labels.dtype == np.int64
    assert np.allclose(np.linalg.norm(data.image_embeddings, axis=1), 1, atol=1e-6)
    assert data.text_embeddings is not None and data.text_embeddings.dtype == np.float32
    assert data.class_names == ["class 0", "class 1", "class 2", "class 3"]
    assert load_npz(_write_npz(tmp_path / "c.npz", head=False)).text_embeddings is None


@pytest.mark.parametrize("key", ["image_embeddings", "labels", "class_names"])
def test_missing_key_names_file_and_key(tmp_path: Path, key: str) -> None:
    path = _write_npz(tmp_path / "bad.npz", drop=key)
    with pytest.raises(InvalidInput, match=key) as info:
        load_npz(path)
    assert "bad.npz" in str(info.value)


def test_missing_file_and_bad_settings(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="nope.npz"):
        load_npz(tmp_path / "nope.npz")
    data = load_npz(_write_npz(tmp_path / "s.npz"))
    cases: list[tuple[dict[str, object], str]] = [({"strategies": ["bogus"]}, "margin"), ({"budget": 10_000}, "budget"),
                                                  ({"step": 0}, "step"), ({"seeds": 0}, "seeds")]
    for kwargs, field in cases:
        args: dict[str, object] = {"strategies": ["random"], "budget": 10, "step": 5, "seeds": 1}
        args.update(kwargs)
        with pytest.raises(InvalidInput, match=field):
            run_simulation(data, out_dir=tmp_path / "x", progress=False, **args)  # type: ignore[arg-type]


def test_label_grid() -> None:
    assert label_grid(budget=40, step=10) == [0, 10, 20, 30, 40]
    assert label_grid(budget=25, step=10) == [0, 10, 20, 25]
    assert label_grid(budget=0, step=10) == [0]


def test_labels_to_halve_errors() -> None:
    used = np.array([0, 10, 20, 30])
    acc = np.array([0.80, 0.85, 0.91, 0.95])
    assert labels_to_halve_errors(used, acc, 0.80) == 20
    assert labels_to_halve_errors(used, acc, 0.50) == 0
    assert labels_to_halve_errors(used, acc, 0.96) is None
    assert labels_to_halve_errors(used, acc, float("nan")) is None


def test_synthetic_run_writes_everything(tmp_path: Path) -> None:
    data = load_npz(_write_npz(tmp_path / "s.npz"))
    out = tmp_path / "out"
    strategies = ["random", "margin", "margin_diverse"]
    summary = run_simulation(data, strategies=strategies, budget=120, step=30, seeds=2, out_dir=out, progress=False)
    header, rows = _read_rows(out / "curve.csv")
    assert tuple(header) == CURVE_COLUMNS
    assert len(rows) == len(strategies) * 2 * 5
    for name in strategies:
        for seed in ("0", "1"):
            mine = [r for r in rows if r["strategy"] == name and r["seed"] == seed]
            assert [int(r["labels_used"]) for r in mine] == [0, 30, 60, 90, 120]
            accs = [float(r["acc_all"]) for r in mine]
            assert accs[-1] == 1.0 and mine[-1]["acc_unlabeled"] == ""  # every image labeled
            assert accs[-1] >= accs[0]
            assert all(float(r["update_seconds"]) >= 0 for r in mine)
    zs = {r["zero_shot_acc"] for r in rows}
    assert len(zs) == 1 and 0 < float(zs.pop()) <= 1
    random_runs = [[r["acc_all"] for r in rows if r["strategy"] == "random" and r["seed"] == s] for s in "01"]
    assert random_runs[0] != random_runs[1]  # random order differs by seed
    assert (out / "curve.png").stat().st_size > 5_000
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk == json.loads(json.dumps(summary))
    for name in strategies:
        entry = on_disk["strategies"][name]
        assert set(entry["labels_to_reach"]) == {"90%", "95%", "99%"}
        for key in ("labels_to_halve_zero_shot_errors", "halve_ratio_to_random", "auc_acc_all", "final_acc_all",
                    "mean_update_seconds"):
            assert key in entry
        assert 0 < entry["auc_acc_all"] <= 1
    assert 0 < on_disk["reference_probe_acc"] <= 1 and on_disk["zero_shot_acc"] is not None


def test_cold_start_run_has_empty_zero_shot(tmp_path: Path) -> None:
    data = load_npz(_write_npz(tmp_path / "c.npz", head=False))
    summary = run_simulation(data, strategies=["cold_start", "random"], budget=40, step=20, seeds=1,
                             out_dir=tmp_path / "o", progress=False)
    _, rows = _read_rows(tmp_path / "o" / "curve.csv")
    assert {r["zero_shot_acc"] for r in rows} == {""}
    assert summary["zero_shot_acc"] is None
    first = [r for r in rows if r["labels_used"] == "0"]
    assert all(abs(float(r["acc_all"]) - 0.25) < 0.26 for r in first)  # uniform prediction at 0 labels
    last = [float(r["acc_unlabeled"]) for r in rows if r["labels_used"] == "40"]
    assert min(last) > 0.5  # 10 labels per class separate these clusters well


@pytest.mark.assets
def test_pets_fast_run(embeddings_dir: Path, tmp_path: Path) -> None:
    data = load_npz(embeddings_dir / "pets25-val-clip-vitb32.npz")
    assert isinstance(data, SimData) and len(data.class_names) == 25
    summary = run_simulation(data, strategies=["margin", "random"], budget=60, step=20, seeds=2,
                             out_dir=tmp_path, progress=False)
    _, rows = _read_rows(tmp_path / "curve.csv")
    assert len(rows) == 2 * 2 * 4
    assert float(rows[0]["zero_shot_acc"]) == pytest.approx(0.924, abs=0.002)
    margin = summary["strategies"]["margin"]  # type: ignore[index]
    rand = summary["strategies"]["random"]  # type: ignore[index]
    assert margin["final_acc_all"] > rand["final_acc_all"] > float(rows[0]["zero_shot_acc"])
