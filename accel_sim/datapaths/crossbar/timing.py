"""Timing of weight GEMMs on crossbars (``accel_sim.kernels.crossbar_tiles``; time base = ADC
sample periods) and of a whole model pipelined across tiles."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from accel_sim.datapaths.crossbar.mapping import BlockStats, register_depth
from accel_sim.datapaths.crossbar.results import CrossbarOpResult
from accel_sim.kernels import preconditions as pre
from accel_sim.kernels.crossbar_tiles import (
    book_shared_unit,
    crossbar_cycle_stepping,
    crossbar_event_schedule,
)
from accel_sim.spec.crossbar_chip import CrossbarChipConfig
from workloads.ops import GemmOp, GemmRole, VectorKind, Workload

__all__ = ["CrossbarTiming", "crossbar_timing", "cycles", "pipelined_ticks", "ticks"]


def ticks(seconds: float, chip: CrossbarChipConfig, at_least: int = 1) -> int:
    """Seconds as whole ADC sample periods (the crossbar pipeline's time base), rounded up;
    refused (``SizeLimitError``) where int64 kernels could not add them up."""
    value = seconds * chip.crossbar.adc_sample_rate_hz - 1e-9
    pre.check_ticks(f"a duration of {seconds:.3g} s", value)
    return max(at_least, math.ceil(value))


def cycles(seconds: float, clock_hz: float) -> int:
    return math.ceil(seconds * clock_hz - 1e-9) if seconds > 0 else 0


@dataclass(frozen=True)
class CrossbarTiming:
    """Inputs of the ``accel_sim.kernels.crossbar_tiles`` engines for one weight GEMM (one
    replica; ticks = ADC sample periods)."""

    adc_load: np.ndarray  # [X, A] conversions per read of each ADC of each crossbar
    ima_of: np.ndarray  # [X] IMA of each crossbar
    sa_rate: int  # conversions per tick of one IMA's shift-and-add units (0: no limit)
    ima_busiest: np.ndarray  # [K] distinct IMA classes: busiest ADC of the IMA ...
    ima_sa_ticks: np.ndarray  # [K] ... and its shift-and-add ticks per read
    replicas: int
    slices: int
    read_ticks: int
    in_ticks: int
    net_ticks: int
    out_ticks: int
    ir_vectors: int  # vectors the IMA input registers hold

    def finish_ticks(self, arrivals: np.ndarray, engine: str = "event") -> np.ndarray:
        """Tick each vector's output is written (``engine``: event or stepping)."""
        arrivals = np.ascontiguousarray(arrivals, dtype=np.int64)
        busiest = int(self.ima_busiest.max(initial=0)) + int(self.ima_sa_ticks.max(initial=0))
        per_vector = self.slices * (self.read_ticks + busiest) + self.in_ticks
        per_vector += self.net_ticks + self.out_ticks
        pre.check_crossbar_schedule(
            "a crossbar GEMM", len(arrivals), self.slices, max(1, len(self.ima_busiest)),
            per_vector, int(arrivals.max(initial=0)),
        )  # fmt: skip
        scalars = (self.replicas, self.slices, self.read_ticks, self.in_ticks)
        scalars += (self.net_ticks, self.out_ticks, self.ir_vectors)
        if self.adc_load.shape[0] == 0:
            return np.zeros_like(arrivals)
        if engine == "event":
            return crossbar_event_schedule(self.ima_busiest, self.ima_sa_ticks, arrivals, *scalars)
        if engine == "stepping":
            return crossbar_cycle_stepping(
                self.adc_load, self.ima_of, self.sa_rate, arrivals, *scalars
            )
        raise ValueError(f"unknown engine {engine!r}: event or stepping")


def crossbar_timing(
    chip: CrossbarChipConfig, op: GemmOp, stats: BlockStats, replication: int
) -> CrossbarTiming:
    """Map one replica of ``op`` onto crossbars (blocks in row-major order, each block's
    ``crossbars_per_block`` slice crossbars side by side, IMAs filled in order, every op on
    IMAs of its own) and express its pipeline in ticks."""
    xb, enc, tile = chip.crossbar, chip.encoding, chip.tile
    per_block = chip.crossbars_per_block
    mapped = stats.mapped
    load = np.repeat(stats.adc_load[mapped].reshape(-1, xb.adcs_per_crossbar), per_block, axis=0)
    n_xbars = load.shape[0]
    ima_of = np.arange(n_xbars, dtype=np.int64) // tile.crossbars_per_ima
    sa_rate = tile.shift_adds_per_ima * tile.shift_add_ops_per_adc_cycle
    if n_xbars:
        starts = np.arange(0, n_xbars, tile.crossbars_per_ima)
        busiest = np.maximum.reduceat(load.max(axis=1), starts)
        conversions = np.add.reduceat(load.sum(axis=1), starts)
        sa = np.ones_like(conversions) if sa_rate == 0 else -(-conversions // sa_rate)
        # distinct (busiest, sa) rows in lexicographic order, as one sorted int64 key
        span = int(sa.max()) + 1
        keys = np.unique(busiest.astype(np.int64) * span + sa)
        classes = np.stack([keys // span, keys % span], axis=1)
    else:
        classes = np.zeros((0, 2), dtype=np.int64)
    tiles = max(1, math.ceil(n_xbars / tile.crossbars))
    in_bytes, out_bytes = enc.input_bits / 8, enc.output_bits / 8
    ir_vectors = register_depth(stats, per_block, ima_of, tile, in_bytes)
    sum_rows = int(stats.active_rows[mapped].sum())
    sum_cols = int(stats.active_cols[mapped].sum())
    buffer_bw, network_bw = tiles * tile.buffer_bytes_per_s, tiles * tile.network_bytes_per_s
    return CrossbarTiming(
        adc_load=np.ascontiguousarray(load, dtype=np.int64),
        ima_of=ima_of,
        sa_rate=sa_rate,
        ima_busiest=np.ascontiguousarray(classes[:, 0], dtype=np.int64),
        ima_sa_ticks=np.ascontiguousarray(classes[:, 1], dtype=np.int64),
        replicas=replication,
        slices=chip.input_slices,
        read_ticks=ticks(xb.read_cycle_s, chip),
        in_ticks=ticks(stats.active_inputs * in_bytes / buffer_bw, chip),
        net_ticks=ticks((sum_rows * in_bytes + sum_cols * out_bytes) / network_bw, chip),
        out_ticks=ticks(op.n * out_bytes / buffer_bw, chip),
        ir_vectors=ir_vectors,
    )


_BRANCH_ROLES = frozenset({GemmRole.QUERY, GemmRole.KEY, GemmRole.VALUE})
_BARRIER_KINDS = frozenset({VectorKind.SOFTMAX})


class _SharedUnit:
    """The digital unit's busy calendar in ticks (``book_shared_unit``): every pipeline stage
    that runs on it books its jobs here, so their busy times never overlap."""

    def __init__(self) -> None:
        self.starts = np.zeros(64, dtype=np.int64)
        self.ends = np.zeros(64, dtype=np.int64)
        self.count = 0

    def book(self, ready: np.ndarray, durations: np.ndarray) -> np.ndarray:
        need = self.count + len(ready) + 1
        if need > len(self.starts):
            grown = max(need, 2 * len(self.starts))
            self.starts = np.resize(self.starts, grown)
            self.ends = np.resize(self.ends, grown)
        ready = np.ascontiguousarray(ready, dtype=np.int64)
        durations = np.ascontiguousarray(durations, dtype=np.int64)
        finish, self.count = book_shared_unit(self.starts, self.ends, self.count, ready, durations)
        return finish

    @property
    def busy_ticks(self) -> int:
        return int((self.ends[: self.count] - self.starts[: self.count]).sum())


def _serial_stage(ready: np.ndarray, service: int) -> np.ndarray:
    """A server taking tokens in order, ``service`` ticks each: ``out_v = max(out_{v-1},
    ready_v) + service`` in closed form (``service * (v + 1) + cummax(ready_u - service * u)``)."""
    steps = service * np.arange(len(ready), dtype=np.int64)
    return service + steps + np.maximum.accumulate(ready - steps)


def pipelined_ticks(
    workload: Workload,
    chip: CrossbarChipConfig,
    timings: dict[int, CrossbarTiming],
    results: list[CrossbarOpResult],
) -> int:
    """Forward latency in ticks with tokens streamed through every layer's own crossbars.

    Each weight GEMM's input crosses the network to its tiles (one tile's port, in order:
    ``k x input bytes / network_bytes_per_s`` per token, then ``network_hop_s`` in flight) and
    the op's pipeline (``accel_sim.kernels.crossbar_tiles``) starts each token on arrival.
    Query, key and value read the same input side by side. Everything else runs on the one
    digital unit, which every stage shares (``_SharedUnit``: a job takes the earliest gap of
    the unit's calendar, stages booked in program order): streaming vector ops (layernorm,
    GELU, residual adds, the embedding) serve tokens in order, token ``v`` taking its share
    ``floor((v + 1) T / n) - floor(v T / n)`` of the op's layer-by-layer time ``T``. Attention
    (scores, softmax, context) needs every token's key and value: it is a barrier, one job of
    its layer-by-layer time from when the last token is ready, after which every token is
    ready. A non-weight op with a different number of vectors than tokens waits for the last
    token likewise. So the forward takes at least the digital unit's total busy time, and a
    model of one digital op takes exactly its layer-by-layer time."""
    tokens = workload.batch * workload.seq_len
    pre.check_token_arrays("the pipelined forward pass", tokens)
    ready = np.zeros(tokens, dtype=np.int64)
    unit = _SharedUnit()
    source = joined = None  # input and outputs of a query/key/value group
    in_bytes = chip.encoding.input_bits / 8
    hop = ticks(chip.tile.network_hop_s, chip, at_least=0)
    for op, result in zip(workload, results, strict=True):
        branch = isinstance(op, GemmOp) and op.role in _BRANCH_ROLES
        if joined is not None and not branch:
            ready, source, joined = joined, None, None
        op_ticks = ticks(result.latency_s, chip, at_least=0)
        pre.check_crossbar_schedule(op.name, tokens, 1, 1, op_ticks, int(ready.max(initial=0)))
        if isinstance(op, GemmOp) and op.weight_name is not None:
            inputs = ready if source is None else source
            vectors = op.m * op.count
            if vectors != len(inputs):
                inputs = np.full(vectors, inputs.max(initial=0), dtype=np.int64)
            link = ticks(op.k * in_bytes / chip.tile.network_bytes_per_s, chip)
            arrivals = _serial_stage(inputs, link) + hop
            out = timings[id(op)].finish_ticks(arrivals)
            out = np.maximum(out, arrivals) if len(out) else out
            if branch:
                source = inputs if source is None else source
                joined = out if joined is None else np.maximum(joined, out)
            else:
                ready = out
        elif isinstance(op, GemmOp) or op.kind in _BARRIER_KINDS:
            start = np.array([ready.max(initial=0)], dtype=np.int64)
            done = unit.book(start, np.array([op_ticks], dtype=np.int64))[0]
            ready = np.full(len(ready), done, dtype=np.int64)
        elif op_ticks:
            shares = np.diff(np.arange(len(ready) + 1, dtype=np.int64) * op_ticks // len(ready))
            ready = unit.book(ready, shares)
    if joined is not None:
        ready = joined
    return int(ready.max(initial=0))
