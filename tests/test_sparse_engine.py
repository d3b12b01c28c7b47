"""The engine under each sparse support, with real masks attached, and its dense baseline."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accel_sim import simulate
from accel_sim.datapaths import datapath_for
from accel_sim.formats import format_size
from accel_sim.spec import hardware_from_dict, load_hardware
from tests.conftest import hardware_dict
from workloads import attach_masks, build_workload
from workloads.ops import GemmOp, GemmRole


def sparse_hw(rows: int = 8, cols: int = 8, dram_bytes_per_s: float = 16e9, **sparse):
    data = hardware_dict(rows=rows, cols=cols, dram_bytes_per_s=dram_bytes_per_s)
    data["sparse"] = sparse
    return hardware_from_dict(data)


def masked_workload(density: float = 0.25, seed: int = 0, block: int = 1):
    """bert-tiny (2 layers, hidden 128) at seq len 16 with random block masks on its encoder."""
    workload = build_workload("bert-tiny", batch=1, seq_len=16)
    rng = np.random.default_rng(seed)
    masks = {}
    for op in workload.gemms:
        if op.weight_name is None or op.role in (GemmRole.POOLER, GemmRole.CLASSIFIER):
            continue
        grid = rng.random((-(-op.n // block), -(-op.k // block))) < density
        masks[op.weight_name] = np.kron(grid, np.ones((block, block), bool))[: op.n, : op.k]
    return attach_masks(workload, masks)


def test_dense_run_has_no_baseline_and_masked_run_has_one() -> None:
    hw = sparse_hw()
    dense = simulate(build_workload("bert-tiny", batch=1, seq_len=16), hw)
    assert dense.baseline is None and dense.speedup is None
    masked = simulate(masked_workload(), hw)
    assert masked.baseline is not None
    # no sparse support: zeros are multiplied, so timing and energy equal the baseline's
    assert masked.cycles == masked.baseline.cycles == dense.cycles
    assert masked.speedup == 1.0
    assert masked.energy_j == pytest.approx(dense.energy_j)
    assert masked.effective_macs < masked.macs


def test_gating_saves_energy_not_time() -> None:
    workload = masked_workload(density=0.25)
    result = simulate(workload, sparse_hw(zero_handling="gating"))
    assert result.cycles == result.baseline.cycles
    assert result.energy_ratio < 1.0
    gated = [op for op in result.ops if op.weight_nnz is not None]
    assert gated and all(op.mode == "gating" for op in gated)
    assert all(op.macs == op.weight_nnz * op.m * op.count for op in gated)


@pytest.mark.parametrize("fmt", ["bitmap", "csr", "csc", "rle", "bsr"])
def test_compressed_weights_cut_dram_bytes_by_the_format_size(fmt: str) -> None:
    workload = masked_workload(density=0.1)
    hw = sparse_hw(weight_format=fmt, format_block=[4, 4])
    result = simulate(workload, hw)
    dense = result.baseline
    for op, base, gemm in zip(result.ops, dense.ops, workload.ops, strict=True):
        if op.weight_nnz is None:
            continue
        size = format_size(gemm.mask, fmt, value_bits=8, block=(4, 4)).total_bytes
        # weight-stationary fetches each weight once: the saving is exactly dense - compressed
        saved = base.dram_read_bytes - op.dram_read_bytes
        assert saved == pytest.approx((gemm.n * gemm.k - size) * op.count)


def test_memory_bound_layers_gain_from_compression_without_skipping() -> None:
    # 1 GB/s DRAM: every linear layer waits for its weights
    hw = sparse_hw(dram_bytes_per_s=1e9, weight_format="bitmap")
    result = simulate(masked_workload(density=0.1), hw)
    assert result.stall_cycles < result.baseline.stall_cycles
    assert result.speedup > 1.0


def test_unstructured_pe_array_reports_load_imbalance_and_fifo_effect() -> None:
    workload = masked_workload(density=0.1)
    shallow = simulate(
        workload, sparse_hw(rows=4, cols=4, zero_handling="unstructured-pe", fifo_depth=1)
    )
    deep = simulate(
        workload, sparse_hw(rows=4, cols=4, zero_handling="unstructured-pe", fifo_depth=32)
    )
    assert deep.cycles <= shallow.cycles
    masked_ops = [op for op in deep.ops if op.weight_nnz is not None]
    assert all(op.mode == "unstructured-pe" and op.load_imbalance >= 1.0 for op in masked_ops)
    assert deep.load_imbalance is not None and deep.load_imbalance >= 1.0
    assert deep.speedup > 1.0  # 10 % density beats the same 16 PEs running every weight
    frame = deep.to_frame()
    assert {"mode", "load_imbalance", "effective_macs"} <= set(frame.columns)


def test_nm_mode_falls_back_to_dense_when_the_mask_breaks_n_m() -> None:
    result = simulate(masked_workload(density=0.25), sparse_hw(zero_handling="nm", nm=[2, 4]))
    masked = [op for op in result.ops if op.weight_nnz is not None]
    assert masked and all(op.mode == "nm-fallback-dense" for op in masked)


def test_json_carries_baseline_speedup_and_energy_ratio() -> None:
    result = simulate(masked_workload(), sparse_hw(zero_handling="gating"))
    document = result.to_dict()
    assert document["baseline"]["cycles"] == result.baseline.cycles
    assert document["total"]["energy_ratio"] == pytest.approx(result.energy_ratio)
    assert {op["mode"] for op in document["ops"]} >= {"gating", "vector"}


def test_baseline_is_the_unmasked_workload_on_plain_hardware() -> None:
    workload = masked_workload()
    hw = sparse_hw(zero_handling="gating", weight_format="csr")
    result = simulate(workload, hw)
    plain = dataclasses.replace(
        workload,
        ops=tuple(
            dataclasses.replace(op, mask=None) if op.kind == "gemm" else op for op in workload
        ),
    )
    direct = simulate(plain, hw.model_copy(update={"sparse": type(hw.sparse)()}))
    assert result.baseline.cycles == direct.cycles
    assert result.baseline.energy_j == pytest.approx(direct.energy_j)


@given(
    k=st.integers(1, 40),
    n=st.integers(1, 40),
    m=st.integers(1, 12),
    density=st.floats(0.0, 1.0),
    block=st.sampled_from([1, 2, 4]),
    banks=st.integers(1, 8),
    seed=st.integers(0, 2**16),
)
@settings(max_examples=60, deadline=None)
def test_skipping_hardware_never_costs_more_cycles_than_dense(
    k: int, n: int, m: int, density: float, block: int, banks: int, seed: int
) -> None:
    """Against the same array without sparse support (both best-mapped): a layer whose
    compaction would be slower runs dense (``skipping-off``)."""
    hw = sparse_hw(rows=4, cols=4, zero_handling="skipping", ifmap_banks=banks)
    rng = np.random.default_rng(seed)
    grid = rng.random((-(-n // block), -(-k // block))) < density
    mask = np.kron(grid, np.ones((block, block), bool))[:n, :k]
    op = GemmOp("layer.0.query", GemmRole.QUERY, m, k, n, weight_name="w", mask=mask)
    datapath = datapath_for(hw)
    sparse = datapath.gemm_cost(op)
    dense = datapath.dense_baseline().gemm_cost(dataclasses.replace(op, mask=None))
    assert sparse.cycles <= dense.cycles
    assert sparse.mode in ("skipping", "skipping-off")
    if not mask.any():
        assert sparse.compute_cycles == 0 and sparse.mode == "skipping"


def test_masks_with_equal_nnz_hash_differently_and_gating_keeps_format_notes() -> None:
    workload = build_workload("bert-tiny", batch=1, seq_len=16)
    op = next(op for op in workload.gemms if op.weight_name is not None)
    blocked = np.zeros((op.n, op.k), bool)
    blocked[:, : op.k // 2] = True
    scattered = np.zeros((op.n, op.k), bool)
    scattered[:, ::2] = True
    assert blocked.sum() == scattered.sum()
    hw = sparse_hw(zero_handling="gating", weight_format="nm", nm=[2, 4])
    a = simulate(attach_masks(workload, {op.weight_name: blocked}), hw)
    b = simulate(attach_masks(workload, {op.weight_name: scattered}), hw)
    assert a.config_hash != b.config_hash
    gated = next(r for r in a.ops if r.name == op.name)
    assert gated.mode == "gating" and "stored dense" in gated.note  # blocked breaks 2:4


def eie_hw(rows: int = 4, cols: int = 4):
    hw = sparse_hw(
        rows=rows, cols=cols, zero_handling="skipping", weight_format="rle", fifo_depth=8
    )
    return hw.model_copy(update={"datapath": "pe-array"})


def test_the_all_ones_mask_is_kept_once_per_shape_and_cannot_be_written() -> None:
    """A datapath hands every op of a shape the same all-ones mask (the dual-side array's
    unmasked weights among them), so none may change it: it is read-only."""
    from accel_sim import load_hardware
    from accel_sim.datapaths.base import datapath_for

    datapath = datapath_for(load_hardware("dual-side-32x32"))
    ones = datapath.all_ones(3, 5)
    assert ones is datapath.all_ones(3, 5) and ones.shape == (3, 5) and ones.all()
    with pytest.raises(ValueError, match="read-only"):
        ones[0, 0] = False


def test_unmasked_weights_on_the_eie_array_cost_what_all_ones_masks_cost() -> None:
    # The array reads weights only in RLE: a weight without a mask must be stored and walked
    # exactly like an attached all-ones mask (it used to be priced dense, 1 byte a weight).
    workload = build_workload("bert-tiny", batch=1, seq_len=16)
    ones = {
        op.weight_name: np.ones((op.n, op.k), bool)
        for op in workload.gemms
        if op.weight_name is not None
    }
    hw = eie_hw()
    unmasked = simulate(workload, hw)
    masked = simulate(attach_masks(workload, ones), hw)
    for plain, dense_mask in zip(unmasked.ops, masked.ops, strict=True):
        assert plain.cycles == dense_mask.cycles
        assert plain.dram_read_bytes == dense_mask.dram_read_bytes
        assert plain.energy_breakdown_j == pytest.approx(dense_mask.energy_breakdown_j)
    assert unmasked.energy_ratio == pytest.approx(masked.energy_ratio)


@pytest.mark.parametrize(
    ("n_pes", "min_cycles", "run_bits"),
    [(20, 1, 4), (48, 1, 4), (48, 0, 0), (64, 0, 4), (3, 0, 4), (3, 1, 4)],
)
@pytest.mark.parametrize("activations", [None, "per_column", "per_token"])
def test_a_broadcast_all_ones_view_runs_as_an_all_ones_mask(
    n_pes, min_cycles, run_bits, activations
) -> None:
    """The PE array's weight stored whole is a broadcast all-ones view (``_stored_mask``);
    on every path of the fast engine it runs as the all-ones array does: PEs owning equal
    rows (20 on 100 rows: the shape alone is read), some a row more with a minimum entry
    cost (the table by column), without one (the bit rows, 48 PEs; the PEs' words, 64), and
    PEs with rows enough to pad (3, both ways)."""
    from accel_sim.datapaths.pe_array.fifo_array import simulate_unstructured

    shape, m = (100, 30), 3
    rng = np.random.default_rng(n_pes)
    act = {None: None, "per_column": rng.random(shape[1]) < 0.6,
           "per_token": rng.random((m, shape[1])) < 0.6}[activations]  # fmt: skip
    kw = {"activations": act, "min_cycles_per_entry": min_cycles, "run_bits": run_bits,
          "nnz": shape[0] * shape[1]}  # fmt: skip
    view = simulate_unstructured(np.broadcast_to(np.True_, shape), m, n_pes, 4, **kw)
    assert view == simulate_unstructured(np.ones(shape, dtype=bool), m, n_pes, 4, **kw)


def test_dense_mask_on_the_eie_array_runs_its_own_dense_baseline_schedule() -> None:
    """The EIE array's dense baseline is the same 64 PEs and FIFOs storing every weight dense:
    a dense mask takes the same cycles, and differs only by the RLE metadata it walks."""
    hw = load_hardware("eie-64pe")
    m, k, n = 96, 384, 384
    ones = np.ones((n, k), bool)
    op = GemmOp(name="q", role=GemmRole.QUERY, m=m, k=k, n=n, weight_name="w", mask=ones)
    datapath = datapath_for(hw)
    baseline = datapath.dense_baseline()
    assert baseline.name == datapath.name == "pe-array"
    assert baseline.hw.sparse.fifo_depth == hw.sparse.fifo_depth
    eie = datapath.gemm_cost(op)
    base = baseline.gemm_cost(dataclasses.replace(op, mask=None))
    # every PE does its n / P rows for each of the m * k broadcast activations
    assert eie.compute_cycles == base.compute_cycles == m * k * n // hw.pe_count + 1
    # EIE walks its RLE weights (a 4-bit shared-weight index and a 4-bit run: 1 B a weight,
    # plus column pointers and a 16-word codebook) once per token, the baseline its dense ones
    codebook_bytes = 2**4 * hw.word_bytes
    rle = format_size(ones, "rle", value_bits=4, run_bits=4).total_bytes + codebook_bytes
    assert rle / (n * k) == pytest.approx(1.01, abs=0.01)
    assert eie.counts.sram_filter_read_bytes == pytest.approx(m * rle)
    assert base.counts.sram_filter_read_bytes == pytest.approx(m * (n * k * 0.5 + codebook_bytes))
    assert base.counts.macs == eie.counts.macs == m * n * k


@settings(max_examples=30, deadline=None)
@given(density=st.floats(0.02, 1.0), seed=st.integers(0, 2**16), pes=st.sampled_from([4, 16]))
def test_the_pe_array_is_never_slower_than_its_dense_baseline(density, seed, pes) -> None:
    """Skipping zeros on the PE array only removes work: compute cycles never exceed the same
    array running every weight."""
    hw = sparse_hw(rows=1, cols=pes, zero_handling="skipping", weight_format="csc")
    hw = hw.model_copy(update={"datapath": "pe-array"})
    rng = np.random.default_rng(seed)
    mask = rng.random((48, 40)) < density
    op = GemmOp("q", GemmRole.QUERY, 12, 40, 48, weight_name="w", mask=mask)
    datapath = datapath_for(hw)
    sparse = datapath.gemm_cost(op)
    dense = datapath.dense_baseline().gemm_cost(dataclasses.replace(op, mask=None))
    assert sparse.compute_cycles <= dense.compute_cycles
    assert sparse.counts.macs <= dense.counts.macs


def test_cycle_breakdown_splits_every_cycle_and_sparsity_shrinks_only_the_linear_part() -> None:
    """linear + attention + vector + stalls == cycles; weight masks leave the attention GEMMs'
    and vector ops' compute as the dense baseline's."""
    hw = sparse_hw(zero_handling="skipping", weight_format="bsr", format_block=(8, 8))
    result = simulate(masked_workload(density=0.25, block=8), hw)
    split, base = result.cycle_breakdown, result.baseline.cycle_breakdown
    assert sum(split.values()) == result.cycles and sum(base.values()) == result.baseline.cycles
    assert split["linear"] < base["linear"]
    assert split["attention"] == base["attention"] > 0
    assert split["vector"] == base["vector"] > 0


def test_mask_facts_are_kept_per_mask_content_across_micro_batches() -> None:
    """Facts about a mask (N:M fit, stored size) are worked out once per mask content and a
    run's micro-batches reuse them; two different masks of one shape keep their own answers,
    and two arrays with one content share one."""
    workload = build_workload("bert-tiny", batch=4, seq_len=16)
    rng = np.random.default_rng(1)
    masks, fits = {}, {}
    for op in workload.gemms:
        if op.weight_name is None or op.role in (GemmRole.POOLER, GemmRole.CLASSIFIER):
            continue
        fits[op.weight_name] = op.layer == 0
        if fits[op.weight_name]:  # two of every four kept: fits 2:4
            keep = rng.random((op.n, op.k // 4, 4)).argsort(axis=2) < 2
            masks[op.weight_name] = keep.reshape(op.n, op.k)
        else:  # one group of four fully kept: breaks 2:4
            mask = np.zeros((op.n, op.k), dtype=bool)
            mask[0, :4] = True
            masks[op.weight_name] = mask
    hw = sparse_hw(zero_handling="nm", nm=[2, 4], weight_format="bitmap")
    result = simulate(attach_masks(workload, masks), hw)
    modes = {op.name: op.mode for op in result.ops if op.weight_nnz is not None}
    for op in attach_masks(workload, masks).gemms:
        if op.weight_name in fits:
            assert modes[op.name] == ("nm" if fits[op.weight_name] else "nm-fallback-dense")

    datapath = datapath_for(hw)
    op = attach_masks(workload, masks).gemms[0]
    twin = dataclasses.replace(op, mask=op.mask.copy())
    calls = []
    first = datapath.mask_fact(op, "probe", lambda: calls.append(1) or len(calls))
    again = datapath.mask_fact(twin, "probe", lambda: calls.append(1) or len(calls))
    assert first == again == 1 and len(calls) == 1
    other = dataclasses.replace(op, mask=~op.mask)
    assert datapath.mask_fact(other, "probe", lambda: calls.append(1) or len(calls)) == 2
    assert datapath.storage_scale(op) == datapath.storage_scale(twin)
    # The digest is of the bits alone: an all-ones [n, k] and [k, n] share it, not their facts.
    oblong = next(o for o in workload.gemms if o.weight_name and o.n != o.k)
    ones = dataclasses.replace(oblong, mask=np.ones((oblong.n, oblong.k), dtype=bool))
    turned = dataclasses.replace(oblong, n=oblong.k, k=oblong.n, mask=ones.mask.T.copy())
    assert ones.mask_digest == turned.mask_digest
    assert datapath.mask_fact(ones, "shape", lambda: ones.mask.shape) != datapath.mask_fact(
        turned, "shape", lambda: turned.mask.shape
    )


def test_tile_schedules_and_fold_lists_are_shared_per_weight_within_a_run() -> None:
    """A run's searches (the whole batch and each micro-batch) share one schedule per (weight,
    tile rows, columns, plan, memory) and one fold list per weight: a twin mask (same bits,
    another array) gets the very object, another mask or a transposed all-ones weight of the
    same bits does not, and the shared schedule equals a fresh one."""
    from accel_sim.datapaths.systolic.compacting import CompactedWeight
    from accel_sim.kernels import fold_memory as fm
    from accel_sim.traffic import memory_params

    workload = masked_workload(density=0.3)
    hw = sparse_hw(zero_handling="skipping", weight_format="bitmap")
    datapath = datapath_for(hw)
    op = next(o for o in workload.gemms if isinstance(o.mask, np.ndarray) and o.n != o.k)
    twin = dataclasses.replace(op, mask=op.mask.copy())
    plan, mem = fm.FoldPlan(False, True, False, False, False), memory_params(hw)
    alone = datapath.shared_piece(op, op.mask)(8, 0, op.n, plan, mem)
    assert datapath.shared_piece(op, op.mask)(8, 0, op.n, plan, mem) is not alone  # one plan
    datapath.plans_share_work = True  # as a run with micro-batch plans sets it
    tile = datapath.shared_piece(op, op.mask)(8, 0, op.n, plan, mem)
    assert datapath.shared_piece(twin, twin.mask)(8, 0, op.n, plan, mem) is tile
    fresh = datapath.piece(op, op.mask)(8, 0, op.n, plan, mem)
    assert np.array_equal(fresh.stats, tile.stats)
    assert all(np.array_equal(a, b) for a, b in zip(fresh.log, tile.log, strict=True))
    other = dataclasses.replace(op, mask=~op.mask)
    assert datapath.shared_piece(other, other.mask)(8, 0, op.n, plan, mem) is not tile
    assert datapath.shared_piece(op, op.mask)(4, 0, op.n, plan, mem) is not tile

    # The piece built the whole weight's fold lists; columns [1, n) are a weight of their own.
    found = datapath.weight_model(op, op.mask, 0, op.n, lambda: None, {})
    assert isinstance(found, CompactedWeight)
    builds = []
    model = datapath.weight_model(op, op.mask, 1, op.n, lambda: builds.append(1) or object(), {})
    assert datapath.weight_model(twin, twin.mask, 1, op.n, lambda: builds.append(1), {}) is model
    ones = dataclasses.replace(op, mask=np.ones((op.n, op.k), dtype=bool))
    turned = dataclasses.replace(op, n=op.k, k=op.n, mask=ones.mask.T.copy())
    assert ones.mask_digest == turned.mask_digest
    first = datapath.weight_model(ones, ones.mask, 0, op.n, lambda: "n x k", {})
    assert datapath.weight_model(turned, turned.mask, 0, op.n, lambda: "k x n", {}) != first
    assert len(builds) == 1
    # Without plans that share work, a search's own dict keeps them, and nothing else does.
    datapath.plans_share_work = False
    search: dict = {}
    alone = datapath.weight_model(op, op.mask, 2, op.n, lambda: object(), search)
    assert datapath.weight_model(op, op.mask, 2, op.n, lambda: object(), search) is alone
    assert datapath.weight_model(op, op.mask, 2, op.n, lambda: object(), {}) is not alone


def test_kept_tile_schedules_stay_under_their_byte_limit_without_changing_results(
    monkeypatch,
) -> None:
    """Past ``TILE_RUN_BYTES`` new schedules are computed but not kept: the run is the same."""
    import accel_sim.datapaths.systolic.dense as dense
    from accel_sim.mapping import cache

    masks = {op.weight_name: op.mask for op in masked_workload(density=0.3).gemms
             if isinstance(op.mask, np.ndarray)}  # fmt: skip
    workload = attach_masks(build_workload("bert-tiny", batch=2, seq_len=16), masks)
    hw = sparse_hw(zero_handling="skipping", weight_format="bitmap")
    cache.clear()  # both runs search every GEMM
    full = simulate(workload, hw).to_frame()
    cache.clear()
    monkeypatch.setattr(dense, "TILE_RUN_BYTES", 20_000)
    kept = []
    original = dense.SystolicArray.shared_piece

    def spy(self, op, mask):
        kept.append(self._tile_run_bytes)  # what the run holds so far
        return original(self, op, mask)

    monkeypatch.setattr(dense.SystolicArray, "shared_piece", spy)
    capped = simulate(workload, hw).to_frame()
    assert capped.drop(columns="simulation_s", errors="ignore").equals(
        full.drop(columns="simulation_s", errors="ignore"))  # fmt: skip
    assert kept and 0 < max(kept) <= 20_000


def test_kept_schedules_live_for_one_run() -> None:
    """A datapath's kept schedules and fold lists are dropped when it starts another run."""
    from accel_sim.mapping import cache

    hw = sparse_hw(zero_handling="skipping", weight_format="bitmap")
    datapath = datapath_for(hw)
    runs = []
    for seed in (0, 1):
        cache.clear()  # every GEMM searched, not found in the process-wide mapping cache
        # 8x8 blocks: compaction beats the dense schedule, so the sparse layers are searched
        # (conflicting unstructured masks would run dense without a sparse search)
        masks = {op.weight_name: op.mask for op in masked_workload(0.3, seed, block=8).gemms
                 if isinstance(op.mask, np.ndarray)}  # fmt: skip
        kept = []
        original = datapath.shared_piece

        def spy(op, mask, kept=kept, original=original):
            kept.append(set(datapath._tile_runs))  # what the run has kept so far
            return original(op, mask)

        datapath.shared_piece = spy
        datapath.run(attach_masks(build_workload("bert-tiny", batch=2, seq_len=16), masks))
        del datapath.shared_piece
        assert datapath._tile_runs == {} and not datapath.plans_share_work  # dropped after
        runs.append({key[0][2] for keys in kept for key in keys} - {None})
    assert runs[0] and runs[1] and not runs[0] & runs[1]


def test_the_collector_is_paused_during_a_run_and_left_as_it_was(monkeypatch):
    """``simulate`` runs with Python's cyclic collector off and leaves it as it found it, on
    or off, also when the block raises."""
    import gc

    from accel_sim.engine import collector_paused

    seen = []
    enabled = gc.isenabled()
    try:
        gc.enable()
        with collector_paused():
            seen.append(gc.isenabled())
        assert seen == [False] and gc.isenabled()
        with pytest.raises(RuntimeError), collector_paused():
            raise RuntimeError("a run that fails")
        assert gc.isenabled()
        gc.disable()
        with collector_paused():
            pass
        assert not gc.isenabled()  # a caller's own choice stays
        gc.enable()
        hw = load_hardware("systolic-32x32-ws-skip")
        from accel_sim.datapaths.array import ArrayDatapath as datapath

        during: list[bool] = []
        run = datapath.run

        def recorded(self, *args, **kwargs):
            during.append(gc.isenabled())
            return run(self, *args, **kwargs)

        monkeypatch.setattr(datapath, "run", recorded)
        simulate(build_workload("bert-tiny", batch=1, seq_len=8), hw, baseline=True)
        assert during == [False, False] and gc.isenabled()  # the run and its dense baseline
        # threads pausing at once: whatever the interleaving, the last one out restores it
        import sys
        import threading

        def pause_often() -> None:
            for _ in range(3000):
                with collector_paused():
                    pass

        interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)
        try:
            threads = [threading.Thread(target=pause_often) for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        finally:
            sys.setswitchinterval(interval)
        assert gc.isenabled()
    finally:
        (gc.enable if enabled else gc.disable)()


def test_a_replaced_cost_equals_dataclasses_replace():
    """``OpCost.replaced`` (the mapper's fast copy) gives what ``dataclasses.replace`` gives,
    leaves the original as it was, and refuses a field the cost does not have."""
    from accel_sim.energy import ActionCounts
    from accel_sim.op_cost import OpCost

    cost = OpCost(10, 5, ActionCounts(macs=4), folds=2, mode="skipping", note="kept")
    copy = cost.replaced(mapping="ws m4", stall_cycles=7)
    assert copy == dataclasses.replace(cost, mapping="ws m4", stall_cycles=7)
    assert copy.cycles == 17 and cost.cycles == 15 and cost.mapping is None
    assert hash(copy) == hash(dataclasses.replace(cost, mapping="ws m4", stall_cycles=7))
    assert cost.with_mode("dense") == dataclasses.replace(cost, mode="dense")
    with pytest.raises(TypeError, match="no field 'cycle'"):
        cost.replaced(cycle=3)
    # a subclass keeps its class and its own fields
    from accel_sim.datapaths.outer_product.datapath import OuterProductCost

    extra = OuterProductCost(10, 5, ActionCounts(macs=4), accumulator_bytes=8.0)
    assert extra.with_mode("dense") == dataclasses.replace(extra, mode="dense")
    assert type(extra.replaced(accumulator_bytes=2.0)) is OuterProductCost
