"""Run SCALE-Sim 3.0.0 (PyPI ``scalesim``, a dev dependency) on GEMMs, in process.

Used by the agreement tests and the benchmark. SCALE-Sim runs in CALC bandwidth mode, where
it reports no stalls, so its "Total Cycles" column is its compute-cycle count; traces are
not written (``save_disk_space=True``). Its GEMM CSV is ``Layer, M, N, K,`` (trailing comma).
SCALE-Sim 3.0.0 needs numpy < 2.4 (the dev extra pins it).
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

_CONFIG = """[general]
run_name = cosim_reference

[architecture_presets]
ArrayHeight: {rows}
ArrayWidth: {cols}
IfmapSramSzkB: {ifmap_kb}
FilterSramSzkB: {filter_kb}
OfmapSramSzkB: {ofmap_kb}
IfmapOffset: 0
FilterOffset: 10000000
OfmapOffset: 20000000
Bandwidth : 10
Dataflow : {dataflow}
ReadRequestBuffer: 32
WriteRequestBuffer: 32

[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: 10
IfmapSRAMBankNum: 10
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: 10
FilterSRAMBankNum: 10
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport : false
SparseRep : ellpack_block
OptimizedMapping : false
BlockSize : 8
RandomNumberGeneratorSeed : 40

[run_presets]
InterfaceBandwidth: CALC
UseRamulatorTrace: False
"""


@dataclass(frozen=True)
class ScaleSimGemm:
    """SCALE-Sim's numbers for one GEMM (word counts, cycles) and its wall time."""

    m: int
    k: int
    n: int
    compute_cycles: int
    ifmap_sram_reads: int
    filter_sram_reads: int
    ofmap_sram_writes: int
    wall_s: float


def run_scalesim(
    gemms: list[tuple[int, int, int]],
    rows: int,
    cols: int,
    dataflow: str,
    sram_kb: tuple[int, int, int] = (64, 64, 64),
) -> list[ScaleSimGemm]:
    """SCALE-Sim results for each (m, k, n) in ``gemms``, one layer each."""
    from scalesim.scale_sim import scalesim  # dev dependency, imported only here

    results = []
    with tempfile.TemporaryDirectory(prefix="scalesim-") as tmp:
        root = Path(tmp)
        config = root / "config.cfg"
        config.write_text(
            _CONFIG.format(
                rows=rows,
                cols=cols,
                dataflow=dataflow,
                ifmap_kb=sram_kb[0],
                filter_kb=sram_kb[1],
                ofmap_kb=sram_kb[2],
            )
        )
        layout = root / "layout.csv"
        layout.write_text("Layer,\n")
        for index, (m, k, n) in enumerate(gemms):
            topology = root / f"gemm{index}.csv"
            topology.write_text(f"Layer, M, N, K,\ngemm{index}, {m}, {n}, {k},\n")
            started = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                sim = scalesim(
                    save_disk_space=True,
                    verbose=False,
                    config=str(config),
                    topology=str(topology),
                    layout=str(layout),
                    input_type_gemm=True,
                )
                sim.run_scale(top_path=str(root / f"out{index}"))
            wall_s = time.perf_counter() - started
            layer = sim.runner.single_layer_sim_object_list[0]
            compute = layer.get_compute_report_items()
            detail = layer.get_detail_report_items()
            results.append(
                ScaleSimGemm(
                    m=m,
                    k=k,
                    n=n,
                    compute_cycles=int(compute[1]),
                    ifmap_sram_reads=int(detail[2]),
                    filter_sram_reads=int(detail[5]),
                    ofmap_sram_writes=int(detail[8]),
                    wall_s=wall_s,
                )
            )
    return results
