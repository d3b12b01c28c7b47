"""A quantized model on a crossbar chip: the artifact's weight bits set the bit slices, and
the run is compared with the dense model at the chip's own (16-bit) mapping.

An artifact quantized onto conductance levels (``pruning.quantize``; its manifest's
``quantization`` block) stores each weight in ``ceil(weight_bits / cell_bits)`` cells, so the
chip maps it with ``encoding.weight_bits = weight_bits`` and ``crossbar.bits_per_cell =
cell_bits``: fewer weight bits, fewer slice crossbars per block
(``CrossbarChipConfig.weight_slices``), fewer ADC conversions, DAC drives and reads per
vector (each counted per slice crossbar in ``costs.weight_gemm_cost``). The memristor-ADMM
paper reports its power and area saving against the unpruned, unquantized network
(``../shared/reference/pruning-algorithms.md`` section 4); :func:`reduction_vs_dense` gives
the same figures from two simulated runs: the quantized sparse model on the derived chip and
the dense model on the chip as given (ISAAC's preset: 16-bit weights in 2-bit cells).
Power is the forward pass's average, ``energy / latency``; area is ``mapped_area_mm2``, the
tiles that hold one copy of the weights (plus the digital unit).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from accel_sim.spec.crossbar_chip import CrossbarChipConfig

__all__ = ["reduction_vs_dense", "with_weight_quantization"]


def with_weight_quantization(
    chip: CrossbarChipConfig, quantization: Mapping[str, Any]
) -> CrossbarChipConfig:
    """``chip`` mapping weights of the manifest block's ``weight_bits`` in cells of its
    ``cell_bits`` (validated as a spec file would be)."""
    from accel_sim.spec import derive

    bits, cells = int(quantization["weight_bits"]), int(quantization["cell_bits"])
    changes = {"encoding.weight_bits": bits, "crossbar.bits_per_cell": cells}
    source = f"{chip.name} with {bits}-bit weights in {cells}-bit cells"
    derived = derive(chip, changes, source=source)
    assert isinstance(derived, CrossbarChipConfig)
    return derived


def _figures(result: Any) -> dict[str, float]:
    latency = result.latency_s
    return {
        "crossbars": float(result.crossbars_unreplicated),
        "adc_conversions": float(result.adc_conversions),
        "energy_j": float(result.energy_j),
        "power_w": float(result.energy_j / latency) if latency > 0 else 0.0,
        "area_mm2": float(result.mapped_area_mm2),
        "latency_s": float(latency),
    }


def reduction_vs_dense(quantized: Any, dense_full_precision: Any) -> dict[str, dict[str, float]]:
    """Per figure (crossbars, ADC conversions, energy, average power, mapped area, latency):
    the quantized run's value, the dense run's, their ratio and the reduction ``1 - ratio``."""
    ours, ref = _figures(quantized), _figures(dense_full_precision)
    table = {}
    for name, value in ours.items():
        ratio = value / ref[name] if ref[name] else float("nan")
        table[name] = {
            "quantized": value,
            "dense": ref[name],
            "ratio": ratio,
            "reduction": 1 - ratio,
        }
    return table
