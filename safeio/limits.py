"""The size limits every input is checked against, each with the reason for its value.

One module for all of them, so the hardware spec (``accel_sim.spec``), the workload builder
(``workloads.bert``), the study spec (``studies.spec``), the pruning patterns and the
kernel preconditions (``accel_sim.kernels.preconditions``) refuse the same sizes with the
same words. It lives in ``safeio`` because every package may import ``safeio`` and
``safeio`` imports none of them.

Two kinds of limit:

- **field limits**: the largest (or smallest) value one field of a spec or model config
  may take. They are generous (well beyond any published design) and exist so that one
  absurd value is refused by name instead of overflowing, hanging or exhausting memory;
- **derived limits**: quantities several fields multiply into (a GEMM's fold count, the
  MACs of a whole forward pass, the size of an array a kernel allocates). They are checked
  where the quantity is formed (the workload builder, every kernel entry) and the error
  names the quantity, its value and the limit.

Every count the simulator reports (cycles, bytes, MACs) passes through float64 statistics,
which hold integers exactly only up to ``EXACT_COUNT`` = 2**53; the derived limits keep
counts below it, and :func:`check_exact` refuses a result that would not be.
"""

from __future__ import annotations

import math

__all__ = [
    "EXACT_COUNT",
    "BoundedError",
    "SizeLimitError",
    "check_exact",
    "check_limit",
    "describe",
    "listed",
    "shorten",
]


class BoundedError(ValueError):
    """A ``ValueError`` whose message is cut to ``MAX_MESSAGE_CHARS`` (``shorten``): the
    base of every input error class, so no message grows with the input it quotes."""

    def __init__(self, message: object = "") -> None:
        super().__init__(shorten(str(message)))


class SizeLimitError(BoundedError):
    """A size beyond one of this module's limits; the message names the quantity and the
    limit."""


# -- exactness ---------------------------------------------------------------------------
# The largest integer every float64 below it represents exactly: cycles, bytes and MACs go
# through float64 statistics vectors in the kernels.
EXACT_COUNT = 2**53

# -- workload (model config fields, batch and sequence length) ----------------------------
# Sequences per batch. Also bounds the micro-batch search (one plan per divisor of the
# batch) and keeps batch x seq_len token counts far inside int64.
MAX_BATCH = 2**20
# Tokens per sequence and a model's max_position_embeddings. Attention GEMMs are
# seq_len x seq_len per head; BERT-family models embed 512 positions, long-context ones
# 32k to 64k.
MAX_SEQ_LEN = 2**16
# Encoder layers: the deepest published encoders have about 100; each layer is 14 ops, and
# 10**5 layers took minutes and gigabytes before this limit.
MAX_LAYERS = 2**10
# hidden_size: published models stay below 2**15; a fold count of hidden x hidden weights on
# a small array must stay within MAX_FOLDS-scale schedules.
MAX_HIDDEN = 2**16
# num_attention_heads (they must also divide hidden_size).
MAX_HEADS = 2**12
# intermediate_size (the FFN width), usually 4 x hidden.
MAX_INTERMEDIATE = 2**18
# Classifier outputs (num_labels).
MAX_LABELS = 2**16
# The MACs of one whole forward pass: with at most a few dozen bytes and cycles per MAC,
# every reported count then stays below EXACT_COUNT (2**48 is 2.8e14 MACs: BERT-large at
# batch 1024 and 512 tokens is 2e14).
MAX_WORKLOAD_MACS = 2**48

# -- hardware (array chips and crossbar chips) --------------------------------------------
# Buffer sizes in bytes (256 TiB): far beyond any on-chip memory, and exact in float64.
MAX_BUFFER_BYTES = 2**48
# Clock and ADC sample rates: 1 Hz to 1 THz. Below 1 Hz latencies in seconds overflow to
# infinity for long runs; above 1 THz DRAM bytes per cycle become tiny and cycle counts huge.
MIN_RATE_HZ = 1.0
MAX_RATE_HZ = 1e12
# Bandwidths in bytes/s: 1 B/s to 1e21 B/s (a zettabyte per second stands for "unlimited"
# in tests); beyond it areas priced per GB/s overflow.
MIN_BANDWIDTH = 1.0
MAX_BANDWIDTH = 1e21
# Array-side SRAM port bandwidth in bytes per cycle.
MIN_PORT_BYTES_PER_CYCLE = 1e-3
MAX_PORT_BYTES_PER_CYCLE = 1e12
# Durations of one hardware step (crossbar read cycle, row programming, network hop):
# 1 fs to 1 s.
MIN_STEP_S = 1e-15
MAX_STEP_S = 1.0
# Energy of one action (per MAC, per byte, per bit, per conversion): published figures are
# picojoules to nanojoules; 1 mJ keeps energies of 2**53 actions finite.
MAX_ACTION_J = 1e-3
# Static power of one unit (per PE, per lane, per byte, per tile).
MAX_UNIT_W = 1e3
# Area of one component in um^2 (1 m^2), or mm^2 per GB/s of DRAM interface.
MAX_UNIT_AREA_UM2 = 1e12
# Pipeline latencies in cycles (vector unit, digital unit).
MAX_PIPELINE_CYCLES = 2**20
# SIMD lanes of a digital or vector unit and MACs per cycle of a digital unit.
MAX_LANES = 2**20
MAX_DIGITAL_MACS_PER_CYCLE = 2**24
# N:M groups (M) and the blocks of a BSR format: within the matrix sizes above.
MAX_NM_M = 2**10
MAX_FORMAT_BLOCK = 2**16
# Crossbar copies (replication and its auto maximum).
MAX_REPLICATION = 2**20

# -- pruning ------------------------------------------------------------------------------
# Entries of one weight padded to whole blocks of a block pattern (float32: 256 MB).
MAX_PADDED_ENTRIES = 2**26

# -- study specs --------------------------------------------------------------------------
# Seeds are stored in int64 result columns.
MAX_SEED = 2**63 - 1
# Compression ratios: sparsity 1 - 1/ratio must stay below 1 in float64 and a million to
# one already prunes every weight of any matrix of the sizes above.
MAX_COMPRESSION_RATIO = 2**20
# Design points a study may expand to before it is refused (``cosim study run
# --max-points`` raises it).
MAX_POINTS = 100_000
# Values one grid entry may list.
MAX_GRID_VALUES = 10_000
# Local worker processes of a study (``--jobs``, ``--dask-workers``): each imports torch
# (hundreds of MB), so more than this is a typo, not a machine.
MAX_JOBS = 256

# -- kernels (derived: checked at every kernel entry) -------------------------------------
# Folds of one GEMM schedule: the kernels allocate a few float64 arrays per fold (the fold
# log), so 2**22 folds is about 160 MB; BERT-large's widest GEMM on a 1x1 array is 2**22.
MAX_FOLDS = 2**22
# Bytes of any one array a kernel (or its Python wrapper) allocates.
MAX_KERNEL_ARRAY_BYTES = 2**30
# Inner-loop steps of one kernel call (event schedules over entries x PEs, vectors x
# slices x IMA classes): 2**30 steps is a few seconds of kernel time.
MAX_KERNEL_STEPS = 2**30
# Products the kernels form in int64 (operand bytes, tick counts): kept far from 2**63.
MAX_KERNEL_INT = 2**62

# -- messages -----------------------------------------------------------------------------
# Every error message is cut to this many characters (the middle elided).
MAX_MESSAGE_CHARS = 2000
# Items of a list quoted in a message before "... (N more)".
MAX_LISTED = 8


def describe(value: float) -> str:
    """``value`` for a message: a power of two as ``2**k``, others with separators."""
    if isinstance(value, int) and value > 0 and value & (value - 1) == 0 and value >= 1024:
        return f"{value:,} (2**{value.bit_length() - 1})"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return f"{int(value):,}" if abs(value) < 1e18 else f"{float(value):.3g}"
    return f"{value:.3g}"


def check_limit(quantity: str, value: float, limit: float, hint: str = "") -> None:
    """Raise :class:`SizeLimitError` when ``value`` exceeds ``limit`` (or is not finite):
    ``<quantity> is <value>, over the limit of <limit>[: hint]``; ``quantity`` is a noun
    phrase naming what was counted and where."""
    if (isinstance(value, float) and not math.isfinite(value)) or value > limit:
        message = f"{quantity} is {describe(value)}, over the limit of {describe(limit)}"
        raise SizeLimitError(f"{message}: {hint}" if hint else message)


def check_exact(quantity: str, value: float, hint: str = "") -> None:
    """Refuse a count at or beyond ``EXACT_COUNT``: float64 would not hold it exactly."""
    check_limit(quantity, value, EXACT_COUNT - 1, hint or "counts must stay below 2**53, the "
                "largest integer float64 holds exactly")  # fmt: skip


# A bad value quoted in an error line (its field's name says the rest).
SHOWN_VALUE_CHARS = 40


def shorten(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` cut to ``limit`` characters, the middle replaced by ``... (N more
    characters) ...``, so no message grows without bound."""
    if len(text) <= limit:
        return text
    keep = max(limit - 40, 20)
    head, tail = text[: keep * 3 // 4], text[len(text) - keep // 4 :]
    return f"{head} ... ({len(text) - len(head) - len(tail)} more characters) ... {tail}"


def listed(items: list[str], limit: int = MAX_LISTED) -> str:
    """``a, b, c, ... (N more)``: at most ``limit`` items of a list for a message."""
    shown = ", ".join(items[:limit])
    return f"{shown}, ... ({len(items) - limit} more)" if len(items) > limit else shown
