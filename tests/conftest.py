"""Shared test set-up: single-threaded torch/numba and small hardware specs."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")
# Nothing in the tests downloads: hub ids resolve from the local cache or to presets.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest

from accel_sim.spec import HardwareConfig, hardware_from_dict


def hardware_dict(
    rows: int = 8,
    cols: int = 8,
    dataflow: str = "ws",
    sram_bytes: int = 64 * 1024,
    dram_bytes_per_s: float = 16e9,
    double_buffered: bool = True,
    sram_bytes_per_cycle: float | None = None,
    precision: str = "int8",
    mapping: str = "best",
) -> dict:
    """A valid hardware spec as a dict, with every knob the tests vary. ``mapping="fixed"``
    is SCALE-Sim's schedule: fixed loop order, serial preload, every operand in DRAM."""
    word = {"int8": 1, "int16": 2, "fp16": 2, "fp32": 4}[precision]
    port = sram_bytes_per_cycle
    return {
        "name": f"test-{rows}x{cols}-{dataflow}",
        "pe_array": {
            "rows": rows,
            "cols": cols,
            "dataflow": dataflow,
            "precision": precision,
            "clock_hz": 1e9,
        },
        "sram": {
            "double_buffered": double_buffered,
            "ifmap": {"size_bytes": sram_bytes, "bytes_per_cycle": port or max(rows, cols) * word},
            "filter": {"size_bytes": sram_bytes, "bytes_per_cycle": port or max(rows, cols) * word},
            "ofmap": {"size_bytes": sram_bytes, "bytes_per_cycle": port or 2 * max(rows, cols) * 4},
        },
        "dram": {"bandwidth_bytes_per_s": dram_bytes_per_s, "energy_per_bit_j": 8e-12},
        "vector_unit": {"lanes": 8},
        **(SCALESIM_SCHEDULE if mapping == "fixed" else {}),
    }


# SCALE-Sim's schedule: its loop order, serial preload, every operand in DRAM.
SCALESIM_SCHEDULE = {
    "mapping": {"search": "fixed", "preload": "serial"},
    "residency": {"activations_on_chip": False},
}


def make_hardware(**kwargs) -> HardwareConfig:
    return hardware_from_dict(hardware_dict(**kwargs))


@pytest.fixture
def hw_factory():
    return make_hardware


@pytest.fixture(scope="session")
def pruned(tmp_path_factory: pytest.TempPathFactory):
    """(model, masks, artifact dir): the tiny BERT pruned block:4x4 at 0.75, saved once.

    Shared read-only: tests that corrupt or change the artifact work on a copy.
    """
    from tests.tiny_bert import save_pruned_artifact  # torch only for tests that ask

    return save_pruned_artifact(tmp_path_factory.mktemp("artifact") / "bert-block")


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory):
    """A 2-layer, hidden-64 BERT config directory (random weights, hashing tokenizer)."""
    from tests.tiny_bert import save_tiny_config

    return save_tiny_config(tmp_path_factory.mktemp("tiny-bert"))
