"""A SCALE-Sim 3.0.0 ``.cfg`` file as a hardware spec (``cosim simulate --hw scale.cfg``).

The INI file is read with ``configparser`` and mapped field by field onto an array chip; the
result is validated like any YAML spec. What SCALE-Sim does not describe takes the values
below, and the schedule is SCALE-Sim's own (fixed loop order, serial preload, every operand
in DRAM), so the imported chip reproduces SCALE-Sim's cycle counts; ``--set
mapping.search=best`` (and ``residency.activations_on_chip=true``) lets the mapper improve on
it.

=======================================  ===========================================
SCALE-Sim                                hardware spec
=======================================  ===========================================
``[general] run_name``                   ``name``
``ArrayHeight`` / ``ArrayWidth``         ``pe_array.rows`` / ``pe_array.cols``
``Dataflow`` (ws, os, is)                ``pe_array.dataflow``
``IfmapSramSzkB`` (x 1,024 bytes), ...   ``sram.ifmap.size_bytes``, filter, ofmap
``InterfaceBandwidth: USER`` +           ``dram.bandwidth_bytes_per_s`` = words/cycle
``Bandwidth`` (words/cycle)              x 1 byte x the 1 GHz clock
``InterfaceBandwidth: CALC``             SCALE-Sim sizes the interface so that nothing
                                         stalls: 1 PB/s, which never stalls
=======================================  ===========================================

Not in a SCALE-Sim file, so set here: int8 words at 1 GHz, double-buffered SRAM with
SCALE-Sim-sized ports (``max(rows, cols)`` bytes/cycle in, twice that x 4-byte partial sums
out), 8 pJ/bit DRAM (LPDDR4, as the 32x32 presets) and a vector unit of ``cols`` lanes.

Read and without effect on the model: the address offsets, the request-buffer sizes, the
bank settings of the default layout and the sparse representation while sparsity is off.
Refused with an error: a custom SRAM layout, SCALE-Sim's sparsity support (its synthetic
layer-wise N:M pattern: prune real weights and use a sparse hardware section instead),
Ramulator traces, a topology named inside the config (pass it with ``--topology``), and any
section or key SCALE-Sim 3.0.0 does not define.
"""

from __future__ import annotations

import configparser
from typing import Any

__all__ = ["SCALESIM_FIELDS", "ScaleSimConfigError", "config_from_scalesim"]

KIB = 1024
CLOCK_HZ = 1e9
CALC_BANDWIDTH_BYTES_PER_S = 1e15
DRAM_J_PER_BIT = 8e-12

# Every section and key SCALE-Sim 3.0.0 reads (configparser lower-cases key names).
SCALESIM_FIELDS: dict[str, set[str]] = {
    "general": {"run_name"},
    "architecture_presets": {
        "arrayheight",
        "arraywidth",
        "ifmapsramszkb",
        "filtersramszkb",
        "ofmapsramszkb",
        "ifmapoffset",
        "filteroffset",
        "ofmapoffset",
        "bandwidth",
        "dataflow",
        "readrequestbuffer",
        "writerequestbuffer",
    },
    "layout": {
        "ifmapcustomlayout",
        "ifmapsrambankbandwidth",
        "ifmapsrambanknum",
        "ifmapsrambankport",
        "filtercustomlayout",
        "filtersrambankbandwidth",
        "filtersrambanknum",
        "filtersrambankport",
    },
    "sparsity": {
        "sparsitysupport",
        "sparserep",
        "optimizedmapping",
        "blocksize",
        "randomnumbergeneratorseed",
        "nonzeroelems",
    },
    "run_presets": {"interfacebandwidth", "useramulatortrace"},
    "network_presets": {"topologycsvloc"},
}
REQUIRED = {
    "architecture_presets": (
        "arrayheight",
        "arraywidth",
        "ifmapsramszkb",
        "filtersramszkb",
        "ofmapsramszkb",
        "dataflow",
    ),
}


class ScaleSimConfigError(ValueError):
    """A SCALE-Sim config that cannot be read (``load_hardware`` raises it as a
    ``HardwareConfigError``)."""


class _Error(ValueError):
    pass


def _close(name: str, choices: set[str] | list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, sorted(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _int(config: configparser.ConfigParser, section: str, key: str) -> int:
    text = config.get(section, key).strip()
    try:
        value = int(text)
    except ValueError:
        raise _Error(f"[{section}] {key} = {text!r}: expected a whole number") from None
    if value < 1:
        raise _Error(f"[{section}] {key} = {value}: expected a positive number")
    return value


def _flag(config: configparser.ConfigParser, section: str, key: str) -> bool:
    if not config.has_option(section, key):
        return False
    text = config.get(section, key).strip().lower()
    if text not in {"true", "false"}:
        raise _Error(f"[{section}] {key} = {text!r}: expected True or False")
    return text == "true"


def _check_known(config: configparser.ConfigParser) -> None:
    problems = []
    for section in config.sections():
        if section not in SCALESIM_FIELDS:
            problems.append(
                f"unknown section [{section}]{_close(section, set(SCALESIM_FIELDS))}: "
                f"SCALE-Sim 3.0.0 reads {', '.join(f'[{s}]' for s in SCALESIM_FIELDS)}"
            )
            continue
        for key in config.options(section):
            if key not in SCALESIM_FIELDS[section]:
                problems.append(
                    f"[{section}] unknown key {key!r}{_close(key, SCALESIM_FIELDS[section])}"
                )
    for section, keys in REQUIRED.items():
        for key in keys:
            if not config.has_option(section, key):
                problems.append(f"[{section}] {key} is missing")
    if problems:
        raise _Error("; ".join(problems))


def _check_supported(config: configparser.ConfigParser) -> None:
    refused = []
    for key in ("ifmapcustomlayout", "filtercustomlayout"):
        if config.has_section("layout") and _flag(config, "layout", key):
            refused.append(f"[layout] {key} = True: custom SRAM layouts are not modelled")
    if config.has_section("sparsity") and _flag(config, "sparsity", "sparsitysupport"):
        refused.append(
            "[sparsity] SparsitySupport = true: SCALE-Sim's layer-wise sparsity is a synthetic "
            "pattern; prune real weights (cosim prune, --artifact) and give the chip a sparse "
            "section instead (--set sparse.zero_handling=skipping)"
        )
    for key in ("useramulatortrace",):
        if config.has_section("run_presets") and _flag(config, "run_presets", key):
            refused.append(f"[run_presets] {key} = True: Ramulator traces are not supported")
    if config.has_section("network_presets"):
        refused.append(
            "[network_presets] TopologyCsvLoc: name the topology with --topology instead"
        )
    if refused:
        raise _Error("unsupported: " + "; ".join(refused))


def config_from_scalesim(text: str, source: str = "<cfg>") -> dict[str, Any]:
    """The hardware-spec mapping of a SCALE-Sim ``.cfg`` text (see the module docstring).

    Raises :class:`ScaleSimConfigError` naming every unknown, missing or unsupported field.
    """
    config = configparser.ConfigParser()
    try:
        config.read_string(text, source=source)
        _check_known(config)
        _check_supported(config)
        arch = "architecture_presets"
        rows, cols = _int(config, arch, "arrayheight"), _int(config, arch, "arraywidth")
        dataflow = config.get(arch, "dataflow").strip().lower()
        if dataflow not in {"ws", "os", "is"}:
            raise _Error(f"[{arch}] Dataflow = {dataflow!r}: expected ws, os or is")
        mode = "CALC"
        if config.has_option("run_presets", "interfacebandwidth"):
            mode = config.get("run_presets", "interfacebandwidth").strip().upper()
        if mode not in {"CALC", "USER"}:
            raise _Error(f"[run_presets] InterfaceBandwidth = {mode!r}: expected CALC or USER")
        if mode == "USER":
            if not config.has_option(arch, "bandwidth"):
                raise _Error(f"[{arch}] Bandwidth is missing (InterfaceBandwidth: USER)")
            words = config.get(arch, "bandwidth").split(",")[0]
            try:
                bandwidth = float(words) * CLOCK_HZ  # one-byte words
            except ValueError:
                raise _Error(f"[{arch}] Bandwidth = {words!r}: expected words per cycle") from None
        else:
            bandwidth = CALC_BANDWIDTH_BYTES_PER_S
        name = config.get("general", "run_name", fallback="").strip().strip('"') or "scalesim"
        port = max(rows, cols)
        sizes = {
            buffer: _int(config, arch, f"{buffer}sramszkb") * KIB
            for buffer in ("ifmap", "filter", "ofmap")
        }
    except (configparser.Error, _Error) as error:
        message = " ".join(str(error).split())
        raise ScaleSimConfigError(f"invalid SCALE-Sim config {source}: {message}") from None
    return {
        "name": name,
        "description": f"imported from SCALE-Sim config {source} ({mode} interface bandwidth)",
        "pe_array": {
            "rows": rows,
            "cols": cols,
            "dataflow": dataflow,
            "precision": "int8",
            "clock_hz": CLOCK_HZ,
        },
        "sram": {
            "double_buffered": True,
            "ifmap": {"size_bytes": sizes["ifmap"], "bytes_per_cycle": port},
            "filter": {"size_bytes": sizes["filter"], "bytes_per_cycle": port},
            "ofmap": {"size_bytes": sizes["ofmap"], "bytes_per_cycle": 2 * port * 4},
        },
        "dram": {"bandwidth_bytes_per_s": bandwidth, "energy_per_bit_j": DRAM_J_PER_BIT},
        "vector_unit": {"lanes": cols},
        "mapping": {"search": "fixed", "preload": "serial"},
        "residency": {"activations_on_chip": False},
    }
