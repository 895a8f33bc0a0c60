"""The open_clip adapter: load a model from a hub tag, a local checkpoint or random weights,
and embed image files through a DataLoader. torch/open_clip are imported inside functions only.

Worker count (bench/embed_throughput.py, ViT-B-32, 2-core CPU shared with other jobs): decoding +
preprocessing a CIFAR JPEG costs ~1.7 CPU ms in a worker (torch gives workers 1 thread) against
~150 CPU ms to encode it. In-process (num_workers=0) the same preprocessing runs small tensor ops
on torch's two intra-op threads and took 19% of the run (CPU efficiency 0.74 of the bare
encoder); one worker keeps ~98.5% of the run inside the encoder (CPU efficiency ~0.97); a second
worker adds nothing. So: 1 worker on CPU (0 for a single batch: no process start), up to 8 on GPU.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.errors import ImageError, InvalidInput, ModelLoadError
from core.io.images import DEFAULT_MAX_PIXELS, centre_band, open_rgb
from core.models.base import (
    EmbeddedBatch,
    ImageTextModel,
    ModelSpec,
    local_checkpoint_help,
    read_config_json,
)
from core.models.tiny import CHECKPOINT_FORMATS, TINY_NAME, register_model_config, register_tiny_config, tiny_spec

if TYPE_CHECKING:
    import torch

EXAMPLE_ARCHS = ("ViT-B-32", "ViT-B-16", "ViT-L-14", "ViT-S-32", "RN50", TINY_NAME)
DEVICE_TYPES = ("cpu", "cuda", "mps")
HUB_PROBE_TIMEOUT_S = 3.0
TEXT_CHUNK = 256
MAX_GPU_WORKERS = 8

# Architectures clipmark defines itself; registered with open_clip on first use.
LOCAL_ARCHS: dict[str, Callable[[str], str]] = {TINY_NAME: register_tiny_config}


class OpenClipModel:
    """An open_clip CLIP model behind the `ImageTextModel` protocol."""

    def __init__(
        self, *, module: Any, preprocess: Any, tokenizer: Any, model_id: str, embed_dim: int, device: str
    ) -> None:
        self.module = module.eval()
        self.preprocess = preprocess  # the torchvision Compose: picklable for DataLoader workers
        self.tokenizer = tokenizer
        self.model_id = model_id
        self.embed_dim = embed_dim
        self.device = device
        self.logit_scale = float(module.logit_scale.detach().exp().clamp(max=100).flatten()[0])

    def encode_images(self, batch: torch.Tensor) -> np.ndarray:
        with _inference(self.device):
            features = self.module.encode_image(batch.to(self.device, non_blocking=True))
        return _normalised(features)

    def encode_pictures(self, pictures: Sequence[Any]) -> np.ndarray:
        """(N, D) float32, L2-normalised: decoded PIL images (region crops) through preprocess + encoder."""
        import torch

        if not pictures:
            return np.zeros((0, self.embed_dim), dtype=np.float32)
        return self.encode_images(torch.stack([self.preprocess(centre_band(picture)) for picture in pictures]))

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not all(isinstance(t, str) for t in texts):
            raise InvalidInput("texts: every prompt must be a string")
        if not texts:
            return np.zeros((0, self.embed_dim), dtype=np.float32)
        chunks = []
        for start in range(0, len(texts), TEXT_CHUNK):
            tokens = self.tokenizer(texts[start : start + TEXT_CHUNK]).to(self.device)
            with _inference(self.device):
                chunks.append(_normalised(self.module.encode_text(tokens)))
        return np.concatenate(chunks)


def load_image_text_model(spec: ModelSpec, *, device: str | None = None) -> OpenClipModel:
    """Build the model `spec` names on `device` (default: CUDA, then MPS, then CPU)."""
    import open_clip

    chosen = select_device(device)
    arch = _resolve_arch(spec)
    module, preprocess = MODEL_SOURCES[spec.source](spec)
    try:
        tokenizer = open_clip.get_tokenizer(arch)
    except Exception as exc:  # HF tokenizers need a download or `transformers`
        raise ModelLoadError(f"cannot build the tokenizer of {arch}: {exc}") from exc
    embed_dim = int(open_clip.get_model_config(arch)["embed_dim"])
    return OpenClipModel(
        module=module.to(chosen),
        preprocess=preprocess,
        tokenizer=tokenizer,
        model_id=spec.model_id,
        embed_dim=embed_dim,
        device=chosen,
    )


def select_device(device: str | None = None) -> str:
    """Validate `device`, or pick CUDA, then MPS, then CPU."""
    import torch

    if device is None:
        if torch.cuda.is_available():
            return "cuda"
        return "mps" if torch.backends.mps.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InvalidInput(f"device: {device!r} is not a device; use one of {DEVICE_TYPES}") from exc
    available = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}
    if not available.get(parsed.type, False):
        usable = [name for name, ok in available.items() if ok]
        raise InvalidInput(f"device: {device!r} is not available here; available: {usable}")
    if parsed.type == "cuda" and parsed.index is not None and parsed.index >= torch.cuda.device_count():
        raise InvalidInput(f"device: {device!r}: only {torch.cuda.device_count()} CUDA devices")
    return str(parsed)


def _resolve_arch(spec: ModelSpec) -> str:
    import open_clip

    if spec.config is not None:
        return register_model_config(spec.arch, read_config_json(spec.config))
    if spec.arch in LOCAL_ARCHS:
        return LOCAL_ARCHS[spec.arch](spec.arch)
    if spec.arch not in open_clip.list_models():
        close = difflib.get_close_matches(spec.arch, open_clip.list_models(), n=3)
        raise InvalidInput(
            f"arch: unknown model architecture {spec.arch!r}"
            + (f" (did you mean {', '.join(close)}?)" if close else "")
            + f"; e.g. {', '.join(EXAMPLE_ARCHS)}. List all with: "
            'python -c "import open_clip; print(open_clip.list_models())"'
        )
    return spec.arch


def _create(arch: str, pretrained: str | None, **options: Any) -> tuple[Any, Any]:
    import open_clip

    module, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=pretrained, device="cpu", **options)
    return module, preprocess


def _build_random(spec: ModelSpec) -> tuple[Any, Any]:
    import torch

    with torch.random.fork_rng(devices=[]):  # seed locally; the caller's RNG is untouched
        torch.manual_seed(spec.seed)
        return _create(spec.arch, None)


def _build_from_file(spec: ModelSpec) -> tuple[Any, Any]:
    return _load_file(spec.arch, str(spec.pretrained))


def _build_from_hub(spec: ModelSpec) -> tuple[Any, Any]:
    import open_clip

    tag = str(spec.pretrained)
    tags = open_clip.list_pretrained_tags_by_model(spec.arch)
    if tag not in tags:
        raise ModelLoadError(
            f"pretrained: {tag!r} is neither a pretrained tag of {spec.arch} "
            f"(tags: {', '.join(tags) or 'none'}) nor an existing checkpoint file. " + local_checkpoint_help(spec.arch)
        )
    cfg = open_clip.get_pretrained_cfg(spec.arch, tag)
    # The tag's preprocessing and activation, applied to its (cached or downloaded) file.
    return _load_file(
        spec.arch,
        _hub_checkpoint(spec.arch, tag, cfg),
        image_mean=cfg.get("mean"),
        image_std=cfg.get("std"),
        image_interpolation=cfg.get("interpolation"),
        image_resize_mode=cfg.get("resize_mode"),
        force_quick_gelu=bool(cfg.get("quick_gelu", False)),
    )


def _load_file(arch: str, path: str, **options: Any) -> tuple[Any, Any]:
    if not os.path.isfile(path):
        raise ModelLoadError(f"pretrained: checkpoint file not found: {path}. " + local_checkpoint_help(arch))
    try:
        return _create(arch, path, **options)
    except Exception as exc:  # torch, safetensors and open_clip each raise their own types
        raise ModelLoadError(
            f"pretrained: cannot load {path} into {arch}: {exc}. " + local_checkpoint_help(arch)
        ) from exc


def _hub_checkpoint(arch: str, tag: str, cfg: dict[str, Any]) -> str:
    """A local file for (arch, tag): from the cache, else downloaded; fails fast offline."""
    from open_clip import download_pretrained

    cached = _cached_checkpoint(cfg)
    if cached is not None:
        return cached
    url = _download_url(cfg)
    if not _reachable(url):
        raise ModelLoadError(
            f"pretrained: cannot download the {tag!r} weights of {arch}: {url} is unreachable "
            "(offline, or HF_HUB_OFFLINE is set) and they are not in the local cache. " + local_checkpoint_help(arch)
        )
    try:
        return str(download_pretrained(cfg))
    except Exception as exc:  # huggingface_hub/urllib errors of many kinds
        raise ModelLoadError(
            f"pretrained: download of {arch}@{tag} failed: {exc}. " + local_checkpoint_help(arch)
        ) from exc


def _cached_checkpoint(cfg: dict[str, Any]) -> str | None:
    if cfg.get("hf_hub"):
        from huggingface_hub import try_to_load_from_cache

        repo, filename = os.path.split(cfg["hf_hub"])  # "org/repo/" or "org/repo/file.bin"
        names = [filename] if filename else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
        for name in names:
            found = try_to_load_from_cache(repo, name)
            if isinstance(found, str):
                return found
    if cfg.get("url"):
        path = Path("~/.cache/clip").expanduser() / os.path.basename(cfg["url"])
        return str(path) if path.is_file() else None
    return None


def _download_url(cfg: dict[str, Any]) -> str:
    if cfg.get("hf_hub"):
        return os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    return str(cfg.get("url", ""))


def _reachable(url: str) -> bool:
    """A HEAD request with a short timeout; False when offline mode is set in the environment."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return False
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=HUB_PROBE_TIMEOUT_S).close()
    except urllib.error.HTTPError:
        return True  # the server answered
    except (urllib.error.URLError, OSError, ValueError):
        return False
    return True


MODEL_SOURCES: dict[str, Callable[[ModelSpec], tuple[Any, Any]]] = {
    "hub": _build_from_hub,
    "file": _build_from_file,
    "random": _build_random,
}


def _inference(device: str) -> contextlib.ExitStack:
    import torch

    stack = contextlib.ExitStack()
    stack.enter_context(torch.inference_mode())
    kind = torch.device(device).type
    if kind == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        stack.enter_context(torch.autocast(device_type="cuda", dtype=dtype))
    elif kind == "mps":
        stack.enter_context(torch.autocast(device_type="mps", dtype=torch.float16))
    return stack


def _normalised(features: torch.Tensor) -> np.ndarray:
    import torch.nn.functional as F

    return F.normalize(features.float(), dim=-1).cpu().numpy().astype(np.float32, copy=False)


class _ImageFiles:
    """Map-style dataset: position -> (position, tensor) or (position, reason) on failure."""

    def __init__(self, paths: list[str], preprocess: Any, max_pixels: int) -> None:
        self.paths = paths
        self.preprocess = preprocess
        self.max_pixels = max_pixels

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, position: int) -> tuple[int, Any]:
        try:
            image = open_rgb(self.paths[position], max_pixels=self.max_pixels)
        except ImageError as exc:
            return position, exc.reason
        try:
            return position, self.preprocess(centre_band(image))
        except (OSError, ValueError, RuntimeError, TypeError) as exc:
            return position, f"cannot preprocess: {exc}"


def _collate(items: list[tuple[int, Any]]) -> tuple[np.ndarray, Any, list[tuple[int, str]]]:
    """Split a batch into (positions, stacked tensor or None, errors)."""
    import torch

    good = [(position, value) for position, value in items if not isinstance(value, str)]
    errors = [(position, value) for position, value in items if isinstance(value, str)]
    positions = np.array([position for position, _ in good], dtype=np.int64)
    pixels = torch.stack([value for _, value in good]) if good else None
    return positions, pixels, errors


def default_num_workers(*, device: str, n_items: int, batch_size: int) -> int:
    """0 for a single batch (no process start-up); 1 on CPU; up to 8 on a GPU."""
    if n_items <= batch_size:
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if device == "cpu":
        return 1 if (cores or 1) > 1 else 0
    return max(1, min(MAX_GPU_WORKERS, (cores or 2) - 1))


def embed_images(
    model: ImageTextModel,
    paths: Sequence[str | Path],
    *,
    batch_size: int = 32,
    num_workers: int | None = None,
    progress: bool = True,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Iterator[EmbeddedBatch]:
    """Decode, preprocess (in DataLoader workers) and encode `paths`, one batch at a time."""
    for name, value, low in (
        ("batch_size", batch_size, 1),
        ("max_pixels", max_pixels, 1),
        ("num_workers", 0 if num_workers is None else num_workers, 0),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise InvalidInput(f"{name}: must be an integer >= {low}, got {value!r}")
    items = [str(path) for path in paths]
    if num_workers is None:
        num_workers = default_num_workers(device=model.device, n_items=len(items), batch_size=batch_size)
    return _embed_batches(
        model, items, batch_size=batch_size, num_workers=num_workers, progress=progress, max_pixels=max_pixels
    )


def _embed_batches(
    model: ImageTextModel, items: list[str], *, batch_size: int, num_workers: int, progress: bool, max_pixels: int
) -> Iterator[EmbeddedBatch]:
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    if not items:
        return
    loader: Any = DataLoader(
        _ImageFiles(items, model.preprocess, max_pixels),  # type: ignore[arg-type]
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=_collate,
        pin_memory=model.device.startswith("cuda"),
    )
    empty = np.zeros((0, model.embed_dim), dtype=np.float32)
    with tqdm(total=len(items), unit="img", desc="embedding", disable=not progress) as bar:
        for positions, pixels, errors in loader:
            embeddings = empty if pixels is None else model.encode_images(pixels)
            bar.update(len(positions) + len(errors))
            yield EmbeddedBatch(positions=positions, embeddings=embeddings, errors=errors)


def save_tiny_checkpoint(path: str | Path, *, seed: int = 0) -> Path:
    """Write the random weights of `tiny_spec(seed)` as a `.pt` or `.safetensors` state dict."""
    target = Path(path)
    if target.suffix not in CHECKPOINT_FORMATS:
        raise InvalidInput(f"path: checkpoint {target} must end with one of {', '.join(CHECKPOINT_FORMATS)}")
    model = load_image_text_model(tiny_spec(seed), device="cpu")
    state = {k: v.detach().contiguous().clone() for k, v in model.module.state_dict().items()}
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(target))
    else:
        import torch

        torch.save(state, target)
    return target
