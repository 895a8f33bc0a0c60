"""clipmark's tiny Sam: the real segment_anything parts at toy size, for tests, the demo and benches.

~60k parameters, a 64x64 encoder input (4x4 image embedding, 16x16 low-res mask logits); it runs the
same code paths as SAM ViT-B on CPU in milliseconds. Its weights are random: draw them under a seed
with `seeded`, or write them to a file with `save_tiny_sam_checkpoint` to exercise checkpoint loading.
torch and segment_anything are imported inside functions only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

TINY_NAME = "tiny"
TINY_IMAGE_SIZE = 64
TINY_PATCH = 16
TINY_PROMPT_DIM = 16


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Draw torch's CPU random numbers from `seed` inside the block; the caller's RNG is untouched."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def build_tiny_sam() -> Any:
    """A tiny `segment_anything.modeling.Sam` with random weights drawn from torch's current RNG."""
    import torch
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    grid = TINY_IMAGE_SIZE // TINY_PATCH
    encoder = ImageEncoderViT(
        img_size=TINY_IMAGE_SIZE,
        patch_size=TINY_PATCH,
        embed_dim=32,
        depth=2,
        num_heads=2,
        out_chans=TINY_PROMPT_DIM,
        qkv_bias=True,
        norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
        window_size=0,
        global_attn_indexes=(1,),
    )
    prompt_encoder = PromptEncoder(
        embed_dim=TINY_PROMPT_DIM,
        image_embedding_size=(grid, grid),
        input_image_size=(TINY_IMAGE_SIZE, TINY_IMAGE_SIZE),
        mask_in_chans=4,
    )
    decoder = MaskDecoder(
        num_multimask_outputs=3,
        transformer=TwoWayTransformer(depth=1, embedding_dim=TINY_PROMPT_DIM, mlp_dim=32, num_heads=2),
        transformer_dim=TINY_PROMPT_DIM,
        iou_head_depth=2,
        iou_head_hidden_dim=16,
    )
    return Sam(image_encoder=encoder, prompt_encoder=prompt_encoder, mask_decoder=decoder).eval()


def save_tiny_sam_checkpoint(path: str | Path, seed: int = 0) -> Path:
    """Write the state dict of the tiny Sam drawn under `seed` to `path` (torch.save); returns the path."""
    import torch

    with seeded(seed):
        module = build_tiny_sam()
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save(module.state_dict(), target)
    return target
