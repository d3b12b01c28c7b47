"""Unstructured-sparse PE array (EIE / SparTen style), simulated cycle by cycle.

The model: a linear layer ``y = W x`` runs for each of ``m`` tokens on ``P`` PEs.
``W`` is ``[out, in]`` (torch orientation) with a bool keep-mask.

- *Interleaved rows.* PE p owns output rows i with ``i % P == p`` and stores their nonzeros
  column-wise (CSC, as in EIE). For activation x_j it does ``work[p, j]`` MACs, the number of
  kept weights in column j of its rows (``per_pe_work``), one MAC per cycle. With
  run-length coding (``run_bits > 0``, EIE's 4-bit zero runs) a run of ``L`` zeros before a
  kept weight also stores ``L >> run_bits`` padding entries, and the PE spends a cycle on
  each, as EIE's does (``accel_sim.kernels.sparse_pe.per_pe_entries``).
- *Minimum cost per entry.* Reading the column pointers takes time even for an empty column:
  an entry costs PE p ``max(entries[p, j], min_cycles_per_entry)`` cycles (default 1, as
  EIE's pointer read). With ``min_cycles_per_entry=0`` a PE with no work for column j never sees
  the entry: a per-PE column-occupancy bit filters it at the FIFO input, so it takes neither a
  slot nor a cycle there (popping it for free would let a PE retire several entries a cycle).
- *Activation sparsity.* Zero activations are never broadcast (EIE's leading non-zero
  detection); ``activations`` is a bool ``[in]`` (same for every token) or ``[m, in]`` mask
  of nonzero activations, dense by default. The stream is token-major.
- *Broadcast through FIFOs.* A central unit broadcasts up to ``broadcast_width``
  activations per cycle to all PEs at once, each into its own FIFO of ``fifo_depth`` entries;
  the depth counts the entry the PE is working on (EIE's activation queue), so depth 1 is
  lockstep. The broadcast waits while any accepting FIFO is full; a PE whose FIFO is empty
  idles (starved).
- *Order within a cycle:* PEs start their next entry, then the broadcaster pushes, then PEs
  compute; an entry leaves its FIFO at the end of its last cycle. An entry broadcast in cycle
  t starts in cycle t + 1 at the earliest. ``cycles`` counts from cycle 0 to the cycle in
  which the last MAC (or pointer read, or broadcast) finishes, inclusive. So with
  ``min_cycles_per_entry >= 1`` and depth 2 or more, one PE doing ``c`` cycles per entry for
  ``E`` entries takes ``1 + E*c`` cycles.

Two engines implement these rules (``accel_sim.kernels.sparse_pe``): ``"cycle_stepping"``
advances every PE and FIFO one cycle at a time (slow; small cases) and ``"fast"`` evaluates
the equivalent event recurrence; they agree exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from numbers import Integral

import numpy as np

from accel_sim.kernels import bitops, fifo_bitsliced
from accel_sim.kernels import preconditions as pre
from accel_sim.kernels import sparse_pe as kernels

ENGINES = ("fast", "cycle_stepping")


@dataclass(frozen=True)
class UnstructuredPEStats:
    """Cycles and utilisation of one FC layer on the unstructured-sparse PE array.

    ``owner_busy`` holds the busy cycles of the PEs that own output rows, then, when there
    are more PEs than rows, of one PE that owns none (every such PE is busy as long), so its
    size is bounded by the layer, not by ``n_pes``. ``busy_cycles`` spells it out per PE.
    ``busiest`` and ``owner_busy_sum`` are its largest entry and its sum, worked out from the
    kernel's array when the record is made (``from_busy``): from the tuple they took about
    20 µs an op on a 1,024-PE array, each time the load imbalance was read.
    """

    n_pes: int
    fifo_depth: int
    tokens: int
    entries: int  # activations broadcast
    cycles: int
    broadcast_stall_cycles: int  # cycles with an entry ready but some accepting FIFO full
    owner_busy: tuple[int, ...]  # MAC and pointer-read cycles, see the class docstring
    macs: int
    busiest: int  # max(owner_busy)
    owner_busy_sum: int  # sum(owner_busy)

    @classmethod
    def from_busy(cls, busy: np.ndarray, **fields) -> UnstructuredPEStats:
        """The record of a kernel's per-PE busy cycles ``busy`` (``owner_busy``'s entries;
        summed in Python's integers where an int64 sum could overflow)."""
        owner_busy = tuple(busy.tolist())
        busiest = int(busy.max(initial=0))
        if busiest * len(owner_busy) < 2**63:
            total = int(busy.sum(dtype=np.int64))
        else:
            total = sum(owner_busy)
        return cls(owner_busy=owner_busy, busiest=busiest, owner_busy_sum=total, **fields)

    @property
    def _idle_pes(self) -> int:
        """PEs past the layer's rows, all busy ``owner_busy[-1]`` cycles (0 when none)."""
        return self.n_pes - len(self.owner_busy) + 1 if len(self.owner_busy) < self.n_pes else 0

    @property
    def busy_cycles(self) -> tuple[int, ...]:
        """Per PE: MAC and pointer-read cycles (a tuple of ``n_pes`` entries)."""
        idle = self._idle_pes
        if not idle:
            return self.owner_busy
        return self.owner_busy[:-1] + (self.owner_busy[-1],) * idle

    @property
    def idle_cycles(self) -> tuple[int, ...]:
        """Per PE: cycles neither computing nor reading pointers (starved or finished)."""
        return tuple(self.cycles - b for b in self.busy_cycles)

    @property
    def _total_busy(self) -> int:
        idle = self._idle_pes
        if not idle:
            return self.owner_busy_sum
        return self.owner_busy_sum + self.owner_busy[-1] * (idle - 1)

    @property
    def idle_fraction(self) -> float:
        """Total idle PE-cycles over ``n_pes * cycles`` (0.0 for an empty run)."""
        if self.cycles == 0:
            return 0.0
        return (self.n_pes * self.cycles - self._total_busy) / (self.n_pes * self.cycles)

    @property
    def load_imbalance(self) -> float:
        """``max_p busy_p / mean_p busy_p``: 1.0 when balanced, and when no PE is busy."""
        total = self._total_busy
        if total == 0:
            return 1.0
        return self.busiest * self.n_pes / total

    @property
    def utilisation(self) -> float:
        """Effective utilisation: useful MACs over ``n_pes * cycles`` (0.0 for an empty run)."""
        if self.cycles == 0:
            return 0.0
        return self.macs / (self.n_pes * self.cycles)

    @property
    def ideal_cycles(self) -> float:
        """MACs / n_pes: perfectly balanced, no pointer reads, no stalls."""
        return self.macs / self.n_pes


def _check_count(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_mask(mask) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != 2 or mask.dtype != np.bool_:
        raise ValueError(
            f"mask must be a 2-D bool keep-mask [out, in]; got dtype {mask.dtype}, "
            f"shape {mask.shape}"
        )
    return mask


def per_pe_work(mask, n_pes: int) -> np.ndarray:
    """``[n_pes, in]`` int64: kept weights of PE p's rows (``i % n_pes == p``) in column j."""
    mask = _check_mask(mask)
    n_pes = _check_count("n_pes", n_pes, 1)
    out, n_in = mask.shape
    padded = -(-out // n_pes) * n_pes
    if padded != out:
        mask = np.concatenate([mask, np.zeros((padded - out, n_in), dtype=bool)])
    # row r * n_pes + p sits at [r, p]
    return mask.reshape(-1, n_pes, n_in).sum(axis=0, dtype=np.int64)


def _one_row_each(mask: np.ndarray, simulated: int) -> np.ndarray:
    """``per_pe_work`` when every PE owns at most one row: row p for PE p, then zero rows
    (here one, for every PE that owns none)."""
    work = np.zeros((simulated, mask.shape[1]), dtype=np.int64)
    work[: mask.shape[0]] = mask
    return work


def _uniform_cost(out: int, n_pes: int, min_cycles: int) -> tuple[int, int] | None:
    """(cycles, PEs) when ``PEs`` of the simulated ones spend the same cycles on every
    column of a dense layer and any other takes none (a dense column stores no RLE
    padding); else None. Past the rows one PE stands for those owning none: it reads every
    pointer when entries cost at least a cycle, else it filters every column."""
    if out == 0:  # no rows: the one PE filters every column or reads every pointer
        return None
    if n_pes > out:
        return (min_cycles, out + 1) if min_cycles >= 1 else (1, out)
    if out % n_pes:  # some PEs own a row more than others
        return None
    return max(out // n_pes, min_cycles), n_pes


def _entry_costs(mask, n_pes, simulated, run_bits, min_cycles) -> np.ndarray:
    """``[simulated, in]`` cycles each PE spends on each column's entry: its entries
    (kept weights, with RLE padding when ``run_bits`` > 0), at least ``min_cycles``."""
    if run_bits == 0:
        out = mask.shape[0]
        work = per_pe_work(mask, n_pes) if n_pes <= out else _one_row_each(mask, simulated)
    else:  # RLE entries (padding included) of the same PEs (row p on PE p when n_pes > out)
        work = kernels.per_pe_entries(np.ascontiguousarray(mask), simulated, run_bits)
    if min_cycles > np.iinfo(work.dtype).max:  # the int32 entry table cannot hold it
        work = work.astype(np.int64)
    return np.maximum(work, min_cycles, out=work)


def _broadcast_stream(activations, m: int, n_in: int) -> tuple[np.ndarray, int]:
    """(columns of one pass, passes): the token-major stream of nonzero activations."""
    if activations is None:
        return np.arange(n_in, dtype=np.int64), m
    act = np.asarray(activations)
    if act.dtype != np.bool_ or act.shape not in ((n_in,), (m, n_in)):
        raise ValueError(
            f"activations must be a bool mask of nonzero activations, shape ({n_in},) or "
            f"({m}, {n_in}); got dtype {act.dtype}, shape {act.shape}"
        )
    if act.ndim == 1:
        return np.flatnonzero(act).astype(np.int64), m
    return np.nonzero(act)[1].astype(np.int64), 1  # row-major: token by token


def simulate_unstructured(
    mask,
    m: int,
    n_pes: int,
    fifo_depth: int,
    *,
    activations=None,
    min_cycles_per_entry: int = 1,
    broadcast_width: int = 1,
    run_bits: int = 0,
    engine: str = "fast",
    what: str = "the layer",
    memo: dict | None = None,
    nnz: int | None = None,
    columns: Callable[[], tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None,
) -> UnstructuredPEStats:
    """Run ``m`` tokens of the layer with keep-mask ``mask`` ``[out, in]`` on the PE array.

    ``activations``: optional bool ``[in]`` or ``[m, in]`` mask of nonzero activations
    (dense when None). ``run_bits``: the RLE run width whose padding entries cost cycles (0:
    no padding, e.g. CSC). ``engine``: ``"fast"`` (event recurrence) or ``"cycle_stepping"``.
    ``what`` names the layer in a size-limit error (``accel_sim.kernels.preconditions``).
    ``memo``: a dict the caller keeps for this one mask: without an activation mask, the
    fast engine's periodic summary is kept there, so a larger number of tokens skips the
    PEs' work table and the recurrence (``sparse_pe.repeated_finish``: the same numbers,
    exactly). ``nnz``: the mask's kept weights, when the caller knows them (exactly: a count
    equal to the mask's size sends it down the dense layer's path). ``columns``: gives the
    mask's ``sparse_pe.column_bits`` when the caller keeps them (the PE array's run-length
    size reads them too); asked only where the PE lists are built from them.
    """
    mask = _check_mask(mask)
    m = _check_count("m", m, 1)
    n_pes = _check_count("n_pes", n_pes, 1)
    fifo_depth = _check_count("fifo_depth", fifo_depth, 1)
    min_cycles = _check_count("min_cycles_per_entry", min_cycles_per_entry, 0)
    width = _check_count("broadcast_width", broadcast_width, 1)
    run_bits = _check_count("run_bits", run_bits, 0)
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    cols, repeats = _broadcast_stream(activations, m, mask.shape[1])
    entries = int(cols.shape[0]) * repeats
    # A FIFO deeper than the stream never fills: the kernels give the same numbers with the
    # depth cut to the number of entries, and allocate no more than that.
    depth = max(1, min(fifo_depth, entries))
    # PEs past the layer's rows (``n_pes > out``) own no row: they see the same entries at
    # the same cost, so they keep identical FIFOs and times. One of them stands for all, and
    # the kernels' size is bounded by the layer, not by the PE count.
    out = mask.shape[0]
    owners = min(n_pes, out)
    simulated = owners + (1 if n_pes > out else 0)
    # A repeated stream (no activation mask) under the fast engine: the recurrence adds the
    # passes left in one step once the schedule repeats, after a few passes, so its work is
    # the passes it runs; it runs at most as many as the kernel-step limit allows, and a
    # schedule that has not repeated by then is refused as the whole stream would be.
    per_pass = int(cols.shape[0])
    max_passes = repeats
    if activations is None and engine == "fast":
        pass_steps = max(1, simulated * per_pass)
        max_passes = min(repeats, max(1, pre.MAX_KERNEL_STEPS // pass_steps))
    pre.check_fifo_array(what, simulated, mask.shape[1], per_pass * max_passes, depth)
    kept = int(np.count_nonzero(mask)) if nnz is None else nnz
    key = ("periodic", n_pes, run_bits, min_cycles, depth, width)
    # only a repeated stream (no activation mask) under the fast engine has a summary to keep
    keeps = memo is not None and activations is None and engine == "fast"
    periodic = memo.get(key) if keeps else None
    if periodic is not None and periodic[0] < repeats:
        cycles, stall, busy = kernels.repeated_finish(periodic, cols.shape[0], repeats, width)
    elif engine != "fast":
        cost = _entry_costs(mask, n_pes, simulated, run_bits, min_cycles)
        cycles, stall, busy = kernels.fifo_cycle_stepping(cost, cols, repeats, depth, width)
    else:
        uniform = _uniform_cost(out, n_pes, min_cycles) if kept == mask.size else None
        if uniform is not None:
            cost, working = uniform
            cycles, stall, busy, periodic = kernels.fifo_event_periodic_uniform(
                cost, working, simulated - working, mask.shape[1], cols, repeats, depth,
                width, max_passes,
            )  # fmt: skip
        elif min_cycles == 0 and not kernels.pads(out, simulated, run_bits):
            # each entry-table cell is a PE's kept weights of a column: the recurrence reads
            # them from the mask's bits, without the [P, in] table (the same numbers); with
            # one row a PE, or PEs a multiple of 64, the FIFOs step 64 a word, cycle by cycle,
            # where that is faster (``fifo_bitsliced.applies``), else the recurrence reads
            # each column's row bits
            types = kernels.csc_types(simulated, out)
            if simulated >= out or simulated % 64 == 0:  # one row a PE, or a PE's rows at one bit
                if columns is None:
                    bits = kernels.column_bits(np.ascontiguousarray(mask))
                else:
                    bits = columns()
                if fifo_bitsliced.applies(simulated, out, depth):
                    cycles, stall, busy, periodic = fifo_bitsliced.fifo_bitsliced(
                        bits, simulated, cols, repeats, depth, width, max_passes
                    )
                else:
                    cycles, stall, busy, periodic = kernels.fifo_event_periodic_pe_words(
                        bits, simulated, *types, cols, repeats, depth, width, max_passes
                    )
            else:
                cycles, stall, busy, periodic = kernels.fifo_event_periodic_kept(
                    bitops.pack_rows(mask), simulated, mask.shape[1], *types, cols, repeats,
                    depth, width, max_passes,
                )  # fmt: skip
        elif 1 <= min_cycles <= np.iinfo(np.int32).max and mask.size:
            # each entry costs a cycle at least, so every FIFO takes every column: the
            # recurrence reads the table by column, built so in one kernel (the same numbers)
            by_col = kernels.entry_cost_columns(
                np.ascontiguousarray(mask), simulated, run_bits, min_cycles
            )
            cycles, stall, busy, periodic = kernels.fifo_event_periodic_columns(
                by_col, cols, repeats, depth, width, max_passes
            )
        else:
            cost = _entry_costs(mask, n_pes, simulated, run_bits, min_cycles)
            cycles, stall, busy, periodic = kernels.fifo_event_periodic(
                cost, cols, repeats, depth, width, max_passes
            )
        if cycles < 0:  # no repeat within the passes allowed: the whole stream's bound
            pre.check_fifo_array(what, simulated, mask.shape[1], entries, depth)
        if keeps and periodic[0] >= 0:
            memo[key] = periodic  # a few PE-sized arrays: kept, not the work table
    if activations is None:  # every column broadcast once per token
        macs = kept * repeats
    else:
        col_nnz = mask.sum(axis=0, dtype=np.int64)  # every PE's kept weights of each column
        macs = int(col_nnz[cols].sum()) * repeats
    return UnstructuredPEStats.from_busy(
        np.asarray(busy),
        n_pes=n_pes,
        fifo_depth=fifo_depth,
        tokens=m,
        entries=int(cols.shape[0]) * repeats,
        cycles=int(cycles),
        broadcast_stall_cycles=int(stall),
        macs=macs,
    )


def warm_up() -> None:
    """Compile (or load from the on-disk cache) both engines and the fast engine's three
    paths (a dense layer on equal PEs, kept weights read from bits, the entry table by
    column), so timings exclude JIT."""
    dense = np.ones((2, 2), dtype=bool)
    sparse = np.array([[True, False], [False, True]])
    for engine in ENGINES:
        simulate_unstructured(dense, 1, 2, 1, engine=engine, run_bits=4)
    simulate_unstructured(sparse, 1, 2, 1, min_cycles_per_entry=0)
    simulate_unstructured(sparse, 1, 2, 1, min_cycles_per_entry=1)
