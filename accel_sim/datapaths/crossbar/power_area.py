"""Peak power and area of a crossbar chip, per tile and per component (ISAAC's Table I)."""

from __future__ import annotations

from accel_sim.spec.crossbar_chip import CrossbarChipConfig

__all__ = ["chip_area_mm2", "peak_macs_per_s", "tile_area_mm2", "tile_power_w"]

UM2_PER_MM2 = 1e6


def tile_power_w(chip: CrossbarChipConfig) -> dict[str, float]:
    """Power of one tile with every crossbar busy on dense blocks, by component (the keys of
    ``tile_area_mm2``) [D]: the per-action energies the simulator charges, times their rates
    at full activity, plus the units a transformer never uses (``IDLE_TILE_UNITS``) at their
    stated power. Per crossbar and read: ``rows`` DAC drives (``dac_bits`` read out of the input
    register each), ``cols`` samples, conversions and IMA output-register updates; per block
    (``crossbars_per_block`` crossbars) and vector (``input_slices`` reads): ``cols`` outputs
    into the tile output register and through the tile shift-and-add."""
    xb, energy, tile = chip.crossbar, chip.energy, chip.tile
    crossbars = tile.crossbars
    reads_per_s = 1.0 / chip.read_s
    conversions_per_s = crossbars * xb.cols * reads_per_s
    register_bytes_per_s = crossbars * xb.rows * xb.dac_bits / 8 * reads_per_s
    outputs_per_s = crossbars / chip.crossbars_per_block * xb.cols * reads_per_s / chip.input_slices
    out_bytes = chip.encoding.output_bits / 8
    return {
        "adc": conversions_per_s * energy.adc_conversion_j,
        "dac": crossbars * xb.rows * reads_per_s * energy.dac_drive_j,
        "sample_hold": conversions_per_s * energy.sample_hold_j,
        "crossbar": crossbars * reads_per_s * energy.crossbar_read_j,
        "shift_add": conversions_per_s * energy.shift_add_j
        + outputs_per_s * energy.tile_shift_add_j,
        "registers": register_bytes_per_s * energy.input_register_j_per_byte
        + conversions_per_s * energy.ima_output_register_j
        + outputs_per_s * out_bytes * energy.tile_output_register_j_per_byte,
        "buffer": tile.buffer_bytes_per_s * energy.buffer_j_per_byte,
        "network": tile.network_bytes_per_s * energy.network_j_per_byte,
        "sigmoid": energy.sigmoid_power_w,
        "max_pool": energy.max_pool_power_w,
    }


def tile_area_mm2(chip: CrossbarChipConfig) -> dict[str, float]:
    """Area of one tile by component (mm^2)."""
    xb, area, tile = chip.crossbar, chip.area, chip.tile
    crossbars = tile.crossbars
    um2 = {
        "adc": crossbars * xb.adcs_per_crossbar * area.adc_um2,
        "dac": crossbars * xb.rows * area.dac_um2,
        "sample_hold": crossbars * xb.cols * area.sample_hold_um2,
        "crossbar": crossbars * area.crossbar_um2 * (xb.rows * xb.cols) / (128 * 128),
        "shift_add": tile.imas * tile.shift_adds_per_ima * area.shift_add_um2
        + area.tile_shift_add_um2,
        "registers": tile.imas * area.ima_registers_um2 + area.tile_registers_um2,
        "buffer": area.edram_um2 * tile.buffer_bytes / (64 * 1024),
        "network": tile.imas * area.bus_um2_per_ima + area.router_um2_per_tile,
        "sigmoid": area.sigmoid_um2,
        "max_pool": area.max_pool_um2,
    }
    return {name: value / UM2_PER_MM2 for name, value in um2.items()}


def chip_area_mm2(chip: CrossbarChipConfig) -> dict[str, float]:
    """Chip area by component (``CROSSBAR_AREA_COMPONENTS``): tiles plus the digital unit."""
    per_tile = tile_area_mm2(chip)
    digital_um2 = (
        chip.digital.macs_per_cycle * chip.area.digital_mac_um2
        + chip.digital.vector_lanes * chip.area.vector_lane_um2
    )
    return {
        **{name: value * chip.tiles for name, value in per_tile.items()},
        "digital": digital_um2 / UM2_PER_MM2,
    }


def peak_macs_per_s(chip: CrossbarChipConfig) -> float:
    """Weight MACs per second with every crossbar busy on dense blocks."""
    return chip.peak_macs_per_s
