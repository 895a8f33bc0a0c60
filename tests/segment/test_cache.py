"""The embedding cache and the background precomputer, with the tiny segmenter (real encoder runs)."""

from __future__ import annotations

import hashlib
import threading
import time

import numpy as np
import pytest

from core.errors import InvalidInput
from core.models.sam import SegmenterSpec, load_segmenter
from core.segment.cache import EmbeddingCache, Precomputer, model_dir_name


def sha(index: int) -> str:
    return hashlib.sha256(str(index).encode()).hexdigest()


def picture(index: int) -> np.ndarray:
    return np.random.default_rng(index).integers(0, 255, (40, 56, 3), dtype=np.uint8)


@pytest.fixture
def segmenter():
    return load_segmenter(SegmenterSpec("tiny"), device="cpu")


def test_computed_once_then_memory_then_disk(tmp_path, segmenter):
    cache = EmbeddingCache(tmp_path)
    first = cache.get_or_compute(segmenter, sha(1), lambda: picture(1))
    second = cache.get_or_compute(segmenter, sha(1), lambda: pytest.fail("loader called for a cached image"))
    assert segmenter.encoder_runs == 1 and second is first
    path = cache.path(segmenter.model_id, sha(1))
    assert path.is_file() and path.parent.name == sha(1)[:2]
    assert path.parent.parent.name == model_dir_name(segmenter.model_id)
    reopened = EmbeddingCache(tmp_path).get_or_compute(segmenter, sha(1), lambda: picture(1))
    assert segmenter.encoder_runs == 1
    np.testing.assert_array_equal(reopened.features, first.features)
    assert reopened.features.dtype == np.float16
    assert (reopened.original_size, reopened.input_size) == ((40, 56), (46, 64))


def test_models_do_not_share_entries(tmp_path, segmenter):
    other = load_segmenter(SegmenterSpec("tiny", seed=1), device="cpu")
    cache = EmbeddingCache(tmp_path)
    cache.get_or_compute(segmenter, sha(1), lambda: picture(1))
    assert cache.contains(segmenter.model_id, sha(1)) and not cache.contains(other.model_id, sha(1))
    cache.get_or_compute(other, sha(1), lambda: picture(1))
    assert other.encoder_runs == 1
    assert model_dir_name("a@b") != model_dir_name("a:b")


def test_memory_is_bounded_lru(tmp_path, segmenter):
    cache = EmbeddingCache(tmp_path, memory_items=2)
    for index in range(3):
        cache.get_or_compute(segmenter, sha(index), lambda index=index: picture(index))
    assert list(cache._memory) == [(segmenter.model_id, sha(1)), (segmenter.model_id, sha(2))]
    assert cache.get(segmenter.model_id, sha(0)) is not None  # back from disk
    assert segmenter.encoder_runs == 3


def test_racing_callers_run_the_encoder_once(tmp_path, segmenter):
    cache = EmbeddingCache(tmp_path)
    start = threading.Barrier(4)
    results = []

    def slow_load() -> np.ndarray:
        time.sleep(0.05)
        return picture(7)

    def call() -> None:
        start.wait()
        results.append(cache.get_or_compute(segmenter, sha(7), slow_load))

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert segmenter.encoder_runs == 1 and len(results) == 4
    assert all(np.array_equal(r.features, results[0].features) for r in results)


def test_a_failed_computation_lets_the_next_caller_try(tmp_path, segmenter):
    cache = EmbeddingCache(tmp_path)

    def broken() -> np.ndarray:
        raise OSError("unreadable")

    with pytest.raises(OSError):
        cache.get_or_compute(segmenter, sha(2), broken)
    assert cache.get_or_compute(segmenter, sha(2), lambda: picture(2)).original_size == (40, 56)
    assert not cache._pending


@pytest.mark.parametrize("content", [b"", b"garbage, not a zip", b"PK\x03\x04truncated"])
def test_a_corrupt_file_is_recomputed(tmp_path, segmenter, content):
    cache = EmbeddingCache(tmp_path, memory_items=0)
    expected = cache.get_or_compute(segmenter, sha(3), lambda: picture(3))
    path = cache.path(segmenter.model_id, sha(3))
    path.write_bytes(content)
    assert cache.get(segmenter.model_id, sha(3)) is None and not path.exists()
    again = cache.get_or_compute(segmenter, sha(3), lambda: picture(3))
    assert segmenter.encoder_runs == 2
    np.testing.assert_array_equal(again.features, expected.features)


def test_no_temporary_files_are_left(tmp_path, segmenter):
    cache = EmbeddingCache(tmp_path)
    for index in range(3):
        cache.get_or_compute(segmenter, sha(index), lambda index=index: picture(index))
    files = [p.name for p in tmp_path.rglob("*") if p.is_file()]
    assert sorted(files) == sorted(f"{sha(i)}.npz" for i in range(3))


def test_keys_are_validated(tmp_path):
    cache = EmbeddingCache(tmp_path)
    for bad in ("../../etc/passwd", "ABC", sha(1).upper()):
        with pytest.raises(InvalidInput, match="sha256"):
            cache.get("tiny@random:0", bad)


def test_precomputer_fills_the_cache(tmp_path, segmenter):
    cache = EmbeddingCache(tmp_path)
    precomputer = Precomputer(cache)
    assert precomputer._threads == []  # nothing started before the first submit
    items = [(sha(i), lambda i=i: picture(i)) for i in range(4)]
    assert precomputer.submit(segmenter, items + items[:1]) == 4
    assert precomputer.wait_idle(timeout=30)
    assert segmenter.encoder_runs == 4
    for index in range(4):
        cache.get_or_compute(segmenter, sha(index), lambda: pytest.fail("recomputed"))
    assert segmenter.encoder_runs == 4
    assert precomputer.submit(segmenter, items) == 0  # all cached already
    precomputer.stop()
    assert not any(thread.is_alive() for thread in precomputer._threads)


def test_a_failing_loader_does_not_kill_the_worker(tmp_path, segmenter):
    precomputer = Precomputer(EmbeddingCache(tmp_path))

    def broken() -> np.ndarray:
        raise ValueError("cannot decode")

    precomputer.submit(segmenter, [(sha(1), broken), (sha(2), lambda: picture(2))])
    assert precomputer.wait_idle(timeout=30)
    assert precomputer.errors == [(sha(1), "ValueError: cannot decode")]
    precomputer.submit(segmenter, [(sha(3), lambda: picture(3))])
    assert precomputer.wait_idle(timeout=30)
    assert segmenter.encoder_runs == 2 and precomputer.cache.contains(segmenter.model_id, sha(3))
    precomputer.stop()


def test_precomputer_keeps_only_the_newest_pending(tmp_path, segmenter):
    precomputer = Precomputer(EmbeddingCache(tmp_path))
    started, release = threading.Event(), threading.Event()
    precomputer.submit(segmenter, [(sha(0), lambda: (started.set(), release.wait(10), picture(0))[2])])
    assert started.wait(10)  # the worker holds item 0; everything else stays pending
    queued = precomputer.submit(segmenter, [(sha(i), lambda i=i: picture(i)) for i in range(1, 101)])
    assert queued == 100 and len(precomputer._queue) == 64
    assert precomputer._queue[0][1] == sha(37)  # 1..36 dropped, oldest first
    release.set()
    assert precomputer.wait_idle(timeout=60)
    assert segmenter.encoder_runs == 65
    precomputer.stop()
