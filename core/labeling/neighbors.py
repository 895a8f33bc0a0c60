"""Pairs of near-duplicate rows (cosine above a threshold, rows L2-normalised): exact all pairs in
bounded blocks up to EXACT_LIMIT rows, above it an approximate nearest-neighbour search with faiss
(an inverted-file index of inner products: each row's `neighbours` nearest among the `probes`
closest cells), whose cost grows as N * N / cells instead of N * N.

Near-duplicates are what the search misses least: a pair at cosine 0.95 almost always shares a cell
or sits in the next closest one. A row with more near-duplicates than `neighbours` keeps the closest
ones only; for grouping (connected components) the rest are still reached through them."""

from __future__ import annotations

import numpy as np

EXACT_LIMIT = 20_000         # rows compared all-pairs; above, the faiss index
BLOCK_CELLS = 8_000_000      # similarity cells computed at once in the exact path (32 MB of float32)
QUERY_ROWS = 16_384          # rows searched at once in the approximate path


def close_pairs(embeddings: np.ndarray, *, threshold: float, strict: bool = True, exact_limit: int = EXACT_LIMIT,
                neighbours: int = 16, probes: int = 8) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, cosine) arrays of the pairs i < j whose cosine is above `threshold` (`strict`: >, else >=)."""
    n = embeddings.shape[0]
    if n < 2:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0, dtype=np.float32)
    if n <= exact_limit:
        return _exact(embeddings, threshold, strict)
    return _approximate(embeddings, threshold, strict, neighbours=neighbours, probes=probes)


def _above(sims: np.ndarray, threshold: float, strict: bool) -> np.ndarray:
    return sims > threshold if strict else sims >= threshold


def _exact(embeddings: np.ndarray, threshold: float, strict: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = embeddings.shape[0]
    step = int(np.clip(BLOCK_CELLS // n, 16, 4096))
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for start in range(0, n, step):
        block = np.asarray(embeddings[start : start + step], dtype=np.float32) @ np.asarray(
            embeddings[start:], dtype=np.float32).T
        rows, cols = np.nonzero(np.triu(_above(block, threshold, strict), k=1))
        found.append((rows + start, cols + start, block[rows, cols]))
    return _joined(found)


def _approximate(embeddings: np.ndarray, threshold: float, strict: bool, *, neighbours: int,
                 probes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    index = _index(embeddings, probes=probes)
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for start in range(0, embeddings.shape[0], QUERY_ROWS):
        query = np.ascontiguousarray(embeddings[start : start + QUERY_ROWS], dtype=np.float32)
        sims, cols = index.search(query, neighbours + 1)
        rows = np.repeat(np.arange(start, start + query.shape[0]), cols.shape[1]).reshape(cols.shape)
        keep = (cols >= 0) & (cols != rows) & _above(sims, threshold, strict)  # -1: no result
        low, high = np.minimum(rows[keep], cols[keep]), np.maximum(rows[keep], cols[keep])
        found.append((low, high.astype(np.int64), sims[keep]))
    rows, cols, sims = _joined(found)
    first = np.unique(rows * embeddings.shape[0] + cols, return_index=True)[1]  # a pair found from both ends
    return rows[first], cols[first], sims[first]


def _index(embeddings: np.ndarray, *, probes: int):  # type: ignore[no-untyped-def]
    """An IVF-Flat inner-product index over all rows, cells trained on a sample of 20 rows per cell."""
    import faiss

    n, dim = embeddings.shape
    cells = int(np.clip(2 * np.sqrt(n), 64, 4096))
    sample = np.random.default_rng(0).choice(n, size=min(n, 20 * cells), replace=False)
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, cells, faiss.METRIC_INNER_PRODUCT)
    index.cp.niter = 6
    index.cp.min_points_per_centroid = 10  # 20 a cell is enough for cells that only need to be near
    index.train(np.ascontiguousarray(embeddings[np.sort(sample)], dtype=np.float32))
    for start in range(0, n, QUERY_ROWS):
        index.add(np.ascontiguousarray(embeddings[start : start + QUERY_ROWS], dtype=np.float32))
    index.nprobe = probes
    return index


def _joined(found: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not found:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    return (np.concatenate([f[0] for f in found]).astype(np.int64), np.concatenate([f[1] for f in found]),
            np.concatenate([f[2] for f in found]).astype(np.float32))
