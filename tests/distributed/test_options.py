"""The Ray engine's options without starting Ray: engine names, path maps (flag and environment),
block sizes, reading fsspec URLs, and the CLI's refusals (exit status 2, the flag named)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image as PILImage

from core.cli import main
from core.config import Settings, path_map
from core.errors import ImageError, InvalidInput
from core.usecases.distributed.engine import RayOptions, block_rows, check_engine, map_paths
from core.usecases.distributed.reading import read_picture


def test_engine_names_and_options_are_checked() -> None:
    assert check_engine("ray") == "ray"
    with pytest.raises(InvalidInput, match="engine: unknown engine 'spark'; valid: local, ray"):
        check_engine("spark")
    with pytest.raises(InvalidInput, match="actors: must be an integer >= 1, got 0"):
        RayOptions(actors=0)


def test_an_engine_address_makes_ray_the_default() -> None:
    assert Settings().default_engine == "local"
    settings = Settings.from_env({"CLIPMARK_RAY_ADDRESS": "ray://head:10001", "CLIPMARK_RAY_ACTORS": "8",
                                  "CLIPMARK_RAY_PATH_MAP": "/data/images=s3://bucket/images; /mnt/x=gs://y"})
    assert (settings.default_engine, settings.engine_actors) == ("ray", 8)
    assert settings.engine_path_map == (("/data/images", "s3://bucket/images"), ("/mnt/x", "gs://y"))
    with pytest.raises(ValueError, match="CLIPMARK_RAY_PATH_MAP: '/data' is not STORE_PREFIX=CLUSTER_PREFIX"):
        path_map("/data")
    with pytest.raises(ValueError, match="CLIPMARK_RAY_ACTORS: must be a whole number >= 1, got 'two'"):
        Settings.from_env({"CLIPMARK_RAY_ACTORS": "two"})


def test_paths_are_mapped_by_the_first_matching_prefix() -> None:
    pairs = (("/data/images", "s3://bucket/images"), ("/data", "gs://other"))
    assert map_paths("/data/images/a/1.jpg", pairs) == "s3://bucket/images/a/1.jpg"
    assert map_paths("/data/b.jpg", pairs) == "gs://other/b.jpg"
    assert map_paths("/elsewhere/c.jpg", pairs) == "/elsewhere/c.jpg"


def test_blocks_leave_no_actor_idle() -> None:
    assert block_rows(10_000, RayOptions(actors=2, batch_size=32)) == 128
    assert block_rows(64, RayOptions(actors=2, batch_size=32)) == 32
    assert block_rows(1, RayOptions(actors=4, batch_size=32)) == 1


def test_fsspec_urls_are_read_and_checked() -> None:
    fsspec = pytest.importorskip("fsspec")
    buffer = io.BytesIO()
    PILImage.new("RGB", (20, 10), (200, 10, 10)).save(buffer, format="PNG")
    with fsspec.open("memory://clipmark-test/red.png", "wb") as out:
        out.write(buffer.getvalue())
    picture = read_picture("memory://clipmark-test/red.png", max_pixels=10**6)
    assert picture.size == (20, 10) and picture.getpixel((0, 0)) == (200, 10, 10)
    with fsspec.open("memory://clipmark-test/bad.jpg", "wb") as out:
        out.write(b"not an image")
    with pytest.raises(ImageError) as bad:
        read_picture("memory://clipmark-test/bad.jpg", max_pixels=10**6)
    assert bad.value.source == "memory://clipmark-test/bad.jpg"
    with pytest.raises(ImageError, match="memory://clipmark-test/none.jpg: cannot read"):
        read_picture("memory://clipmark-test/none.jpg", max_pixels=10**6)


def test_cli_refuses_a_bad_path_map(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "c.sqlite")
    assert main(["init", "--db", db, "--project", "p", "--labels", "a,b"]) == 0
    code = main(["embed", "--db", db, "--project", "p", "--engine", "ray", "--map-path", "/data"])
    assert code == 2 and "--map-path: '/data' is not STORE_PREFIX=CLUSTER_PREFIX" in capsys.readouterr().err
