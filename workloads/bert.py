"""BERT-family models (BERT, RoBERTa, DistilBERT, MiniLM) as ordered operation lists.

``build_workload`` follows the forward pass of the Hugging Face ``*ForSequenceClassification``
model op by op, so the simulator runs what the real model runs and every linear GEMM names
the exact parameter (``weight_name``) a pruning mask will later be attached to.

Sources resolve the way transformers resolves a name, in this order: a built-in preset
(published shapes as plain data, random weights; no transformers or torch import), a local
checkpoint directory holding ``config.json``, a hub id found in the local hub cache
(``$HF_HUB_CACHE``, see :func:`resolve_hub_dir`), a hub id of a known checkpoint
(``prajjwal1/bert-tiny``, ``google-bert/bert-base-uncased``: the preset's shape, offline), and,
online only, any other ``org/name`` hub id, whose ``config.json`` is fetched into the cache.
A transformers config object or a :class:`ShapeConfig` is used as given.

What is folded away rather than listed, because it adds no GEMM work and only a few
element-wise passes: bias adds (into their GEMM), the 1/sqrt(head_dim) scaling and the
attention-mask add (into SOFTMAX), and dropout (identity in eval mode).

The task head (``head``, :data:`HEADS`) decides what runs after the encoder and how many
sequences the encoder runs:

- ``cls``: the Hugging Face head, [CLS] -> pooler dense + tanh (ReLU for DistilBERT) ->
  classifier; ``batch`` sequences of ``seq_len`` tokens.
- ``mean`` (BERT family): mean pooling over the tokens, then the classifier ``[h, labels]``.
- ``bi-encoder`` (BERT family): a pair's two sentences run as two separate sequences, so
  ``seq_len`` is the pair's token budget split in two: ``2 x batch`` sequences of
  ``seq_len / 2`` tokens (``seq_len`` must be even). The linear layers see the same
  ``batch x seq_len`` tokens as a cross-encoder on one ``seq_len`` sequence; attention
  costs half (two ``(L/2)^2`` score matrices instead of one ``L^2``). After mean pooling,
  ``num_labels`` 1 is a cosine (no weights), more labels a classifier ``[4h, labels]`` on
  ``(u, v, |u - v|, u * v)``.
"""

from __future__ import annotations

import functools
import os
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from safeio import limits
from safeio.documents import DocumentError, is_dir, is_file, read_json, read_text
from safeio.errors import did_you_mean
from workloads.ops import GemmOp, GemmRole, Op, VectorKind, VectorOp, Workload
from workloads.structure import ShrinkError, structured_keep_of

# transformers (and with it torch) is imported inside the functions that need it, so that
# `import workloads` stays cheap and torch-free for the simulator.
if TYPE_CHECKING:
    from transformers import PretrainedConfig


class WorkloadError(limits.BoundedError):  # a ValueError, message bounded
    """A model source or workload parameter that cannot be turned into a workload."""


CONFIG_FILE = "config.json"
# A checkpoint directory with any of these holds trained weights, not a bare config.
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


def _bert_shape(hidden: int, layers: int, heads: int, intermediate: int) -> dict[str, Any]:
    return {
        "model_type": "bert",
        "vocab_size": 30522,
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "intermediate_size": intermediate,
        "hidden_act": "gelu",
        "max_position_embeddings": 512,
        "type_vocab_size": 2,
    }


# Shapes of the published checkpoints as plain data: the config.json fields that decide the op
# graph (names as in each family's transformers config). Building a workload from a preset
# imports neither transformers nor torch; weights are random (synthetic_weights=True).
PRESETS: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {
        "bert-base-uncased": _bert_shape(768, 12, 12, 3072),
        "bert-large-uncased": _bert_shape(1024, 24, 16, 4096),
        "roberta-base": {
            "model_type": "roberta",
            "vocab_size": 50265,
            "hidden_size": 768,
            "num_hidden_layers": 12,
            "num_attention_heads": 12,
            "intermediate_size": 3072,
            "hidden_act": "gelu",
            "max_position_embeddings": 514,
            "type_vocab_size": 1,
            "pad_token_id": 1,
            "bos_token_id": 0,
            "eos_token_id": 2,
            "layer_norm_eps": 1e-5,
        },
        "distilbert-base-uncased": {
            "model_type": "distilbert",
            "vocab_size": 30522,
            "dim": 768,
            "n_layers": 6,
            "n_heads": 12,
            "hidden_dim": 3072,
            "activation": "gelu",
            "max_position_embeddings": 512,
        },
        "all-MiniLM-L6-v2": _bert_shape(384, 6, 12, 1536),
        "bert-tiny": _bert_shape(128, 2, 2, 512),  # google/bert_uncased_L-2_H-128_A-2
        "bert-mini": _bert_shape(256, 4, 4, 1024),  # google/bert_uncased_L-4_H-256_A-4
        "bert-small": _bert_shape(512, 4, 8, 2048),  # google/bert_uncased_L-4_H-512_A-8
    }
)

# Hub ids of the same checkpoints: offline (not in the local hub cache), they resolve to the
# preset's shape; see ``resolve_hub_dir`` for the cache.
HUB_ALIASES: Mapping[str, str] = MappingProxyType(
    {
        "google-bert/bert-base-uncased": "bert-base-uncased",
        "google-bert/bert-large-uncased": "bert-large-uncased",
        "FacebookAI/roberta-base": "roberta-base",
        "distilbert/distilbert-base-uncased": "distilbert-base-uncased",
        "sentence-transformers/all-MiniLM-L6-v2": "all-MiniLM-L6-v2",
        "google/bert_uncased_L-2_H-128_A-2": "bert-tiny",
        "google/bert_uncased_L-4_H-256_A-4": "bert-mini",
        "google/bert_uncased_L-4_H-512_A-8": "bert-small",
        "prajjwal1/bert-tiny": "bert-tiny",
        "prajjwal1/bert-mini": "bert-mini",
        "prajjwal1/bert-small": "bert-small",
    }
)
_PRESET_ALIASES = HUB_ALIASES  # the older private name

FAMILIES = ("bert", "roberta", "distilbert")
HEADS = ("cls", "mean", "bi-encoder")

# The largest value of each size field of a config (every family's spelling), with the
# reasons in ``safeio.limits``; checked on the raw config.json before transformers reads
# it (transformers builds one label entry per num_labels) and again on the config object.
FIELD_LIMITS = {
    "hidden_size": limits.MAX_HIDDEN,
    "dim": limits.MAX_HIDDEN,
    "num_hidden_layers": limits.MAX_LAYERS,
    "n_layers": limits.MAX_LAYERS,
    "num_attention_heads": limits.MAX_HEADS,
    "n_heads": limits.MAX_HEADS,
    "intermediate_size": limits.MAX_INTERMEDIATE,
    "hidden_dim": limits.MAX_INTERMEDIATE,
    "max_position_embeddings": limits.MAX_SEQ_LEN + 2,  # RoBERTa's padding offset
    "num_labels": limits.MAX_LABELS,
}

# DistilBERT's config.json names three shape fields differently (transformers maps them).
_FIELD_ALIASES = {
    "distilbert": {
        "hidden_size": "dim",
        "num_attention_heads": "n_heads",
        "num_hidden_layers": "n_layers",
    }
}
_FIELD_DEFAULTS = {"num_labels": 2, "pad_token_id": None, "name_or_path": ""}


class ShapeConfig:
    """Plain ``config.json`` fields read like a transformers config: attribute access with
    DistilBERT's field names mapped, ``num_labels`` 2 unless given. What a preset is; torch-free.
    """

    __slots__ = ("_fields",)

    def __init__(self, fields: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_fields", dict(fields))

    def __getattr__(self, name: str) -> Any:
        fields = object.__getattribute__(self, "_fields")
        key = _FIELD_ALIASES.get(fields.get("model_type"), {}).get(name, name)
        if key in fields:
            return fields[key]
        if name in _FIELD_DEFAULTS:
            return _FIELD_DEFAULTS[name]
        raise AttributeError(f"config has no field {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("ShapeConfig is read-only")

    def __repr__(self) -> str:
        return f"ShapeConfig({object.__getattribute__(self, '_fields')!r})"

    def to_dict(self) -> dict[str, Any]:
        return dict(object.__getattribute__(self, "_fields"))


if TYPE_CHECKING:
    ConfigSource = PretrainedConfig | ShapeConfig | str | Path


def _canonical_preset(name: str) -> str:
    canonical = HUB_ALIASES.get(name, name)
    if canonical not in PRESETS:
        raise WorkloadError(f"unknown preset {name!r}: expected one of {', '.join(PRESETS)}")
    return canonical


def preset_shape(name: str) -> ShapeConfig:
    """The plain-data shape of a built-in preset (or a hub id that maps to one)."""
    return ShapeConfig(PRESETS[_canonical_preset(name)])


def preset_config(name: str) -> PretrainedConfig:
    """A fresh transformers config for a built-in preset (or its hub id alias); imports
    transformers (the pruning code builds models from it)."""
    from transformers import AutoConfig

    fields = dict(PRESETS[_canonical_preset(name)])
    return AutoConfig.for_model(fields.pop("model_type"), **fields)


@dataclass(frozen=True)
class _Resolved:
    """A source after loading: what it is, what to call it, and whether weights are real."""

    config: PretrainedConfig | ShapeConfig
    model_name: str
    synthetic_weights: bool


def load_config(source: ConfigSource) -> PretrainedConfig:
    """The transformers config behind ``source``, checked to be a supported BERT family."""
    resolved = _resolve(source)
    if isinstance(resolved.config, ShapeConfig):
        return preset_config(resolved.model_name)
    return resolved.config


def check_model(source: ConfigSource) -> str:
    """Resolve ``source`` (presets without importing transformers) and check that it is a
    supported BERT-family model; its model name, or WorkloadError naming the problem."""
    resolved = _resolve(source)
    _dims(resolved.config)
    return resolved.model_name


def _resolve(source: ConfigSource) -> _Resolved:
    if isinstance(source, str) and source in PRESETS:
        return _Resolved(preset_shape(source), source, True)
    if isinstance(source, ShapeConfig):
        _check_family(source, where="config")
        return _Resolved(source, str(source.name_or_path or source.model_type), True)
    if isinstance(source, str | Path):
        path = Path(source).expanduser()
        exists = is_dir(path) or is_file(path)  # False, not an error, for a refused name
        if exists or not isinstance(source, str) or _looks_like_path(source):
            return _resolve_directory(path, source)
        hub_dir = resolve_hub_dir(source)
        if hub_dir is not None:
            resolved = _resolve_directory(hub_dir, source)
            return _Resolved(resolved.config, source, resolved.synthetic_weights)
        if source in HUB_ALIASES:
            return _Resolved(preset_shape(source), HUB_ALIASES[source], True)
        fetched = _download_config(source)
        if fetched is not None:
            resolved = _resolve_directory(fetched, source)
            return _Resolved(resolved.config, source, resolved.synthetic_weights)
        return _resolve_directory(path, source)
    from transformers import PretrainedConfig

    if isinstance(source, PretrainedConfig):
        _check_family(source, where="config")
        name = source.name_or_path or source.model_type
        return _Resolved(source, str(name), synthetic_weights=True)
    raise WorkloadError(
        f"unsupported model source of type {type(source).__name__}: expected a preset name, "
        "a checkpoint directory path, or a transformers BertConfig/RobertaConfig/DistilBertConfig"
    )


def _hub_cache() -> Path:
    """Where huggingface_hub keeps downloads: $HF_HUB_CACHE, else $HF_HOME/hub, else
    $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    cache = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(cache).expanduser() / "huggingface" / "hub"


def _is_hub_id(text: str) -> bool:
    return bool(_HUB_ID.match(text))


_HUB_ID = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9._-]*/)?[A-Za-z0-9][A-Za-z0-9._-]*$")


def resolve_hub_dir(model_id: str, revision: str = "main") -> Path | None:
    """The snapshot directory of hub id ``model_id`` in the local hub cache (the layout
    huggingface_hub writes: ``models--org--name/refs/main`` naming a commit whose
    ``snapshots/<commit>/`` holds ``config.json``), or None when it is not cached.
    Nothing is downloaded."""
    if not _is_hub_id(model_id):
        return None
    repo = _hub_cache() / ("models--" + model_id.replace("/", "--"))
    ref = repo / "refs" / revision
    try:  # bounded: a ref file holds one commit hash
        commit = read_text(ref, 1024).strip() if is_file(ref) else revision
    except DocumentError:
        return None
    if not _HUB_ID.match(commit):
        return None
    snapshot = repo / "snapshots" / commit
    return snapshot if is_file(snapshot / CONFIG_FILE) else None


def hub_offline() -> bool:
    """True when huggingface_hub / transformers are told not to use the network."""
    return any(
        os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}
        for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


HUB_ENDPOINT = "https://huggingface.co"  # huggingface_hub's default ($HF_ENDPOINT overrides)


@functools.lru_cache(maxsize=1)
def hub_unreachable() -> bool:
    """True when the hub's host name does not resolve (no network or no DNS): a download
    would only fail after huggingface_hub's five retries, about 25 s of "Retrying in 8s"
    lines, so it is not tried. Asked once per process."""
    host = urlsplit(os.environ.get("HF_ENDPOINT") or HUB_ENDPOINT).hostname
    if not host:
        return False
    try:
        socket.getaddrinfo(host, 443)
    except (OSError, UnicodeError):  # socket.gaierror is an OSError
        return True
    return False


def _download_config(model_id: str) -> Path | None:
    """Online, an ``org/name`` hub id that is neither a preset nor cached: fetch its
    config.json into the hub cache (as ``from_pretrained`` would) and return the snapshot
    directory; None offline, for plain names, or when the hub does not answer."""
    if "/" not in model_id or not _is_hub_id(model_id) or hub_offline() or hub_unreachable():
        return None
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(model_id, CONFIG_FILE)).parent
    except Exception:  # no network, no such repository, gated: report it as unknown
        return None


def _resolve_directory(path: Path, source: str | Path) -> _Resolved:
    """Load ``path/config.json`` offline."""
    path = path.expanduser()
    if not (is_dir(path) or is_file(path)):
        if isinstance(source, str) and not _looks_like_path(source):
            close = did_you_mean(source, [*PRESETS, *HUB_ALIASES])
            asked = ""
            if "/" in source and not hub_offline() and hub_unreachable():
                asked = " (the hub was not asked: its host name does not resolve)"
            raise WorkloadError(
                f"unknown model {source!r}{close}: expected a preset name ({', '.join(PRESETS)}), "
                f"a hub id in the local hub cache ({_hub_cache()}) or, online, on the hub{asked}, "
                f"or a directory with {CONFIG_FILE}"
            )
        raise WorkloadError(
            f"model directory {str(source)!r} does not exist: "
            f"expected a checkpoint directory holding {CONFIG_FILE}"
        )
    if not is_dir(path):
        raise WorkloadError(
            f"{str(path)!r} is a file: expected a checkpoint directory holding {CONFIG_FILE}"
        )
    config = _load_directory_config(path)
    synthetic = not any(is_file(path / name) for name in WEIGHT_FILES)
    return _Resolved(config, path.resolve().name, synthetic_weights=synthetic)


def _looks_like_path(text: str) -> bool:
    """Hub-style ids (``org/name``) read as model names; these read as filesystem paths."""
    return Path(text).is_absolute() or text.startswith((".", "~")) or "\\" in text


def _load_directory_config(path: Path) -> PretrainedConfig:
    """Validate config.json ourselves first, so errors name the file instead of a traceback."""
    config_path = path / CONFIG_FILE
    if not is_file(config_path):
        raise WorkloadError(
            f"{config_path} not found: expected a checkpoint directory holding {CONFIG_FILE}"
        )
    try:
        raw = read_json(config_path)  # strict JSON, bounded (safeio.documents)
    except DocumentError as err:
        raise WorkloadError(f"{config_path} {err}: expected a JSON object") from None
    if not isinstance(raw, dict):
        raise WorkloadError(
            f"{config_path} holds a JSON {type(raw).__name__}: expected a JSON object"
        )
    for field, limit in FIELD_LIMITS.items():
        value = raw.get(field)
        if isinstance(value, int) and not isinstance(value, bool) and value > limit:
            raise WorkloadError(
                f"{config_path}: field {field!r} is {limits.describe(value)}: the limit is "
                f"{limits.describe(limit)}"
            )
    labels = raw.get("id2label")
    if isinstance(labels, dict) and len(labels) > limits.MAX_LABELS:
        raise WorkloadError(
            f"{config_path}: field 'id2label' has {len(labels):,} labels: the limit is "
            f"{limits.describe(limits.MAX_LABELS)}"
        )
    model_type = raw.get("model_type")
    if model_type not in FAMILIES:
        raise WorkloadError(
            f"{config_path}: model_type {model_type!r} is not supported: "
            f"expected one of {', '.join(FAMILIES)}"
        )
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(path, local_files_only=True)
    # transformers raises OSError, ValueError, TypeError and huggingface_hub's strict
    # dataclass errors (plain Exception subclasses); all mean "this file is wrong".
    except Exception as err:
        raise WorkloadError(
            f"{config_path} could not be loaded as a {model_type} config: {err}"
        ) from None


def _check_family(config: PretrainedConfig, where: str) -> str:
    model_type = getattr(config, "model_type", None)
    if model_type not in FAMILIES:
        raise WorkloadError(
            f"{where}: model_type {model_type!r} is not a BERT-family model: "
            f"expected one of {', '.join(FAMILIES)}"
        )
    return model_type


@dataclass(frozen=True)
class _Dims:
    """The shape numbers of one encoder, with family-specific attribute names resolved."""

    family: str
    hidden: int
    layers: int
    heads: int
    intermediate: int
    embedding_tables: int
    max_seq_len: int
    # Per layer, after structured shrinking (workloads.structure): heads and FFN units kept.
    layer_heads: tuple[int, ...] = ()
    layer_intermediate: tuple[int, ...] = ()

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    def heads_in(self, layer: int) -> int:
        return self.layer_heads[layer] if self.layer_heads else self.heads

    def intermediate_in(self, layer: int) -> int:
        return self.layer_intermediate[layer] if self.layer_intermediate else self.intermediate


def _positive_int(config: PretrainedConfig, field: str) -> int:
    value = getattr(config, field, None)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise WorkloadError(f"config field {field!r} is {value!r}: expected a positive int")
    limit = FIELD_LIMITS.get(field)
    if limit is not None and value > limit:
        raise WorkloadError(
            f"config field {field!r} is {limits.describe(value)}: the limit is "
            f"{limits.describe(limit)}"
        )
    return value


def _dims(config: PretrainedConfig) -> _Dims:
    family = _check_family(config, where="config")
    if family == "distilbert":
        intermediate_field, act_field, tables = "hidden_dim", "activation", 2
    else:
        intermediate_field, act_field, tables = "intermediate_size", "hidden_act", 3
    hidden = _positive_int(config, "hidden_size")
    heads = _positive_int(config, "num_attention_heads")
    if hidden % heads:
        raise WorkloadError(
            f"config hidden_size {hidden} is not divisible by num_attention_heads {heads}: "
            "expected whole attention heads"
        )
    _check_gelu(getattr(config, act_field, None), act_field)
    try:
        keep = structured_keep_of(config)
    except ShrinkError as error:
        raise WorkloadError(f"config: {error}") from None
    return _Dims(
        family=family,
        hidden=hidden,
        layers=_positive_int(config, "num_hidden_layers"),
        heads=heads,
        intermediate=_positive_int(config, intermediate_field),
        embedding_tables=tables,
        max_seq_len=_max_seq_len(config, family),
        layer_heads=() if keep is None else keep.head_counts(),
        layer_intermediate=() if keep is None else keep.intermediate_sizes(),
    )


def _check_gelu(activation: object, field: str) -> None:
    """VectorKind only has GELU; refuse rather than mislabel a ReLU/SiLU FFN."""
    if not (isinstance(activation, str) and "gelu" in activation):
        raise WorkloadError(
            f"config {field} {activation!r} is not supported: expected a GELU variant "
            "(gelu, gelu_new, gelu_pytorch_tanh, ...)"
        )


def _max_seq_len(config: PretrainedConfig, family: str) -> int:
    """RoBERTa numbers positions from pad_token_id + 1, so 514 table rows give 512 tokens."""
    positions = _positive_int(config, "max_position_embeddings")
    if family != "roberta":
        return positions
    pad = config.pad_token_id if isinstance(config.pad_token_id, int) else 1
    return positions - pad - 1


def max_seq_len(source: ConfigSource) -> int:
    """The longest sequence ``source``'s model can embed."""
    return _dims(_resolve(source).config).max_seq_len


def _positions_note(config: PretrainedConfig, dims: _Dims) -> str:
    note = f"max_position_embeddings {config.max_position_embeddings}"
    if dims.family == "roberta":
        note += " less RoBERTa's padding offset"
    return note


SIZE_LIMITS = {"batch": limits.MAX_BATCH, "seq_len": limits.MAX_SEQ_LEN,
               "num_labels": limits.MAX_LABELS}  # fmt: skip


def _check_size(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise WorkloadError(f"{name} is {value!r}: expected a positive int")
    if value > SIZE_LIMITS[name]:
        raise WorkloadError(
            f"{name} is {limits.describe(value)}: the limit is {limits.describe(SIZE_LIMITS[name])}"
        )
    return value


def _check_total(model: str, batch: int, seq_len: int, ops: tuple[Op, ...]) -> None:
    """Refuse a forward pass whose MACs pass ``limits.MAX_WORKLOAD_MACS``: its cycle and byte
    counts would no longer be exact (``safeio.limits``)."""
    macs = sum(op.macs for op in ops if isinstance(op, GemmOp))
    if macs > limits.MAX_WORKLOAD_MACS:
        raise WorkloadError(
            f"{model} at batch {batch:,} and seq_len {seq_len:,} is {macs:.3g} MACs: the "
            f"limit is {limits.describe(limits.MAX_WORKLOAD_MACS)} per forward pass (counts "
            "must stay exact in float64); lower the batch or seq_len"
        )


def build_workload(
    source: ConfigSource,
    batch: int = 1,
    seq_len: int = 128,
    num_labels: int | None = None,
    head: str = "cls",
) -> Workload:
    """The ordered forward pass of ``source``'s sequence classifier at ``batch`` x ``seq_len``
    with task head ``head`` (see the module docstring; a bi-encoder splits ``seq_len``).

    ``source`` is a transformers config, a preset name (checked before the filesystem, so a
    directory named like a preset is not read) or a checkpoint directory. ``num_labels``
    defaults to the config's (2 unless the config says otherwise). Every problem with the
    source or the sizes raises one ``WorkloadError`` naming the field or file at fault.
    """
    resolved = _resolve(source)
    config = resolved.config
    dims = _dims(config)
    batch = _check_size("batch", batch)
    if head not in HEADS:
        raise WorkloadError(f"head {head!r} is not supported: expected one of {', '.join(HEADS)}")
    if head != "cls" and dims.family != "bert":
        raise WorkloadError(
            f"head {head!r} is built for BERT models (model_type bert), not {dims.family}: "
            "expected head cls"
        )
    # A bi-encoder's pair is two sentences of seq_len / 2 tokens, each embedded on its own.
    sentences = 2 if head == "bi-encoder" else 1
    positions = dims.max_seq_len * sentences
    if isinstance(seq_len, int) and not isinstance(seq_len, bool) and seq_len > positions:
        raise WorkloadError(
            f"seq_len {seq_len} exceeds the {positions} positions the model can embed "
            f"({_positions_note(config, dims)}"
            f"{', two sentences of seq_len / 2' if sentences == 2 else ''}): "
            f"expected 1 <= seq_len <= {positions}"
        )
    seq_len = _check_size("seq_len", seq_len)
    sequences, tokens_each = batch, seq_len
    if head == "bi-encoder":
        if seq_len % 2 or seq_len < 2:
            raise WorkloadError(
                f"seq_len {seq_len}: a bi-encoder splits the pair's tokens into two sentences "
                "of seq_len / 2: expected an even number of at least 2"
            )
        sequences, tokens_each = 2 * batch, seq_len // 2
    labels = _check_size("num_labels", config.num_labels if num_labels is None else num_labels)
    layers = (
        op for layer in range(dims.layers) for op in _layer_ops(dims, layer, sequences, tokens_each)
    )
    ops = (
        *_embedding_ops(dims, sequences, tokens_each),
        *layers,
        *_HEAD_OPS[head](dims, batch, tokens_each, labels),
    )
    _check_total(resolved.model_name, batch, seq_len, ops)
    return Workload(
        model_name=resolved.model_name,
        batch=batch,
        seq_len=seq_len,
        ops=ops,
        family=dims.family,
        synthetic_weights=resolved.synthetic_weights,
        head=head,
    )


def _embedding_ops(dims: _Dims, batch: int, seq_len: int) -> list[Op]:
    """Gather one row per token from every table, sum the tables, then LayerNorm (into the
    first layer's input, ``hidden.0``)."""
    token_values = batch * seq_len * dims.hidden
    return [
        VectorOp(
            "embeddings.gather",
            VectorKind.EMBEDDING_GATHER,
            token_values * dims.embedding_tables,
            writes="embeddings.rows",
        ),
        VectorOp(
            "embeddings.sum",
            VectorKind.RESIDUAL_ADD,
            token_values * (dims.embedding_tables - 1),
            reads=("embeddings.rows",),
            writes="embeddings.sum",
        ),
        VectorOp(
            "embeddings.layernorm",
            VectorKind.LAYERNORM,
            token_values,
            reads=("embeddings.sum",),
            writes="hidden.0",
        ),
    ]


# Per-family parameter paths of one encoder layer, relative to the layer prefix.
_LAYER_PREFIX = {
    "bert": "bert.encoder.layer.{i}.",
    "roberta": "roberta.encoder.layer.{i}.",
    "distilbert": "distilbert.transformer.layer.{i}.",
}
_BERT_LINEARS = {
    GemmRole.QUERY: "attention.self.query.weight",
    GemmRole.KEY: "attention.self.key.weight",
    GemmRole.VALUE: "attention.self.value.weight",
    GemmRole.ATTENTION_OUTPUT: "attention.output.dense.weight",
    GemmRole.FFN_IN: "intermediate.dense.weight",
    GemmRole.FFN_OUT: "output.dense.weight",
}
_LAYER_LINEARS = {
    "bert": _BERT_LINEARS,
    "roberta": _BERT_LINEARS,
    "distilbert": {
        GemmRole.QUERY: "attention.q_lin.weight",
        GemmRole.KEY: "attention.k_lin.weight",
        GemmRole.VALUE: "attention.v_lin.weight",
        GemmRole.ATTENTION_OUTPUT: "attention.out_lin.weight",
        GemmRole.FFN_IN: "ffn.lin1.weight",
        GemmRole.FFN_OUT: "ffn.lin2.weight",
    },
}


def _layer_ops(dims: _Dims, layer: int, batch: int, seq_len: int) -> list[Op]:
    """One post-LayerNorm encoder layer: self-attention block, then feed-forward block.

    A shrunk layer (``dims.heads_in``/``intermediate_in``) has narrower Q/K/V outputs, fewer
    attention instances and a narrower FFN; a sublayer with nothing left keeps only its
    residual add (the output bias) and LayerNorm."""
    prefix = _LAYER_PREFIX[dims.family].format(i=layer)
    weights = {role: prefix + path for role, path in _LAYER_LINEARS[dims.family].items()}
    tokens = batch * seq_len
    h = dims.hidden
    width, inter = dims.heads_in(layer) * dims.head_dim, dims.intermediate_in(layer)

    def t(name: str) -> str:  # this layer's tensors
        return f"layer.{layer}.{name}"

    def linear(name: str, role: GemmRole, k: int, n: int, source: str) -> GemmOp:
        return GemmOp(
            t(name),
            role,
            m=tokens,
            k=k,
            n=n,
            layer=layer,
            weight_name=weights[role],
            reads=(source,),
            writes=t(name),
        )

    def vector(name: str, kind: VectorKind, elements: int, *reads: str, out: str = "") -> VectorOp:
        return VectorOp(t(name), kind, elements, layer=layer, reads=reads, writes=out or t(name))

    hidden = f"hidden.{layer}"
    attention: list[Op] = []
    if width:
        attention = [
            linear("query", GemmRole.QUERY, h, width, hidden),
            linear("key", GemmRole.KEY, h, width, hidden),
            linear("value", GemmRole.VALUE, h, width, hidden),
            *_attention_ops(dims, layer, batch, seq_len),
            linear("attention_output", GemmRole.ATTENTION_OUTPUT, width, h, t("attention_context")),
        ]
    ffn: list[Op] = []
    if inter:
        ffn = [
            linear("ffn_in", GemmRole.FFN_IN, h, inter, t("attention_layernorm")),
            vector("gelu", VectorKind.GELU, tokens * inter, t("ffn_in")),
            linear("ffn_out", GemmRole.FFN_OUT, inter, h, t("gelu")),
        ]
    return [
        *attention,
        vector(
            "attention_residual",
            VectorKind.RESIDUAL_ADD,
            tokens * h,
            *((t("attention_output"),) if width else ()),
            hidden,
        ),
        vector("attention_layernorm", VectorKind.LAYERNORM, tokens * h, t("attention_residual")),
        *ffn,
        vector(
            "ffn_residual",
            VectorKind.RESIDUAL_ADD,
            tokens * h,
            *((t("ffn_out"),) if inter else ()),
            t("attention_layernorm"),
        ),
        vector(
            "ffn_layernorm",
            VectorKind.LAYERNORM,
            tokens * h,
            t("ffn_residual"),
            out=f"hidden.{layer + 1}",
        ),
    ]


def _attention_ops(dims: _Dims, layer: int, batch: int, seq_len: int) -> list[Op]:
    """Per (sequence, kept head): scores = Q K^T (L x d @ d x L), softmax, context = P V."""
    instances = batch * dims.heads_in(layer)
    prefix = f"layer.{layer}."
    return [
        GemmOp(
            prefix + "attention_scores",
            GemmRole.ATTENTION_SCORES,
            m=seq_len,
            k=dims.head_dim,
            n=seq_len,
            layer=layer,
            count=instances,
            reads=(prefix + "query", prefix + "key"),
            writes=prefix + "attention_scores",
        ),
        VectorOp(
            prefix + "softmax",
            VectorKind.SOFTMAX,
            instances * seq_len * seq_len,
            layer=layer,
            reads=(prefix + "attention_scores",),
            writes=prefix + "softmax",
        ),
        GemmOp(
            prefix + "attention_context",
            GemmRole.ATTENTION_CONTEXT,
            m=seq_len,
            k=seq_len,
            n=dims.head_dim,
            layer=layer,
            count=instances,
            reads=(prefix + "softmax", prefix + "value"),
            writes=prefix + "attention_context",
        ),
    ]


# (dense before the activation, final projection) weights of each family's classifier head.
_HEAD_WEIGHTS = {
    "bert": ("bert.pooler.dense.weight", "classifier.weight"),
    "roberta": ("classifier.dense.weight", "classifier.out_proj.weight"),
    "distilbert": ("pre_classifier.weight", "classifier.weight"),
}


def _cls_head_ops(dims: _Dims, batch: int, tokens: int, num_labels: int) -> list[Op]:
    """Only the first ([CLS] / <s>) token of each sequence reaches the head, hence m=batch.

    BERT's pooler and RoBERTa's head dense layer apply tanh; DistilBERT's pre_classifier ReLU.
    """
    dense_weight, out_weight = _HEAD_WEIGHTS[dims.family]
    h = dims.hidden
    last = f"hidden.{dims.layers}"
    ops: list[Op] = [
        GemmOp(
            "pooler",
            GemmRole.POOLER,
            m=batch,
            k=h,
            n=h,
            weight_name=dense_weight,
            reads=(last,),
            writes="pooler",
        )
    ]
    kind, name = (VectorKind.RELU, "pooler.relu")
    if dims.family != "distilbert":
        kind, name = (VectorKind.TANH, "pooler.tanh")
    ops.append(VectorOp(name, kind, batch * h, reads=("pooler",), writes=name))
    ops.append(
        GemmOp(
            "classifier",
            GemmRole.CLASSIFIER,
            m=batch,
            k=h,
            n=num_labels,
            weight_name=out_weight,
            reads=(name,),
            writes="logits",
        )
    )
    return ops


def _mean_pool(dims: _Dims, sequences: int, tokens: int) -> VectorOp:
    return VectorOp(
        "pooler.mean",
        VectorKind.MEAN_POOL,
        sequences * tokens * dims.hidden,
        output_elements=sequences * dims.hidden,
    )


def _mean_head_ops(dims: _Dims, batch: int, tokens: int, num_labels: int) -> list[Op]:
    """Mean pooling over every token, then the classifier (no pooler layer)."""
    h = dims.hidden
    return [
        _mean_pool(dims, batch, tokens),
        GemmOp(
            "classifier", GemmRole.CLASSIFIER, m=batch, k=h, n=num_labels,
            weight_name="classifier.weight",
        ),
    ]  # fmt: skip


def _bi_encoder_head_ops(dims: _Dims, batch: int, tokens: int, num_labels: int) -> list[Op]:
    """Mean pooling of both sentences (``2 x batch`` sequences), then a cosine per pair
    (regression) or the classifier ``[4h, labels]`` on ``(u, v, |u - v|, u * v)``."""
    h = dims.hidden
    ops: list[Op] = [_mean_pool(dims, 2 * batch, tokens)]
    if num_labels == 1:
        ops.append(VectorOp("cosine", VectorKind.COSINE, batch * h, output_elements=batch))
        return ops
    ops.append(
        VectorOp(
            "pair_features", VectorKind.PAIR_FEATURES, batch * h, output_elements=4 * batch * h
        )
    )
    ops.append(
        GemmOp(
            "classifier", GemmRole.CLASSIFIER, m=batch, k=4 * h, n=num_labels,
            weight_name="classifier.weight",
        )
    )  # fmt: skip
    return ops


_HEAD_OPS: dict[str, Callable[[_Dims, int, int, int], list[Op]]] = {
    "cls": _cls_head_ops,
    "mean": _mean_head_ops,
    "bi-encoder": _bi_encoder_head_ops,
}
