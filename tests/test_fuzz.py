"""Fuzzing (hypothesis): parsers never crash on random input, the simulator keeps its invariants.

- Parsers (hardware configs of every kind, study specs, artifact manifests and mask files):
  random mutations of valid documents (values replaced by junk of any type, keys deleted,
  unknown keys added, files truncated or bit-flipped) either parse or raise the documented
  error type (``HardwareConfigError``, ``StudySpecError``, ``ArtifactError``) with a message
  naming what is wrong; never another exception.
- Simulator: random valid small hardware (every dataflow, precision and sparse mode) on random
  small GEMMs with random masks, and a tiny BERT: no crash, and cycles >= the compute roofline,
  DRAM bytes >= compulsory traffic, the energy breakdown sums to the total, a sparse run never
  reports more useful MACs than its dense baseline.

``EXAMPLES`` sets how many cases each test draws; ``CASES`` counts the cases that ran, each
test asserts it reached its budget and prints it (``pytest -s`` shows the counts).
"""

from __future__ import annotations

import json
import math
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accel_sim import simulate
from accel_sim.energy import ENERGY_COMPONENTS
from accel_sim.spec import HardwareConfigError, hardware_from_dict, load_hardware, preset_dir
from pruning.artifact import MANIFEST_FILE, MASKS_FILE, ArtifactError, load_artifact
from studies.spec import StudySpecError, expand, load_spec, spec_from_dict
from studies.store import point_key
from tests.conftest import hardware_dict
from workloads import GemmOp, GemmRole, Workload, WorkloadError, build_workload

# Cases per test; the default run draws sum(EXAMPLES.values()) cases in all.
EXAMPLES = {
    "hardware_mutations": 400,
    "crossbar_mutations": 150,
    "hardware_yaml_text": 100,
    "spec_mutations": 250,
    "spec_yaml_text": 100,
    "manifest_mutations": 150,
    "mask_file_corruption": 100,
    "simulate_gemm": 400,
    "simulate_tiny_bert": 30,
}
CASES: Counter[str] = Counter()

FUZZ = settings(
    deadline=None,
    derandomize=True,  # the same cases every run: a failure here is reproducible
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    database=None,
)


def fuzz(name: str) -> settings:
    return settings(FUZZ, max_examples=EXAMPLES[name])


def _done(name: str, *, some_valid: bool = False) -> None:
    assert CASES[name] >= EXAMPLES[name], (name, CASES[name])
    valid = CASES[f"{name}:valid"]
    if some_valid:  # the mutations must also reach the accepting path, not only errors
        assert valid > 0, name
    parsed = f", {valid} parsed as valid" if f"{name}:valid" in CASES else ""
    print(f"fuzz {name}: {CASES[name]} cases{parsed}")


# ----------------------------------------------------------------------------- mutations

JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(
        [
            "64 KiB",
            "1 GHz",
            "-1 GB/s",
            "1e400",
            "nan",
            "0",
            "-0",
            "inf",
            "8 pJ",
            "3 parsecs",
            "0x10",
            "1_000",
            "",
            " ",
            "ws",
            "skipping",
            "nm",
            "block:4x4",
            "[1, 2]",
        ]
    ),
    st.lists(st.integers(-3, 10), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(-2, 2), max_size=2),
)


def _paths(data: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path (to leaves and to sections) of nested dicts and lists."""
    found = []
    items = data.items() if isinstance(data, dict) else enumerate(data)
    for key, value in items:
        found.append((*prefix, key))
        if isinstance(value, dict | list) and value:
            found += _paths(value, (*prefix, key))
    return found


def _mutate(draw, data: Any, max_edits: int = 3) -> tuple[Any, list[tuple]]:
    """A deep copy of ``data`` with 1..max_edits random edits; returns the edited paths."""
    data = json.loads(json.dumps(data))
    edited = []
    for _ in range(draw(st.integers(1, max_edits))):
        paths = _paths(data)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = data
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(JUNK)
        elif action == "delete":
            if isinstance(parent, dict):
                del parent[path[-1]]
            else:
                parent.pop(path[-1])
        elif isinstance(parent, dict):
            parent[draw(st.sampled_from(["bogus", "rowz", "extra_key"]))] = draw(JUNK)
        edited.append(path)
    return data, edited


def _one_clear_line(error: Exception) -> str:
    message = str(error)
    assert message.strip(), f"{type(error).__name__} with an empty message"
    assert "Traceback" not in message
    return message


# ----------------------------------------------------------------------------- hardware

SYSTOLIC = load_hardware("systolic-32x32-ws-skip").model_dump(mode="json")
EIE = load_hardware("eie-64pe").model_dump(mode="json")
CROSSBAR_YAML = yaml.safe_load((preset_dir() / "isaac-crossbar.yaml").read_text())


def _check_hardware(name: str, data: Any) -> None:
    try:
        hw = hardware_from_dict(data, source="fuzz")
    except HardwareConfigError as error:
        message = _one_clear_line(error)
        assert "fuzz" in message  # names the source
        return
    CASES[f"{name}:valid"] += 1
    # a config that parses dumps and re-parses to itself, with a stable hash
    again = hardware_from_dict(hw.model_dump(mode="json"))
    assert again == hw and again.config_hash() == hw.config_hash()


def test_fuzz_hardware_config_mutations() -> None:
    @fuzz("hardware_mutations")
    @given(st.data())
    def run(data):
        CASES["hardware_mutations"] += 1
        base = data.draw(st.sampled_from([SYSTOLIC, EIE]))
        mutated, _ = _mutate(data.draw, base)
        _check_hardware("hardware_mutations", mutated)

    run()
    _done("hardware_mutations", some_valid=True)


def test_fuzz_crossbar_config_mutations() -> None:
    @fuzz("crossbar_mutations")
    @given(st.data())
    def run(data):
        CASES["crossbar_mutations"] += 1
        mutated, _ = _mutate(data.draw, CROSSBAR_YAML)
        _check_hardware("crossbar_mutations", mutated)

    run()
    _done("crossbar_mutations", some_valid=True)


YAML_TEXT = st.one_of(
    st.text(max_size=200),
    st.builds(
        lambda doc, cut: yaml.safe_dump(doc)[:cut],
        st.sampled_from([SYSTOLIC, CROSSBAR_YAML]),
        st.integers(0, 3000),
    ),  # truncated YAML
)


def _fuzz_yaml_file(name: str, path: Path, texts, load, error_type) -> None:
    """Random text in ``path`` either loads or raises ``error_type`` naming the file."""

    @fuzz(name)
    @given(texts)
    def run(text):
        CASES[name] += 1
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            load(path)
        except error_type as error:
            assert str(path) in _one_clear_line(error)

    run()
    _done(name)


def test_fuzz_hardware_yaml_text(tmp_path: Path) -> None:
    _fuzz_yaml_file(
        "hardware_yaml_text", tmp_path / "hw.yaml", YAML_TEXT, load_hardware, HardwareConfigError
    )


# ----------------------------------------------------------------------------- study specs

SPEC = {
    "name": "fuzz",
    "kind": "custom",
    "models": ["bert-tiny"],
    "seq_lens": [8],
    "batches": [1],
    "seed": 0,
    "hardware": ["systolic-32x32-ws"],
    "grid": {"pe_array.rows": [8, 16], "sparse.zero_handling": ["gating"]},
    "sparsities": [0.5],
    "patterns": [
        "block:4x4",
        {"pattern": "nm:2:4", "grid": {"sparse.zero_handling": ["nm"]}},
        {"pattern": "unstructured", "sparsities": [0.25, 0.75]},
    ],
    "outputs": {"plots_dir": "plots", "report": "report.md"},
}
PATTERN_TEXT = st.sampled_from(
    ["dense", "unstructured", "block:4x4", "block:0x4", "block:-1x2", "block:4", "nm:2:4",
     "nm:5:4", "nm:0:4", "nm:2:1", "crossbar:8x8", "row", "column", "head:2", "head:0", "bogus"]
)  # fmt: skip


def test_fuzz_study_spec_mutations(tmp_path: Path) -> None:
    @fuzz("spec_mutations")
    @given(st.data())
    def run(data):
        CASES["spec_mutations"] += 1
        mutated, _ = _mutate(data.draw, SPEC)
        if isinstance(mutated, dict) and data.draw(st.booleans()):
            mutated["patterns"] = data.draw(st.lists(PATTERN_TEXT, max_size=3))
        try:
            spec = spec_from_dict(mutated, source="fuzz")
            points = expand(spec, tmp_path)
        except StudySpecError as error:
            assert "fuzz" in _one_clear_line(error) or "study spec" in str(error)
            return
        CASES["spec_mutations:valid"] += 1
        for point in points:  # every point is storable: JSON data with a stable key
            assert point_key(point) == point_key(json.loads(json.dumps(point)))

    run()
    _done("spec_mutations", some_valid=True)


def test_fuzz_study_spec_yaml_text(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    texts = st.one_of(
        st.text(max_size=200),
        st.builds(lambda cut: yaml.safe_dump(SPEC)[:cut], st.integers(0, 600)),
    )

    _fuzz_yaml_file("spec_yaml_text", path, texts, load_spec, StudySpecError)


# ----------------------------------------------------------------------------- artifacts


def _check_artifact(name: str, directory: Path) -> None:
    try:
        artifact = load_artifact(directory)
    except ArtifactError as error:
        assert str(directory) in _one_clear_line(error)
        return
    CASES[f"{name}:valid"] += 1
    entries = {entry["name"]: entry for entry in artifact.manifest["matrices"]}
    assert entries.keys() == artifact.masks.keys()
    for name, mask in artifact.masks.items():
        assert list(mask.shape) == entries[name]["shape"]
        assert int(mask.sum()) == entries[name]["nnz"]
    try:  # what the simulator does with a loaded artifact
        from workloads import attach_artifact

        attach_artifact(build_workload(str(directory), seq_len=8), artifact)
    except WorkloadError as error:
        _one_clear_line(error)


def test_fuzz_artifact_manifest_mutations(pruned, tmp_path: Path) -> None:
    directory = tmp_path / "artifact"
    shutil.copytree(pruned[2], directory)
    manifest = json.loads((directory / MANIFEST_FILE).read_text())

    @fuzz("manifest_mutations")
    @given(st.data())
    def run(data):
        CASES["manifest_mutations"] += 1
        mutated, _ = _mutate(data.draw, manifest)
        (directory / MANIFEST_FILE).write_text(json.dumps(mutated, allow_nan=True))
        _check_artifact("manifest_mutations", directory)

    run()
    _done("manifest_mutations", some_valid=True)


def test_fuzz_artifact_mask_file_corruption(pruned, tmp_path: Path) -> None:
    directory = tmp_path / "artifact"
    shutil.copytree(pruned[2], directory)
    original = (directory / MASKS_FILE).read_bytes()

    @fuzz("mask_file_corruption")
    @given(
        st.integers(0, len(original)),
        st.lists(st.tuples(st.integers(0, len(original) - 1), st.integers(1, 255)), max_size=4),
    )
    def run(cut, flips):
        CASES["mask_file_corruption"] += 1
        data = bytearray(original)
        for offset, xor in flips:
            data[offset] ^= xor
        (directory / MASKS_FILE).write_bytes(bytes(data[:cut]))
        _check_artifact("mask_file_corruption", directory)

    run()
    _done("mask_file_corruption")


# ----------------------------------------------------------------------------- simulator

MODES = ["none", "gating", "skipping", "nm", "unstructured-pe"]
FORMATS = ["dense", "bitmap", "csr", "csc", "bsr", "nm", "rle"]


@st.composite
def sparse_hardware(draw):
    rows, cols = draw(st.integers(1, 16)), draw(st.integers(1, 16))
    spec = hardware_dict(
        rows=rows,
        cols=cols,
        dataflow=draw(st.sampled_from(["ws", "os", "is"])),
        sram_bytes=draw(st.sampled_from([256, 4096, 64 * 1024, 4 * 2**20])),
        dram_bytes_per_s=draw(st.sampled_from([1e8, 4e9, 64e9])),
        double_buffered=draw(st.booleans()),
        precision=draw(st.sampled_from(["int8", "int16", "fp16", "fp32"])),
    )
    m = draw(st.integers(2, 8))
    spec["sparse"] = {
        "zero_handling": draw(st.sampled_from(MODES)),
        "weight_format": draw(st.sampled_from(FORMATS)),
        "skip_granularity": draw(st.integers(1, 4)),
        "ifmap_banks": draw(st.none() | st.integers(1, 32)),
        "nm": [draw(st.integers(1, m)), m],
        "fifo_depth": draw(st.integers(1, 16)),
        "format_block": [draw(st.integers(1, 4)), draw(st.integers(1, 4))],
    }
    return hardware_from_dict(spec)


@st.composite
def masked_gemm(draw):
    m, k, n = (draw(st.integers(1, 48)) for _ in range(3))
    count = draw(st.integers(1, 2))
    kind = draw(st.sampled_from(["none", "random", "empty", "full", "rows"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "none":
        mask = None
    elif kind == "random":
        mask = rng.random((n, k)) < draw(st.floats(0.0, 1.0))
    elif kind == "empty":
        mask = np.zeros((n, k), dtype=bool)
    elif kind == "full":
        mask = np.ones((n, k), dtype=bool)
    else:  # whole input columns pruned (block-like structure)
        mask = np.repeat(rng.random((1, k)) < 0.5, n, axis=0)
    op = GemmOp("g", GemmRole.FFN_IN, m=m, k=k, n=n, count=count, weight_name="w", mask=mask)
    return Workload(model_name="fuzz-gemm", batch=1, seq_len=m, ops=(op,))


def _check_result(result, hw, *, dense: bool) -> None:
    breakdown = result.energy_breakdown_j
    assert set(breakdown) <= set(ENERGY_COMPONENTS)
    assert all(value >= 0 and math.isfinite(value) for value in breakdown.values())
    assert math.isclose(sum(breakdown.values()), result.energy_j, rel_tol=1e-9, abs_tol=1e-30)
    assert result.cycles == result.compute_cycles + result.stall_cycles
    assert result.stall_cycles >= 0 and result.cycles > 0
    assert 0 <= result.effective_macs <= result.macs
    # compute roofline: no more useful MACs per cycle than there are PEs
    assert result.cycles * hw.pe_count >= result.effective_macs
    assert 0 <= result.utilisation <= 1 + 1e-12
    assert 0 <= result.effective_utilisation <= 1 + 1e-12
    for op in result.ops:
        assert op.dram_bytes >= op.dram_write_bytes >= 0
        assert op.dram_bytes_avoided >= 0
        if op.kind != "gemm":
            continue
        word = hw.word_bytes
        outputs = op.m * op.n * word * op.count
        # every output reaches DRAM once, unless it stays on chip for its readers
        assert op.dram_write_bytes + op.dram_bytes_avoided >= outputs
        if dense:  # compulsory traffic: both operands read once, outputs written once
            compulsory = (op.m * op.k + op.k * op.n + op.m * op.n) * word * op.count
            moved = compulsory - op.dram_bytes_avoided
            assert op.dram_bytes >= moved * (1 - 1e-12)
            assert op.cycles * hw.pe_count >= op.macs
            assert op.cycles >= moved / hw.dram_bytes_per_cycle - op.count


def _check_sparse_run(result, hw) -> None:
    base = result.baseline
    assert base is not None and base.baseline is None
    _check_result(result, hw, dense=False)
    _check_result(base, hw, dense=True)
    # a sparse run never performs, nor counts as useful, more MACs than dense execution
    assert result.macs <= base.macs and result.effective_macs <= base.macs == base.effective_macs
    assert result.speedup == pytest.approx(base.cycles / result.cycles)


def test_fuzz_simulate_random_gemms() -> None:
    @fuzz("simulate_gemm")
    @given(sparse_hardware(), masked_gemm())
    def run(hw, workload):
        CASES["simulate_gemm"] += 1
        _check_sparse_run(simulate(workload, hw, baseline=True), hw)

    run()
    _done("simulate_gemm")


def test_fuzz_simulate_tiny_bert() -> None:
    @fuzz("simulate_tiny_bert")
    @given(sparse_hardware(), st.integers(1, 32), st.integers(1, 2), st.integers(0, 2**31))
    def run(hw, seq_len, batch, seed):
        CASES["simulate_tiny_bert"] += 1
        from workloads import attach_masks

        workload = build_workload("bert-tiny", batch=batch, seq_len=seq_len)
        rng = np.random.default_rng(seed)
        density = rng.random()
        masks = {
            op.weight_name: rng.random((op.n, op.k)) < density
            for op in workload.gemms
            if op.weight_name is not None and rng.random() < 0.7
        }
        _check_sparse_run(simulate(attach_masks(workload, masks), hw, baseline=True), hw)

    run()
    _done("simulate_tiny_bert")


def test_fuzz_case_total() -> None:
    """The budget the default run draws (each test above asserts it ran its share)."""
    total = sum(EXAMPLES.values())
    assert total >= 1000
    print(f"fuzz: {total} cases in {len(EXAMPLES)} tests")
