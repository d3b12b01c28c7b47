"""SCALE-Sim topology CSV files as workloads (``cosim simulate --topology layers.csv``).

SCALE-Sim 3.0.0 reads two layouts, told apart by the header row:

- GEMM: ``Layer, M, N, K,`` then one row per layer (``name, M, N, K,`` with an optional
  fifth ``N:M`` sparsity column). M is the rows of the input (tokens), K the reduction, N
  the outputs: our ``GemmOp(m=M, k=K, n=N)``.
- convolution: ``Layer name, IFMAP height, IFMAP width, Filter height, Filter width,
  Channels, Num filter, Strides,`` (optional ``N:M`` column), run as SCALE-Sim runs it: the
  im2col GEMM with ``M = ofmap height x width``, ``K = filter height x width x channels``,
  ``N = num filter``, where ``ofmap = ceil((ifmap - filter + stride) / stride)``. Its
  depth-wise layers (``DP`` in the name) are split per channel, as SCALE-Sim splits them.

Rows end with a trailing comma in SCALE-Sim's files; it is optional here. A layer's ``N:M``
column other than ``1:1`` becomes SCALE-Sim's synthetic weight mask (the first N of every M
weights along K kept), attached like a pruned artifact's masks; prefer real masks (``cosim
prune``) for anything but reproducing SCALE-Sim. Every layer is one GEMM with its own weight
(named after the layer); operands come from and go to DRAM unless the hardware keeps
activations on chip (layers do not feed each other: no tensor links them).
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from workloads.bert import WorkloadError
from workloads.ops import GemmOp, GemmRole, Workload

__all__ = ["load_topology", "topology_from_text"]

GEMM_COLUMNS = 4  # layer, M, N, K
CONV_COLUMNS = 8  # layer, ifmap h, w, filter h, w, channels, num filter, stride


def _positive(value: str, what: str, where: str) -> int:
    try:
        number = int(value.strip())
    except ValueError:
        raise WorkloadError(f"{where}: {what} {value.strip()!r} is not a whole number") from None
    if number < 1:
        raise WorkloadError(f"{where}: {what} {number} must be at least 1")
    return number


def _nm(value: str | None, where: str) -> tuple[int, int] | None:
    """The N:M column: None for dense (absent, empty or 1:1)."""
    if value is None or not value.strip():
        return None
    parts = value.strip().split(":")
    if len(parts) != 2:
        raise WorkloadError(f"{where}: sparsity {value.strip()!r}: expected N:M, e.g. 2:4")
    n, m = (_positive(part, "sparsity", where) for part in parts)
    if n > m:
        raise WorkloadError(f"{where}: sparsity {n}:{m}: N must not exceed M")
    return None if n == m else (n, m)


def _synthetic_nm_mask(n_out: int, k: int, nm: tuple[int, int]) -> np.ndarray:
    """SCALE-Sim's layer-wise N:M pattern: the first N of every M weights along K kept."""
    n, m = nm
    keep = (np.arange(k) % m) < n
    mask = np.broadcast_to(keep, (n_out, k)).copy()
    mask.flags.writeable = False
    return mask


def _gemm(name: str, m: int, k: int, n: int, nm: tuple[int, int] | None) -> GemmOp:
    return GemmOp(
        name,
        GemmRole.LAYER,
        m=m,
        k=k,
        n=n,
        weight_name=name,
        mask=None if nm is None else _synthetic_nm_mask(n, k, nm),
        reads=(f"{name}.input",),
        writes=f"{name}.output",
    )


def topology_from_text(text: str, name: str = "topology") -> Workload:
    """The workload of a SCALE-Sim topology CSV (GEMM or convolution layout)."""
    rows = [
        [cell.strip() for cell in row]
        for row in csv.reader(io.StringIO(text))
        if any(cell.strip() for cell in row)
    ]
    for row in rows:
        while row and row[-1] == "":
            row.pop()  # SCALE-Sim's trailing comma
    if len(rows) < 2:
        raise WorkloadError(
            f"topology {name}: expected a header row and at least one layer row "
            "(GEMM: 'Layer, M, N, K,')"
        )
    header, body = rows[0], rows[1:]
    conv = len(header) >= CONV_COLUMNS
    if not conv and len(header) < GEMM_COLUMNS:
        raise WorkloadError(
            f"topology {name}: header {', '.join(header)!r} has {len(header)} columns: expected "
            "'Layer, M, N, K' (GEMM) or SCALE-Sim's 8 convolution columns"
        )
    ops: list[GemmOp] = []
    seen: set[str] = set()
    for number, row in enumerate(body, start=2):
        where = f"topology {name} line {number}"
        needed = CONV_COLUMNS if conv else GEMM_COLUMNS
        if len(row) < needed:
            raise WorkloadError(f"{where}: {len(row)} columns, expected at least {needed}")
        layer = row[0] or f"layer{number - 1}"
        if layer in seen:
            raise WorkloadError(f"{where}: layer name {layer!r} repeats: expected unique names")
        seen.add(layer)
        nm = _nm(row[needed] if len(row) > needed else None, where)
        if not conv:
            m, n, k = (_positive(row[i], col, where) for i, col in ((1, "M"), (2, "N"), (3, "K")))
            ops.append(_gemm(layer, m, k, n, nm))
            continue
        ih, iw, fh, fw, channels, filters, stride = (
            _positive(row[i], col, where)
            for i, col in enumerate(
                ("IFMAP height", "IFMAP width", "Filter height", "Filter width", "Channels",
                 "Num filter", "Stride"),
                start=1,
            )
        )
        if fh > ih or fw > iw:
            raise WorkloadError(f"{where}: the filter ({fh}x{fw}) is larger than the ifmap")
        oh = math.ceil((ih - fh + stride) / stride)
        ow = math.ceil((iw - fw + stride) / stride)
        if "DP" in layer:  # depth-wise: one single-channel layer per channel, as SCALE-Sim
            for channel in range(channels):
                ops.append(_gemm(f"{layer}Channel_{channel}", oh * ow, fh * fw, filters, nm))
        else:
            ops.append(_gemm(layer, oh * ow, fh * fw * channels, filters, nm))
    return Workload(
        model_name=name,
        batch=1,
        seq_len=max(op.m for op in ops),
        ops=tuple(ops),
        family="topology",
        synthetic_weights=True,
    )


def load_topology(path: str | Path) -> Workload:
    """Read a SCALE-Sim topology CSV file (see the module docstring)."""
    from safeio.documents import MAX_YAML_BYTES, DocumentError, is_file, read_text

    path = Path(path)
    if not is_file(path):
        raise WorkloadError(f"topology file not found: {path}")
    try:  # bounded: size, and no FIFOs or devices (safeio.documents)
        text = read_text(path, MAX_YAML_BYTES, "CSV")
    except DocumentError as error:
        raise WorkloadError(f"topology {path} cannot be read as text: {error}") from None
    return topology_from_text(text, name=path.stem)
