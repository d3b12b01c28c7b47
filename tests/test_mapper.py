"""The mapper (accel_sim.mapping): bounds a best-mapped run respects, and the optimum it finds.

- **The physical bound.** Against its best-mapped dense baseline, no sparse GEMM is faster
  than ``g / d``: ``d`` is the density the datapath can exploit (the mask's kept fraction
  for skipping and the PE array, N/M for N:M mode, which cannot use sparser groups), and
  ``g >= 1`` is the dense array's padding, ``ceil(K/R) R ceil(N/C) C / (K N)``: slots the
  dense folds waste on partial tiles that compacted folds need not (``g = 1`` when the array
  divides the weight). The bound holds when the dense operands fit their buffers; where
  they do not, a compacted weight that fits can spare re-reads the dense run cannot avoid (a
  capacity effect, superlinear in 1/d, as on real chips), so there any excess must come from
  the dense run's DRAM traffic above compulsory.
- **Batches.** Every divisor b of a batch B is a plan the mapper can take (B/b micro-batches,
  and M tiles of one sequence), so sequences/s at B is never below that at b: in particular
  never below batch 1, and non-decreasing along 1, 2, 4, 8, ...
- **Resources.** A larger buffer or more DRAM bandwidth never slows a GEMM.
- **A hand-computed optimum**, and the mapping reported in every output.
"""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accel_sim import load_hardware, simulate
from accel_sim.datapaths import datapath_for
from accel_sim.engine import without_masks
from accel_sim.kernels import fold_memory as fm
from accel_sim.mapping import cache
from accel_sim.mapping.space import Mapping, balanced, tile_candidates, tilings
from accel_sim.spec import derive, hardware_from_dict
from accel_sim.traffic import memory_params
from tests.conftest import hardware_dict
from workloads import GemmOp, GemmRole, Workload, build_workload

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def one_gemm(m: int, k: int, n: int, mask=None, count: int = 1) -> Workload:
    op = GemmOp("w", GemmRole.FFN_IN, m=m, k=k, n=n, count=count, weight_name="w", mask=mask)
    return Workload(model_name="gemm", batch=1, seq_len=m, ops=(op,))


@st.composite
def sparse_cases(draw):
    dataflow = draw(st.sampled_from(["ws", "os", "is"]))
    mode = draw(st.sampled_from(["skipping", "nm"]))
    rows, cols = draw(st.sampled_from([2, 4, 8, 16])), draw(st.sampled_from([2, 4, 8, 16]))
    m, k, n = draw(st.integers(1, 96)), 4 * draw(st.integers(1, 24)), draw(st.integers(1, 96))
    spec = hardware_dict(
        rows=rows,
        cols=cols,
        dataflow=dataflow,
        sram_bytes=draw(st.sampled_from([512, 4096, 65536, 1 << 20])),
        dram_bytes_per_s=draw(st.sampled_from([1e8, 4e9, 64e9, 1e12])),
        double_buffered=draw(st.booleans()),
    )
    spec["cores"] = draw(st.sampled_from([1, 1, 2, 4]))
    spec["sparse"] = {
        "zero_handling": mode,
        "weight_format": draw(st.sampled_from(["dense", "bitmap", "csr", "bsr"])),
        "nm": [2, 4],
    }
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if mode == "nm":
        mask = (np.argsort(rng.random((n, k // 4, 4)), axis=2) < 2).reshape(n, k)
        density = 0.5
    else:
        if draw(st.booleans()):
            mask = rng.random((n, k)) < draw(st.floats(0.02, 1.0))
        else:
            grid = rng.random((-(-n // 4), -(-k // 4))) < draw(st.floats(0.05, 1.0))
            mask = np.kron(grid, np.ones((4, 4), dtype=bool))[:n, :k]
        density = float(mask.mean())
    return hardware_from_dict(spec), one_gemm(m, k, n, mask), density


def dense_operands_fit(hw, op: GemmOp) -> bool:
    """Inputs, weight and partial sums of the whole GEMM each fit their buffer (halved when
    double buffered): the dense run then needs no re-read."""
    mem = memory_params(hw)
    return (
        op.m * op.k * mem.word_bytes <= mem.ifmap_capacity_bytes
        and op.k * op.n * mem.word_bytes <= mem.filter_capacity_bytes
        and op.m * op.n * mem.acc_bytes <= mem.ofmap_capacity_bytes
    )


def padded_bound(hw, op: GemmOp, density: float) -> float:
    rows, cols = hw.pe_array.rows, hw.pe_array.cols
    padding = (math.ceil(op.k / rows) * rows * math.ceil(op.n / cols) * cols) / (op.k * op.n)
    return padding / density


@pytest.mark.parametrize("m", [1, 5, 128, 4096])
def test_a_group_of_the_space_is_its_tile_counts_made_once(m):
    """``tilings`` gives one mapping per tile count, fewest first, the same objects every
    time (the mapper shares them across searches); ``balanced`` splits exactly."""
    group = tilings(True, m, "none", 1, True)
    assert group == tuple(Mapping(True, t, "none", 1, True) for t in tile_candidates(m))
    assert tilings(True, m, "none", 1, True) is group
    for mapping in group:
        sizes = balanced(m, min(mapping.m_tiles, m))
        assert sum(size * count for size, count in sizes) == m
        assert sum(count for _, count in sizes) == min(mapping.m_tiles, m)
        assert max(size for size, _ in sizes) - min(size for size, _ in sizes) <= 1


@SETTINGS
@given(sparse_cases())
def test_no_sparse_gemm_beats_its_bound_over_the_best_mapped_dense_baseline(case):
    hw, workload, density = case
    if density == 0:
        return  # nothing to compute: no finite bound
    op = workload.ops[0]
    bound = padded_bound(hw, op, density)
    result = simulate(workload, hw)
    dense = result.baseline.ops[0]
    mappings = (result.ops[0].mapping, dense.mapping)
    if dense_operands_fit(hw, op):
        assert result.speedup <= bound * (1 + 1e-9), mappings
    elif result.speedup > bound * (1 + 1e-9):
        compulsory = datapath_for(hw).dense_baseline().compulsory_dram_bytes(without_masks(
            workload).ops[0])  # fmt: skip
        assert dense.stall_cycles > 0, mappings
        assert dense.dram_bytes > compulsory * (1 + 1e-9), mappings


def test_a_compacted_weight_that_fits_its_buffer_can_beat_one_over_density():
    """The capacity effect the bound excludes: a 40x13 weight at 2/3 density, 64 tokens, on a
    2x2 input-stationary array with 384-byte buffers. The dense weight (520 B) overflows the
    filter buffer, so the dense baseline's best mapping cuts M into 12 tiles of 6 rows (its
    inputs and partial sums then fit) and reads the weight once a tile; the compacted weight
    (348 B) stays, so one M tile reads only the compulsory bytes, DRAM reads fall 2.9x and
    the memory-bound GEMM runs 2.4x faster at density 0.67. With 4 KiB buffers both fit and
    the bound holds."""
    spec = hardware_dict(rows=2, cols=2, dataflow="is", sram_bytes=384, dram_bytes_per_s=1e8,
                         double_buffered=False)  # fmt: skip
    spec["sparse"] = {"zero_handling": "skipping", "weight_format": "dense"}
    rng = np.random.default_rng(343)
    grid = rng.random((4, 10)) < 0.38
    mask = np.kron(grid, np.ones((4, 4), dtype=bool))[:13, :40]
    workload = one_gemm(64, 40, 13, mask)
    density = float(mask.mean())
    hw = hardware_from_dict(spec)
    small = simulate(workload, hw)
    bound = padded_bound(hw, workload.ops[0], density)
    assert round(density, 3) == 0.669 and small.speedup > 1.4 * bound
    assert small.baseline.ops[0].mapping.endswith("12 M tiles of 6 overlapped")
    assert small.baseline.ops[0].dram_read_bytes == 12 * 40 * 13 + 64 * 40
    assert small.ops[0].dram_read_bytes == 40 * 13 + 64 * 40  # compulsory
    spec["sram"] = {**spec["sram"]}
    for buffer in ("ifmap", "filter", "ofmap"):
        spec["sram"][buffer] = {**spec["sram"][buffer], "size_bytes": 4096}
    roomy = hardware_from_dict(spec)
    assert dense_operands_fit(roomy, workload.ops[0])
    assert simulate(workload, roomy).speedup <= bound


def test_2_to_4_on_a_tall_skinny_gemm_is_at_most_2x():
    """4096x64x32 on systolic-32x32-ws-nm: SCALE-Sim's loop order spills the dense run's
    partial sums and gave 2.75x; against the best-mapped baseline 2:4 gains at most 2x."""
    rng = np.random.default_rng(0)
    m, k, n = 4096, 64, 32
    mask = (np.argsort(rng.random((n, k // 4, 4)), axis=2) < 2).reshape(n, k)
    hw = load_hardware("systolic-32x32-ws-nm")
    workload = one_gemm(m, k, n, mask)
    scalesim = derive(hw, {"mapping.search": "fixed", "mapping.preload": "serial",
                           "residency.activations_on_chip": False})  # fmt: skip
    assert simulate(workload, scalesim).speedup > 2.7  # the template's artefact
    result = simulate(workload, hw)
    assert result.speedup <= 2.0


@st.composite
def small_chips(draw):
    spec = hardware_dict(
        rows=draw(st.sampled_from([4, 8, 16])),
        cols=draw(st.sampled_from([4, 8, 16])),
        dataflow=draw(st.sampled_from(["ws", "os", "is"])),
        sram_bytes=draw(st.sampled_from([4096, 65536, 1 << 20])),
        dram_bytes_per_s=draw(st.sampled_from([1e9, 16e9, 256e9])),
        double_buffered=draw(st.booleans()),
    )
    return hardware_from_dict(spec)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_chips(), st.sampled_from([16, 32, 64]))
def test_sequences_per_s_never_fall_below_a_divisor_batch(hw, seq_len):
    def rate(batch: int) -> float:
        workload = build_workload("bert-tiny", batch=batch, seq_len=seq_len)
        return simulate(workload, hw).sequences_per_s

    rates = {batch: rate(batch) for batch in (1, 2, 3, 4, 6, 8)}
    for batch, rate in rates.items():
        for divisor in rates:
            if batch % divisor == 0:
                assert rate >= rates[divisor] * (1 - 1e-12), (batch, divisor, rates)


@SETTINGS
@given(
    small_chips(),
    st.integers(1, 200),
    st.integers(1, 200),
    st.integers(1, 200),
    st.sampled_from(["sram.ifmap.size_bytes", "sram.filter.size_bytes",
                     "sram.ofmap.size_bytes", "dram.bandwidth_bytes_per_s"]),
)  # fmt: skip
def test_a_larger_buffer_or_more_bandwidth_never_slows_a_gemm(hw, m, k, n, field):
    workload = one_gemm(m, k, n)
    base = simulate(workload, hw).cycles
    node = hw.model_dump()
    for part in field.split("."):
        node = node[part]
    assert simulate(workload, derive(hw, {field: node * 2})).cycles <= base


def test_mapper_finds_the_hand_computed_optimum():
    """16x16x16 on a 4x4 weight-stationary array, 1 byte a word, DRAM at 1 byte a cycle:
    memory-bound, so the best mapping is the one moving the fewest bytes.

    - ``N>K`` (SCALE-Sim's order): the 64-byte ifmap half-buffer cannot hold the 256-byte
      input, so each of the 16 folds reloads its 16 x 4 chunk: 1024 B, plus 256 B of weights
      and 256 B of outputs = 1536 B.
    - ``K>N``: each input chunk serves the 4 column folds in a row: 4 x 64 = 256 B; the 16 x 16
      int32 partial sums (1 KiB) fit the ofmap half-buffer, so nothing spills: 768 B.
    - Cutting M into tiles only adds weight reloads (the filter half-buffer holds 64 B, not the
      256-byte weight): two tiles move 256 B more.

    So the optimum is ``K>N`` untiled, 768 bytes, within a fold's compute of 768 cycles."""
    spec = hardware_dict(rows=4, cols=4, dataflow="ws", dram_bytes_per_s=1e9, sram_bytes=128)
    spec["sram"]["ofmap"]["size_bytes"] = 4096
    for buffer in ("ifmap", "filter", "ofmap"):
        spec["sram"][buffer]["bytes_per_cycle"] = 1e6
    spec["residency"] = {"activations_on_chip": False}
    hw = hardware_from_dict(spec)
    op = simulate(one_gemm(16, 16, 16), hw).ops[0]
    assert op.mapping == "K>N overlapped"
    assert op.dram_bytes == 768
    fixed = simulate(one_gemm(16, 16, 16), derive(hw, {"mapping.search": "fixed"})).ops[0]
    assert fixed.mapping == "N>K overlapped" and fixed.dram_bytes == 1536
    assert 768 <= op.cycles <= 768 + (2 * 4 + 4 - 2 + 16)
    assert fixed.cycles >= 1536


def test_the_mapping_is_in_every_output(tmp_path):
    result = simulate(build_workload("bert-tiny", seq_len=32), load_hardware("systolic-32x32-ws"))
    gemms = [op for op in result.ops if op.kind == "gemm"]
    assert all(op.mapping for op in gemms)
    assert all(op.mapping is None for op in result.ops if op.kind != "gemm")
    document = json.loads(json.dumps(result.to_dict()))
    assert [op["mapping"] for op in document["ops"]] == [op.mapping for op in result.ops]
    frame = result.to_frame()
    assert [None if isinstance(v, float) else v for v in frame["mapping"]] == [
        op.mapping for op in result.ops
    ]


def test_outputs_kept_on_chip_skip_dram_and_say_so():
    """With 1 MiB buffers bert-tiny's activations fit: ops read their inputs from the
    buffers, and the DRAM bytes they avoided are reported."""
    spec = hardware_dict(rows=16, cols=16, sram_bytes=1 << 20, dram_bytes_per_s=4e9)
    kept = hardware_from_dict(spec)
    spilled = derive(kept, {"residency.activations_on_chip": False})
    workload = build_workload("bert-tiny", seq_len=64)
    on_chip, off_chip = simulate(workload, kept), simulate(workload, spilled)
    assert on_chip.dram_bytes_avoided > 0 and off_chip.dram_bytes_avoided == 0
    assert on_chip.dram_bytes < off_chip.dram_bytes
    assert on_chip.cycles <= off_chip.cycles
    # the logits are read by nothing: they leave the chip
    assert on_chip.ops[-1].dram_write_bytes > 0


def test_resident_weights_load_nothing_or_the_run_says_why():
    spec = hardware_dict(rows=16, cols=16, sram_bytes=1 << 20, dram_bytes_per_s=4e9)
    spec["residency"] = {"weights_resident": True}
    workload = build_workload("bert-tiny", seq_len=16)
    fits = simulate(workload, hardware_from_dict(spec))
    assert not fits.notes
    weighted = [op for op in fits.ops if op.kind == "gemm" and op.role not in
                ("attention_scores", "attention_context")]  # fmt: skip
    assert all(op.dram_bytes_avoided > 0 for op in weighted)
    spec["sram"]["filter"]["size_bytes"] = 4096
    small = simulate(workload, hardware_from_dict(spec))
    assert len(small.notes) == 1 and "do not fit" in small.notes[0]


def test_cores_share_dram_and_split_the_work():
    """Two cores: a compute-bound GEMM runs about twice as fast; a global buffer that holds
    the shared weight fetches it from DRAM once instead of once per core."""
    spec = hardware_dict(rows=8, cols=8, sram_bytes=1 << 16, dram_bytes_per_s=1e12)
    one = hardware_from_dict(spec)
    two = derive(one, {"cores": 2})
    workload = one_gemm(256, 256, 256)
    single, double = simulate(workload, one), simulate(workload, two)
    assert single.cycles / double.cycles > 1.8
    assert two.pe_count == 2 * one.pe_count
    split_m = derive(two, {"mapping.search": "fixed"})  # fixed: split along N
    assert "2 cores split n" in simulate(workload, split_m).ops[0].mapping
    shared = derive(two, {"global_buffer": {"size_bytes": 1 << 20, "bytes_per_cycle": 64}})
    with_global = simulate(workload, shared)
    assert with_global.energy_breakdown_j["sram_global"] >= 0
    assert with_global.cycles <= double.cycles * 1.001


def test_mapping_search_is_cached_per_shape():
    cache.clear()
    hw = load_hardware("systolic-32x32-ws")
    workload = build_workload("bert-tiny", seq_len=32)
    first = simulate(workload, hw)
    misses = cache.misses
    again = simulate(workload, hw)
    assert cache.misses == misses and cache.hits > 0
    assert first == again


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
def test_the_fixed_serial_mapping_is_scalesims_schedule(dataflow):
    """With ``mapping.search: fixed``, serial preload and nothing kept on chip, every op's
    compute is the kernel's SCALE-Sim-exact count plus the one cycle of its last index."""
    from accel_sim.datapaths.systolic.dense import gemm_stats

    hw = hardware_from_dict(hardware_dict(rows=8, cols=8, dataflow=dataflow, mapping="fixed"))
    for op in simulate(build_workload("bert-tiny", seq_len=32), hw).ops:
        if op.kind == "gemm":
            stats = gemm_stats(op.m, op.k, op.n, hw)
            assert op.compute_cycles == op.count * (stats[fm.COMPUTE_CYCLES] + 1)
            assert op.cycles == op.count * (stats[fm.TOTAL_CYCLES] + 1)


def test_the_batch_study_shows_the_mapper_keeps_throughput_from_falling(tmp_path):
    """The built-in ``batch`` study (mapper on and off, three buffer sizes): with the mapper
    every design's sequences/s is non-decreasing along batches 1, 2, 4, ... 32."""
    from studies.spec import expand, load_spec

    spec, base = load_spec("batch")
    points = expand(spec, base)
    assert {p["batch"] for p in points} == {1, 2, 4, 8, 16, 32}
    best = [p for p in points if p["hardware"]["mapping"]["search"] == "best"]
    rates: dict[str, list[tuple[int, float]]] = {}
    for point in best:
        hw = hardware_from_dict(point["hardware"])
        workload = build_workload(point["model"], batch=point["batch"], seq_len=point["seq_len"])
        key = str(point["hardware"]["sram"])
        rates.setdefault(key, []).append((point["batch"], simulate(workload, hw).sequences_per_s))
    for series in rates.values():
        ordered = [rate for _, rate in sorted(series)]
        assert all(b >= a * (1 - 1e-12) for a, b in itertools.pairwise(ordered))


# ----------------------------------------------------------------------------- best_of


def _pick(costs: list[list[tuple[int, int, float]]], objective: str) -> tuple[int, list[int]]:
    """best_of over groups of (cycles, compute cycles, joules); returns the chosen tile count
    and the tile counts whose energy was asked for."""
    from accel_sim.mapping.search import best_of
    from accel_sim.mapping.space import Mapping

    table = {}
    groups = []
    for g, group in enumerate(costs):
        mappings = []
        for t, cost in enumerate(group, start=1):
            mapping = Mapping(rows_outer=bool(g), m_tiles=t)
            table[mapping] = (t + 10 * g, *cost)
            mappings.append(mapping)
        groups.append(mappings)
    asked: list[int] = []

    def energy(cost: tuple[int, int, int, float]) -> float:
        asked.append(cost[0])
        return cost[3]

    chosen, _ = best_of(groups, table.__getitem__, lambda c: c[1], lambda c: c[2], energy,
                        objective)  # fmt: skip
    return table[chosen][0], asked


def test_latency_ties_go_to_less_energy_and_energy_is_asked_only_on_ties() -> None:
    # tile 2 ties tile 1's cycles with less energy; tile 3 is slower; tile 4 is never reached
    chosen, asked = _pick([[(100, 90, 5.0), (100, 95, 4.0), (120, 101, 1.0), (90, 80, 0.0)]],
                          "latency")  # fmt: skip
    assert chosen == 2 and sorted(asked) == [1, 2]
    # an equal latency and equal energy keeps the earlier candidate
    chosen, _ = _pick([[(100, 90, 5.0)], [(100, 90, 5.0)]], "latency")
    assert chosen == 1
    # no ties: no energy is worked out; the second group's faster mapping wins
    chosen, asked = _pick([[(100, 90, 5.0), (110, 100, 1.0)], [(80, 70, 9.0)]], "latency")
    assert chosen == 11 and asked == []
    chosen, asked = _pick([[(100, 90, 5.0), (110, 100, 1.0)], [(80, 70, 9.0)]], "energy")
    assert chosen == 2 and sorted(asked) == [1, 2, 11]


def _costs_with_and_without(hw, op: GemmOp, owner, name: str, replacement) -> tuple:
    """``op``'s cost on ``hw`` as is, and with ``owner.name`` replaced (a shortcut turned
    off), each searched afresh."""
    cache.clear()
    as_is = datapath_for(hw).gemm_cost(op)
    original = getattr(owner, name)
    setattr(owner, name, replacement)
    try:
        cache.clear()
        replaced = datapath_for(hw).gemm_cost(op)
    finally:
        setattr(owner, name, original)
    return as_is, replaced


def test_a_compute_floor_ends_a_group_as_evaluating_would() -> None:
    """A candidate whose compute floor exceeds the best latency is not evaluated: evaluating
    it would have found it slower and ended its group. A floor equal to the best latency
    could still tie (and win on energy), so that candidate is evaluated."""
    from accel_sim.mapping.search import best_of
    from accel_sim.mapping.space import Mapping

    # (cycles, compute cycles, joules) by tile count; tile 3's compute (130) passes tile 2's
    # latency (120) and tile 2's compute (115) is within FLOOR_GATE of it
    costs = {1: (150, 100, 1.0), 2: (120, 115, 1.0), 3: (140, 130, 1.0), 4: (100, 140, 1.0)}
    group = [Mapping(rows_outer=False, m_tiles=t) for t in costs]

    def run(floor):
        evaluated: list[int] = []

        def evaluate(mapping):
            evaluated.append(mapping.m_tiles)
            return costs[mapping.m_tiles]

        chosen, _ = best_of([group], evaluate, lambda c: c[0], lambda c: c[1], lambda c: c[2],
                            "latency", compute_floor=floor)  # fmt: skip
        return chosen.m_tiles, evaluated

    assert run(None) == (2, [1, 2, 3])  # tile 3 evaluated, then the group ends
    assert run(lambda m: costs[m.m_tiles][1]) == (2, [1, 2])  # same choice, tile 3 skipped
    # a floor that only ties the best latency does not skip
    tie = {**costs, 3: (120, 120, 0.5)}
    chosen, _ = best_of([group], lambda m: tie[m.m_tiles], lambda c: c[0], lambda c: c[1],
                        lambda c: c[2], "latency",
                        compute_floor=lambda m: tie[m.m_tiles][1])  # fmt: skip
    assert chosen.m_tiles == 3  # the tie with less energy wins, as without a floor


def test_a_dram_floor_ends_a_group_only_past_the_best_latency() -> None:
    """A candidate whose DRAM floor exceeds the best latency by more than a cycle ends its
    group unevaluated (the floor never falls along a group, so no later candidate can win
    or tie); a floor within a cycle of it could still tie and win on energy, so that
    candidate is evaluated."""
    from accel_sim.mapping.search import best_of
    from accel_sim.mapping.space import Mapping

    # (cycles, compute cycles, joules) by tile count; floors by tile count
    costs = {1: (150, 50, 1.0), 2: (120, 60, 1.0), 3: (121, 70, 0.5), 4: (90, 80, 1.0)}
    group = [Mapping(rows_outer=False, m_tiles=t) for t in costs]

    def run(floors):
        evaluated: list[int] = []

        def evaluate(mapping):
            evaluated.append(mapping.m_tiles)
            return costs[mapping.m_tiles]

        chosen, _ = best_of([group], evaluate, lambda c: c[0], lambda c: c[1], lambda c: c[2],
                            "latency", dram_floor=lambda m: floors[m.m_tiles])  # fmt: skip
        return chosen.m_tiles, evaluated

    assert run({1: 0, 2: 0, 3: 0, 4: 0}) == (4, [1, 2, 3, 4])
    # tile 3's floor is past tile 2's latency by more than a cycle: the group ends there,
    # and tile 4 (whose floor, never falling, would be higher still) is not tried
    assert run({1: 0, 2: 0, 3: 121.5, 4: 122}) == (2, [1, 2])
    # within a cycle of the best latency: evaluated (tile 3 could have tied)
    assert run({1: 0, 2: 0, 3: 121.0, 4: 121.0}) == (4, [1, 2, 3, 4])


@SETTINGS
@given(sparse_cases())
def test_the_compute_floor_changes_no_choice(case) -> None:
    """With and without the compute floor the mapper chooses the same mapping at the same
    cost, and the floor equals the compute cycles ``compose`` gives every one-core mapping."""
    from accel_sim.mapping import search
    from accel_sim.mapping.compose import compose, compute_floor

    hw, workload, _ = case
    op = workload.gemms[0]
    datapath = datapath_for(hw)
    with_floor, without = _costs_with_and_without(hw, op, search, "FLOOR_GATE", math.inf)
    assert with_floor == without  # (a gate of infinity: the floor is never asked)
    piece = datapath.piece(op, op.mask)
    if not hasattr(piece, "fold_cycles"):
        return
    mem = memory_params(hw)
    for mapping in itertools.chain.from_iterable(datapath.candidates(op)):
        floor = compute_floor(piece.fold_cycles, op.m, op.n, mapping)
        if floor is None:
            continue
        composite = compose(piece, op.m, op.k, op.n, mapping, hw, datapath_for(hw).residency_plan(
            workload)[0][0], False, False, memory=lambda cores: mem)  # fmt: skip
        assert floor == composite.compute_cycles


@SETTINGS
@given(sparse_cases(), st.booleans(), st.booleans(), st.booleans())
def test_the_compacted_dram_floor_bounds_every_candidate_and_changes_no_choice(
    case, ifmap_on_chip, filter_on_chip, output_on_chip
) -> None:
    """A compacted weight-stationary weight's least DRAM bytes (the weight, a row's live
    inputs and its outputs): no schedule of 1 or m rows moves fewer; ``compose.dram_floor``
    from them is below every candidate's cycles and never falls along a group; and the
    mapper picks the same mapping at the same cost with the floor ending groups as without."""
    from accel_sim.datapaths.systolic.compacting import CompactedWeight
    from accel_sim.mapping import search
    from accel_sim.mapping.compose import compose, dram_floor
    from accel_sim.mapping.residency import OpResidency

    hw, workload, _ = case
    op = workload.gemms[0]
    datapath = datapath_for(hw)
    piece = datapath.piece(op, op.mask)
    scale = datapath.storage_scale(op)[0]
    mem = memory_params(hw, scale)
    if not hasattr(piece, "dram_bytes"):  # output- and input-stationary: no floor
        assert hw.pe_array.dataflow.value != "ws"
        if op.mask is not None and hw.sparse.zero_handling.value == "skipping":
            with pytest.raises(ValueError, match="weight-stationary"):
                CompactedWeight(op.mask, hw, hw.sparse.zero_handling).dram_bytes(mem)
        return
    residency = OpResidency(output_on_chip=output_on_chip)
    weight = CompactedWeight(op.mask, hw, hw.sparse.zero_handling)
    weight_bytes, input_row, output_row = weight.dram_bytes(mem)
    assert (weight_bytes, input_row, output_row) == piece.dram_bytes(0, op.n, mem)
    dram = (fm.IFMAP_DRAM_BYTES, fm.FILTER_DRAM_BYTES, fm.OFMAP_DRAM_READ_BYTES,
            fm.OFMAP_DRAM_WRITE_BYTES)  # fmt: skip
    for rows, overlapped in itertools.product({1, op.m}, (False, True)):
        plan = fm.FoldPlan(True, overlapped, ifmap_on_chip, filter_on_chip, output_on_chip)
        least = ((not filter_on_chip) * weight_bytes + (not ifmap_on_chip) * rows * input_row
                 + (not output_on_chip) * rows * output_row)  # fmt: skip
        assert least <= weight.run(rows, mem, plan)[list(dram)].sum() * (1 + 1e-12)

    def memory(sharing: int) -> fm.MemoryParams:
        return memory_params(hw, scale, sharing)

    for group in datapath.candidates(op):
        floors = []
        for mapping in group:
            composite = compose(piece, op.m, op.k, op.n, mapping, hw, residency, ifmap_on_chip,
                                filter_on_chip, memory=memory)  # fmt: skip
            floor = dram_floor(piece.dram_bytes, op.m, op.k, op.n, mapping, residency,
                               ifmap_on_chip, filter_on_chip, memory)  # fmt: skip
            assert floor <= composite.cycles * (1 + 1e-12)
            floors.append(floor)
        assert all(later >= sooner * (1 - 1e-12) for sooner, later in itertools.pairwise(floors))
    with_floor, without = _costs_with_and_without(hw, op, search, "DRAM_FLOOR_MARGIN", math.inf)
    assert with_floor == without


@st.composite
def skipping_cases(draw):
    """One-core weight-stationary skipping GEMMs, few ifmap banks among them (many
    conflicts: compaction often computes for longer than the dense schedule)."""
    rows, cols = draw(st.sampled_from([4, 8, 16])), draw(st.sampled_from([4, 8, 16]))
    m, k, n = draw(st.integers(1, 96)), draw(st.integers(1, 96)), draw(st.integers(1, 96))
    spec = hardware_dict(
        rows=rows, cols=cols, dataflow="ws",
        sram_bytes=draw(st.sampled_from([4096, 65536, 1 << 20])),
        dram_bytes_per_s=draw(st.sampled_from([4e9, 64e9, 1e12])),
        double_buffered=draw(st.booleans()),
    )  # fmt: skip
    spec["sparse"] = {"zero_handling": "skipping", "weight_format": "bitmap",
                      "ifmap_banks": draw(st.sampled_from([1, 2, 4, rows]))}  # fmt: skip
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    mask = rng.random((n, k)) < draw(st.floats(0.05, 1.0))
    return hardware_from_dict(spec), one_gemm(m, k, n, mask, count=draw(st.integers(1, 3)))


@SETTINGS
@given(skipping_cases())
def test_skipping_off_without_a_search_changes_nothing(case) -> None:
    """A skipping layer whose every candidate mapping computes for longer than the dense
    schedule takes runs dense (``skipping-off``) without the sparse search: the same cost as
    searching first (the shortcut is taken in about a third of these cases)."""
    from accel_sim.datapaths.systolic.compacting import CompactingSystolicArray

    hw, workload = case
    shortcut, searched = _costs_with_and_without(
        hw, workload.gemms[0], CompactingSystolicArray, "_computes_longer", lambda *args: False
    )
    assert shortcut == searched


def test_a_conflicting_unstructured_layer_runs_dense_without_the_sparse_search(
    monkeypatch,
) -> None:
    """At 90 % unstructured sparsity on the 32x32 skipping preset, bank conflicts make every
    compacted mapping of a 768x768 weight compute for longer than the dense schedule, so the
    layer runs dense and the sparse search is not run; its cost is the searched one."""
    from accel_sim.datapaths.systolic.compacting import CompactingSystolicArray

    hw = load_hardware("systolic-32x32-ws-skip")
    mask = np.random.default_rng(0).random((768, 768)) < 0.1
    op = one_gemm(128, 768, 768, mask).gemms[0]
    searches = []
    mapped = CompactingSystolicArray.mapped

    def counted(self, op, mask, *args):
        searches.append(mask is not None)
        return mapped(self, op, mask, *args)

    with monkeypatch.context() as patch:
        patch.setattr(CompactingSystolicArray, "mapped", counted)
        cache.clear()
        cost = datapath_for(hw).gemm_cost(op)
    assert cost.mode == "skipping-off" and searches == [False]  # only the dense search ran
    monkeypatch.setattr(CompactingSystolicArray, "_computes_longer", lambda *args: False)
    cache.clear()
    assert datapath_for(hw).gemm_cost(op) == cost
