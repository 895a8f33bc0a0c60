"""Connecting to Ray and sizing the actor pool. `ray` is imported inside functions only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.errors import InvalidInput, ModelLoadError

ENGINES = ("local", "ray")
ROWS_PER_BLOCK_BATCHES = 4  # a Ray block holds this many model batches: small enough to stream and resume


@dataclass(frozen=True)
class RayOptions:
    """How a job runs on Ray. `address`: a cluster ('ray://head:10001', 'auto'); None starts a local
    Ray on this machine. `path_map`: (prefix in the store, prefix the actors read) pairs, e.g.
    ('/data/images', 's3://bucket/images'), for images the cluster reads from shared or object storage."""

    address: str | None = None
    actors: int = 2
    batch_size: int = 32
    write_rows: int = 512
    path_map: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        for name in ("actors", "batch_size", "write_rows"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InvalidInput(f"{name}: must be an integer >= 1, got {value!r}")


def check_engine(engine: str) -> str:
    if engine not in ENGINES:
        raise InvalidInput(f"engine: unknown engine {engine!r}; valid: {', '.join(ENGINES)}")
    return engine


def ray_module() -> Any:
    """`ray` with Ray Data, or a ModelLoadError that says how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise ModelLoadError(f"engine ray: Ray Data is not installed ({exc}); "
                             "install it with: pip install 'clipmark[ray]' (or pip install 'ray[data]')") from exc
    return ray


def connect(options: RayOptions) -> Any:
    """The connected `ray` module: the running session if any, else `ray.init(address)`."""
    ray = ray_module()
    if not ray.is_initialized():
        try:
            ray.init(address=options.address, include_dashboard=False, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ModelLoadError(f"engine address: cannot connect to Ray at {options.address!r}: {exc}") from exc
    return ray


def actor_resources(ray: Any) -> dict[str, float]:
    """One GPU per actor when the cluster has GPUs (the model runs there), else one CPU."""
    if ray.cluster_resources().get("GPU", 0) >= 1:
        return {"num_gpus": 1.0, "num_cpus": 1.0}
    return {"num_gpus": 0.0, "num_cpus": 1.0}


def rows_dataset(ray: Any, columns: dict[str, list[Any]], *, rows_per_block: int) -> Any:
    """A Ray Dataset of the given columns, cut into blocks of `rows_per_block` rows (one block is
    one unit of work streamed through the actors)."""
    import pyarrow as pa

    table = pa.table(columns)
    blocks = [table.slice(start, rows_per_block) for start in range(0, table.num_rows, rows_per_block)]
    return ray.data.from_arrow(blocks)


def block_rows(rows: int, options: RayOptions) -> int:
    """Rows per block: a few model batches, fewer when that would leave an actor without work."""
    per_actor = -(-rows // options.actors)
    return max(1, min(options.batch_size * ROWS_PER_BLOCK_BATCHES, per_actor))


def map_paths(path: str, path_map: tuple[tuple[str, str], ...]) -> str:
    """`path` as the cluster reads it: the first matching store prefix replaced by its cluster prefix."""
    for local, remote in path_map:
        if path.startswith(local):
            return remote + path[len(local):]
    return path
