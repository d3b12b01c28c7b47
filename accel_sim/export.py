"""Hardware specs in other tools' formats, for cross-checking (``cosim export hardware``).

- :func:`accelergy_architecture`: the chip as an Accelergy/Timeloop architecture tree
  (``architecture: version 0.3``, the ``subtree``/``local`` layout of the Timeloop-Accelergy
  exercises): DRAM, the global buffer, one subtree per core with its three SRAM buffers and
  ``PE[0..R*C-1]`` holding a MAC and its registers, and the vector unit. Attributes carry the
  sizes, word widths, bandwidths and clock.
- :func:`accelergy_ert`: the energy table as an Accelergy Energy Reference Table
  (``ERT: version 0.3``): energy in pJ per action of each component, the same prices the
  simulator multiplies its action counts by (``accel_sim.energy.energy_prices``): a MAC, a
  register byte, an SRAM read or write of one word of the buffer's width, a DRAM read or
  write of one 64-bit word, a vector lane-op, and ``leak`` (static energy per clock cycle).
- :func:`scalesim_config`: the chip as a SCALE-Sim 3.0.0 ``.cfg`` file, for the chips
  SCALE-Sim can describe (one core of a dense int8 systolic array at 1 GHz whose buffer sizes
  are whole KiB); ``accel_sim.spec.scalesim_cfg`` reads it back.

Array chips only: a crossbar chip has no counterpart in these formats here.
"""

from __future__ import annotations

from typing import Any

from accel_sim.energy import energy_prices
from accel_sim.spec import HardwareConfig, HardwareConfigError
from accel_sim.spec.scalesim_cfg import CALC_BANDWIDTH_BYTES_PER_S, CLOCK_HZ, KIB

__all__ = ["accelergy_architecture", "accelergy_ert", "scalesim_config"]

PJ = 1e-12
DRAM_WORD_BITS = 64
VERSION = 0.3


def _array_chip(hw: Any, what: str) -> HardwareConfig:
    if not isinstance(hw, HardwareConfig):
        raise HardwareConfigError(
            f"{what}: {hw.name} is a {getattr(hw, 'datapath', '?')} chip; only array chips "
            "(datapath systolic or pe-array) can be exported"
        )
    return hw


def _names(hw: HardwareConfig) -> dict[str, str]:
    """Component paths in the tree (the ERT names its tables by them)."""
    core = f"system.chip.core[0..{hw.cores - 1}]" if hw.cores > 1 else "system.chip"
    pes = hw.pe_array.rows * hw.pe_array.cols
    return {
        "dram": "system.DRAM",
        "global": "system.chip.global_buffer",
        "vector": "system.chip.vector_unit",
        "ifmap": f"{core}.ifmap_sram",
        "filter": f"{core}.filter_sram",
        "ofmap": f"{core}.ofmap_sram",
        "pe": f"{core}.PE[0..{pes - 1}]",
    }


def _sram_width_bytes(bytes_per_cycle: float) -> int:
    return max(1, round(bytes_per_cycle))


def _sram(name: str, size_bytes: int, bytes_per_cycle: float, word_bits: int) -> dict:
    width = _sram_width_bytes(bytes_per_cycle)
    return {
        "name": name,
        "class": "SRAM",
        "attributes": {
            "depth": max(1, size_bytes // width),
            "width": 8 * width,
            "datawidth": word_bits,
            "size_bytes": size_bytes,
            "n_banks": 1,
        },
    }


def accelergy_architecture(hw: Any) -> dict[str, Any]:
    """The architecture tree of array chip ``hw`` (a plain mapping, ready for YAML)."""
    hw = _array_chip(hw, "Accelergy architecture")
    word_bits = 8 * hw.word_bytes
    mac_class = "intmac" if hw.pe_array.precision.value.startswith("int") else "fpmac"
    pes = hw.pe_array.rows * hw.pe_array.cols
    pe = {
        "name": f"PE[0..{pes - 1}]",
        "local": [
            {
                "name": "registers",
                "class": "reg",
                "attributes": {"depth": 3, "width": word_bits, "datawidth": word_bits},
            },
            {
                "name": "mac",
                "class": mac_class,
                "attributes": {
                    "datawidth": word_bits,
                    "accumulator_width": 8 * hw.pe_array.accumulator_bytes,
                },
            },
        ],
    }
    buffers = [
        _sram(f"{which}_sram", buffer.size_bytes, buffer.bytes_per_cycle, word_bits)
        for which, buffer in (
            ("ifmap", hw.sram.ifmap),
            ("filter", hw.sram.filter),
            ("ofmap", hw.sram.ofmap),
        )
    ]
    chip_local = [
        {
            "name": "vector_unit",
            "class": "fpmac",
            "attributes": {"lanes": hw.vector_unit.lanes, "datawidth": 16},
        }
    ]
    if hw.global_buffer is not None:
        chip_local.insert(
            0,
            _sram(
                "global_buffer",
                hw.global_buffer.size_bytes,
                hw.global_buffer.bytes_per_cycle,
                word_bits,
            ),
        )
    core = {"local": buffers, "subtree": [pe]}
    chip = {
        "name": "chip",
        "attributes": {
            "technology": "45nm",
            "frequency_hz": hw.clock_hz,
            "datapath": hw.datapath,
            "dataflow": hw.pe_array.dataflow.value,
            "zero_handling": hw.sparse.zero_handling.value,
            "weight_format": hw.sparse.weight_format.value,
            "double_buffered": hw.sram.double_buffered,
        },
        "local": chip_local,
    }
    if hw.cores > 1:
        chip["subtree"] = [{"name": f"core[0..{hw.cores - 1}]", **core}]
    else:
        chip["local"] = [*buffers, *chip_local]
        chip["subtree"] = [pe]
    return {
        "architecture": {
            "version": VERSION,
            "subtree": [
                {
                    "name": "system",
                    "attributes": {"name": hw.name},
                    "local": [
                        {
                            "name": "DRAM",
                            "class": "DRAM",
                            "attributes": {
                                "width": DRAM_WORD_BITS,
                                "datawidth": word_bits,
                                "bandwidth_bytes_per_s": hw.dram.bandwidth_bytes_per_s,
                                "energy_per_bit_pJ": hw.dram.energy_per_bit_j / PJ,
                            },
                        }
                    ],
                    "subtree": [chip],
                }
            ],
        }
    }


def _pj(joules: float) -> float:
    return round(joules / PJ, 9)


def _rw(read_j: float, write_j: float, leak_j: float) -> list[dict]:
    return [
        {"name": "read", "arguments": None, "energy": _pj(read_j)},
        {"name": "write", "arguments": None, "energy": _pj(write_j)},
        {"name": "leak", "arguments": None, "energy": _pj(leak_j)},
        {"name": "idle", "arguments": None, "energy": 0.0},
    ]


def accelergy_ert(hw: Any) -> dict[str, Any]:
    """The Energy Reference Table of array chip ``hw``: pJ per action (see the module
    docstring for what each action is)."""
    hw = _array_chip(hw, "Accelergy ERT")
    prices = energy_prices(hw)
    names = _names(hw)
    cycle_s = 1.0 / hw.clock_hz
    leak = hw.leakage
    dram_word = DRAM_WORD_BITS // 8
    tables = [
        {
            "name": names["dram"],
            "actions": _rw(
                prices.dram_j_per_byte * dram_word, prices.dram_j_per_byte * dram_word, 0.0
            ),
        }
    ]
    buffers = {"ifmap": hw.sram.ifmap, "filter": hw.sram.filter, "ofmap": hw.sram.ofmap}
    per_byte = {"ifmap": prices.ifmap_j, "filter": prices.filter_j, "ofmap": prices.ofmap_j}
    if hw.global_buffer is not None:
        buffers = {"global": hw.global_buffer, **buffers}
        per_byte["global"] = prices.global_j
    for which, buffer in buffers.items():
        width = _sram_width_bytes(buffer.bytes_per_cycle)
        read, write = per_byte[which]
        leak_j = leak.sram_w_per_byte * buffer.size_bytes * cycle_s
        tables.append({"name": names[which], "actions": _rw(read * width, write * width, leak_j)})
    tables += [
        {
            "name": f"{names['pe']}.mac",
            "actions": [
                {"name": "compute", "arguments": None, "energy": _pj(prices.mac_j)},
                {"name": "leak", "arguments": None, "energy": _pj(leak.pe_w * cycle_s)},
                {"name": "idle", "arguments": None, "energy": 0.0},
            ],
        },
        {
            "name": f"{names['pe']}.registers",
            "actions": [
                {
                    "name": "access",
                    "arguments": None,
                    "energy": _pj(prices.register_j_per_byte * hw.word_bytes),
                },
                {"name": "idle", "arguments": None, "energy": 0.0},
            ],
        },
        {
            "name": names["vector"],
            "actions": [
                {"name": "compute", "arguments": None, "energy": _pj(prices.vector_op_j)},
                {
                    "name": "leak",
                    "arguments": None,
                    "energy": _pj(leak.vector_lane_w * hw.vector_unit.lanes * cycle_s),
                },
                {"name": "idle", "arguments": None, "energy": 0.0},
            ],
        },
    ]
    return {"ERT": {"version": VERSION, "tables": tables}}


def scalesim_config(hw: Any) -> str:
    """``hw`` as a SCALE-Sim 3.0.0 ``.cfg`` text, or HardwareConfigError naming every field
    SCALE-Sim cannot express."""
    hw = _array_chip(hw, "SCALE-Sim config")
    problems = []
    if hw.datapath != "systolic":
        problems.append(f"datapath {hw.datapath} (SCALE-Sim models a systolic array)")
    if hw.cores != 1:
        problems.append(f"cores {hw.cores} (SCALE-Sim models one array)")
    if hw.global_buffer is not None:
        problems.append("a global_buffer")
    if hw.sparse.zero_handling.value != "none" or hw.sparse.weight_format.value != "dense":
        problems.append("a sparse section (SCALE-Sim's sparsity is a synthetic pattern)")
    if hw.pe_array.precision.value != "int8":
        problems.append(f"precision {hw.pe_array.precision.value} (SCALE-Sim counts 1-byte words)")
    if hw.clock_hz != CLOCK_HZ:
        problems.append(f"clock_hz {hw.clock_hz:g} (SCALE-Sim counts cycles; 1 GHz assumed)")
    sizes = {}
    for which in ("ifmap", "filter", "ofmap"):
        size = getattr(hw.sram, which).size_bytes
        if size % KIB:
            problems.append(f"sram.{which}.size_bytes {size} (SCALE-Sim takes whole KiB)")
        sizes[which] = size // KIB
    if problems:
        raise HardwareConfigError(
            f"{hw.name} cannot be written as a SCALE-Sim config: " + "; ".join(problems)
        )
    bandwidth = hw.dram.bandwidth_bytes_per_s
    calc = bandwidth >= CALC_BANDWIDTH_BYTES_PER_S
    words = 10 if calc else bandwidth / hw.clock_hz / hw.word_bytes
    return "\n".join(
        [
            "[general]",
            f"run_name = {hw.name}",
            "",
            "[architecture_presets]",
            f"ArrayHeight: {hw.pe_array.rows}",
            f"ArrayWidth: {hw.pe_array.cols}",
            f"IfmapSramSzkB: {sizes['ifmap']}",
            f"FilterSramSzkB: {sizes['filter']}",
            f"OfmapSramSzkB: {sizes['ofmap']}",
            "IfmapOffset: 0",
            "FilterOffset: 10000000",
            "OfmapOffset: 20000000",
            f"Bandwidth : {words:g}",
            f"Dataflow : {hw.pe_array.dataflow.value}",
            "ReadRequestBuffer: 32",
            "WriteRequestBuffer: 32",
            "",
            "[layout]",
            "IfmapCustomLayout: False",
            "IfmapSRAMBankBandwidth: 10",
            "IfmapSRAMBankNum: 10",
            "IfmapSRAMBankPort: 2",
            "FilterCustomLayout: False",
            "FilterSRAMBankBandwidth: 10",
            "FilterSRAMBankNum: 10",
            "FilterSRAMBankPort: 2",
            "",
            "[sparsity]",
            "SparsitySupport : false",
            "SparseRep : ellpack_block",
            "OptimizedMapping : false",
            "BlockSize : 8",
            "RandomNumberGeneratorSeed : 40",
            "",
            "[run_presets]",
            f"InterfaceBandwidth: {'CALC' if calc else 'USER'}",
            "UseRamulatorTrace: False",
            "",
        ]
    )
