"""The teacher's outputs on every training example, computed once and reused by distillation.

Pruning at distilling runs the frozen teacher on every batch; on a CPU that forward costs a
third of a training step, and over several epochs it recomputes the same numbers each time
an example comes round. :func:`build_cache` runs the teacher once per example in eval mode
(no dropout, so the outputs are exactly what a live teacher gives) and keeps

- ``logits`` ``[examples, num_labels]`` (float32), and optionally
- the hidden states of every layer (embeddings included) at the example's real tokens, in
  ``hidden_dtype`` (float16 by default: a quarter of the float32 bytes), stored flat with
  per-example offsets, one table per sentence of a bi-encoder pair.

A cache is saved as one safetensors file (atomically) whose metadata fingerprints the
teacher's weights and the encoded data, so a later invocation of the same job reuses it and a
different teacher or data set is refused rather than silently used.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

__all__ = [
    "HIDDEN_LIMIT_BYTES",
    "TeacherCache",
    "TeacherCacheError",
    "build_cache",
    "cache_fingerprint",
    "data_fingerprint",
    "load_cache",
    "model_fingerprint",
    "save_cache",
]

# Largest hidden-state cache built without complaint (SST-2's 67k sentences would need ~5 GB).
HIDDEN_LIMIT_BYTES = 4 * 1024**3
PARTS = ("", "_b")  # a sentence (or a cross-encoder pair), and a bi-encoder's second sentence


class TeacherCacheError(ValueError):
    """A cache that does not belong to this teacher and data, or one too large to build."""


@dataclass
class TeacherCache:
    """Cached teacher outputs; ``hidden[part]`` is ``[tokens, layers + 1, h]`` with
    ``offsets[part]`` ``[examples + 1]`` (empty when hidden states are not cached)."""

    logits: Tensor
    fingerprint: dict[str, str]
    hidden: dict[str, Tensor] = field(default_factory=dict)
    offsets: dict[str, Tensor] = field(default_factory=dict)

    @property
    def has_hidden(self) -> bool:
        return bool(self.hidden)

    def teacher_logits(self, index: Tensor) -> Tensor:
        return self.logits[index]

    def teacher_hidden(self, index: Tensor, mask: Tensor) -> list[Tensor]:
        """Per layer, ``[rows, seq, h]`` float32 hidden states laid out like the model's for
        the examples ``index``: ``mask`` is the encoder's attention mask for that batch
        (a bi-encoder's stacks its first sentences over its second, as its forward does);
        zero where the mask is 0."""
        parts = list(self.hidden)
        rows = len(index)
        some = self.hidden[parts[0]]
        full = torch.zeros(*mask.shape, *some.shape[1:], dtype=torch.float32)
        for k, part in enumerate(parts):
            table, offsets = self.hidden[part], self.offsets[part]
            values = torch.cat([table[offsets[i] : offsets[i + 1]] for i in index.tolist()])
            block = full[k * rows : (k + 1) * rows]
            block[mask[k * rows : (k + 1) * rows].bool()] = values.float()
        return list(full.unbind(dim=2))


def cache_fingerprint(
    teacher: nn.Module, data: Mapping[str, Tensor], hidden: bool, hidden_dtype: torch.dtype
) -> dict[str, str]:
    """What a cache must match to be reused: the teacher's weights, the encoded data and
    the hidden-state precision (``none`` for a logits-only cache)."""
    return {
        "teacher": model_fingerprint(teacher),
        "data": data_fingerprint(data),
        "hidden": str(hidden_dtype).removeprefix("torch.") if hidden else "none",
    }


def model_fingerprint(model: nn.Module) -> str:
    """sha256 of every parameter and buffer of ``model`` (names and values)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:32]


def data_fingerprint(data: Mapping[str, Tensor]) -> str:
    """sha256 of the encoded training data (ids, masks, token types, labels)."""
    digest = hashlib.sha256()
    for key in sorted(data):
        digest.update(key.encode())
        digest.update(data[key].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:32]


def _parts(data: Mapping[str, Tensor]) -> list[str]:
    return [p for p in PARTS if f"attention_mask{p}" in data]


def estimate_hidden_bytes(teacher: nn.Module, data: Mapping[str, Tensor], itemsize: int) -> int:
    """Bytes a hidden-state cache of ``data`` takes: real tokens x (layers + 1) x h."""
    tokens = sum(int(data[f"attention_mask{p}"].sum()) for p in _parts(data))
    config = teacher.config
    return tokens * (int(config.num_hidden_layers) + 1) * int(config.hidden_size) * itemsize


@torch.no_grad()
def build_cache(
    teacher: nn.Module,
    data: Mapping[str, Tensor],
    *,
    hidden: bool = False,
    hidden_dtype: torch.dtype = torch.float16,
    batch_size: int = 64,
    progress: bool = False,
) -> TeacherCache:
    """Run ``teacher`` (eval mode) once over every example of ``data`` and keep its logits
    and, with ``hidden``, its hidden states at real tokens in ``hidden_dtype``."""
    from pruning.heads import encoder_attention_mask
    from pruning.train import _batch, _forward_keys, n_examples

    itemsize = torch.empty((), dtype=hidden_dtype).element_size()
    if hidden and (need := estimate_hidden_bytes(teacher, data, itemsize)) > HIDDEN_LIMIT_BYTES:
        raise TeacherCacheError(
            f"caching the teacher's hidden states needs {need / 1024**3:.1f} GiB (limit "
            f"{HIDDEN_LIMIT_BYTES / 1024**3:.0f} GiB): cache logits only"
        )
    teacher.eval()
    keys = _forward_keys(teacher)
    parts = _parts(data)
    examples = n_examples(data)
    logits, tables = [], {p: [] for p in parts}
    lengths = {p: [] for p in parts}
    for start in tqdm(range(0, examples, batch_size), disable=not progress, leave=False,
                      desc="teacher cache"):  # fmt: skip
        index = torch.arange(start, min(start + batch_size, examples))
        batch = _batch(data, index, keys)
        out = teacher(**batch, output_hidden_states=hidden)
        logits.append(out.logits.float())
        if not hidden:
            continue
        states = torch.stack(out.hidden_states, dim=2)  # [rows, seq, layers + 1, h]
        mask = encoder_attention_mask(teacher, batch).bool()
        rows = len(index)
        for k, part in enumerate(parts):
            part_mask = mask[k * rows : (k + 1) * rows]
            part_states = states[k * rows : (k + 1) * rows]
            tables[part].append(part_states[part_mask].to(hidden_dtype))
            lengths[part] += part_mask.sum(dim=1).tolist()
    fingerprint = cache_fingerprint(teacher, data, hidden, hidden_dtype)
    cache = TeacherCache(torch.cat(logits), fingerprint)
    if hidden:
        for part in parts:
            cache.hidden[part] = torch.cat(tables[part])
            counts = torch.tensor([0, *lengths[part]], dtype=torch.int64)
            cache.offsets[part] = torch.cumsum(counts, dim=0)
    return cache


def save_cache(cache: TeacherCache, path: str | Path) -> Path:
    """Write ``cache`` as one safetensors file (atomically), fingerprint in its metadata."""
    from safetensors.torch import save

    from safeio.atomic import atomic_write_bytes

    tensors = {"logits": cache.logits.contiguous()}
    for part in cache.hidden:
        tensors[f"hidden{part}"] = cache.hidden[part].contiguous()
        tensors[f"offsets{part}"] = cache.offsets[part].contiguous()
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"fingerprint": json.dumps(cache.fingerprint, sort_keys=True)}
    atomic_write_bytes(target, save(tensors, metadata=metadata))
    return target


def load_cache(path: str | Path, expected: Mapping[str, str]) -> TeacherCache | None:
    """The cache at ``path`` if it exists; None when missing. A cache whose fingerprint is not
    ``expected`` (another teacher, other data, another hidden-state precision) raises."""
    from safetensors import SafetensorError, safe_open

    target = Path(path)
    if not target.is_file():
        return None
    try:
        with safe_open(str(target), framework="pt") as handle:
            fingerprint = json.loads((handle.metadata() or {}).get("fingerprint", "{}"))
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    except (OSError, ValueError, SafetensorError) as error:
        raise TeacherCacheError(f"{target}: unreadable teacher cache ({error})") from None
    if fingerprint != dict(expected):
        raise TeacherCacheError(
            f"{target} caches another teacher or data set ({fingerprint} vs {dict(expected)}): "
            "delete it or use another checkpoint directory"
        )
    cache = TeacherCache(tensors["logits"], fingerprint)
    for part in PARTS:
        if f"hidden{part}" in tensors:
            cache.hidden[part] = tensors[f"hidden{part}"]
            cache.offsets[part] = tensors[f"offsets{part}"]
    return cache
