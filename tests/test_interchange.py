"""Interchange with SCALE-Sim and Accelergy/Timeloop: a SCALE-Sim ``.cfg`` as a hardware spec,
its topology CSVs as workloads, and the hardware exported as an architecture tree, an ERT
and a ``.cfg`` again."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from accel_sim import HardwareConfigError, load_hardware, simulate
from accel_sim.energy import default_mac_j, energy_prices
from accel_sim.export import accelergy_architecture, accelergy_ert, scalesim_config
from accel_sim.spec.scalesim_cfg import CALC_BANDWIDTH_BYTES_PER_S
from accel_sim.validation.scalesim_ref import _CONFIG, run_scalesim
from studies.cli import app
from workloads import WorkloadError
from workloads.topology import load_topology, topology_from_text

runner = CliRunner()


def scalesim_cfg(tmp_path: Path, name: str = "scale.cfg", **fields) -> Path:
    values = {"rows": 8, "cols": 8, "dataflow": "ws", "ifmap_kb": 64, "filter_kb": 64,
              "ofmap_kb": 32, **fields}
    path = tmp_path / name
    path.write_text(_CONFIG.format(**values))
    return path


def test_a_scalesim_cfg_loads_as_a_hardware_spec(tmp_path: Path) -> None:
    hw = load_hardware(scalesim_cfg(tmp_path, rows=16, cols=4, dataflow="os"))
    assert hw.name == "cosim_reference"
    assert (hw.pe_array.rows, hw.pe_array.cols, hw.pe_array.dataflow) == (16, 4, "os")
    assert hw.sram.ifmap.size_bytes == 64 * 1024  # SCALE-Sim's kB is 1,024 bytes
    assert hw.sram.ofmap.size_bytes == 32 * 1024
    assert hw.dram.bandwidth_bytes_per_s == CALC_BANDWIDTH_BYTES_PER_S  # CALC: no stalls
    assert (hw.mapping.search, hw.mapping.preload) == ("fixed", "serial")
    assert not hw.residency.activations_on_chip


def test_user_bandwidth_is_words_per_cycle(tmp_path: Path) -> None:
    path = scalesim_cfg(tmp_path)
    path.write_text(path.read_text().replace("Bandwidth: CALC", "Bandwidth: USER"))
    assert load_hardware(path).dram.bandwidth_bytes_per_s == 10 * 1e9  # Bandwidth : 10


@pytest.mark.parametrize(
    ("edit", "fragments"),
    [
        (("ArrayHeight: 8", "ArrayHieght: 8"),
         ("unknown key 'arrayhieght'", "did you mean 'arrayheight'", "arrayheight is missing")),
        (("[layout]", "[layuot]"), ("unknown section [layuot]", "did you mean 'layout'")),
        (("IfmapCustomLayout: False", "IfmapCustomLayout: True"), ("custom SRAM layouts",)),
        (("SparsitySupport : false", "SparsitySupport : true"), ("synthetic", "--artifact")),
        (("Dataflow : ws", "Dataflow : xs"), ("Dataflow = 'xs'", "ws, os or is")),
        (("ArrayWidth: 8", "ArrayWidth: eight"), ("'eight'", "whole number")),
        (("UseRamulatorTrace: False", "UseRamulatorTrace: True"), ("Ramulator",)),
    ],
)
def test_unknown_or_unsupported_cfg_fields_are_refused(
    tmp_path: Path, edit: tuple[str, str], fragments: tuple[str, ...]
) -> None:
    path = scalesim_cfg(tmp_path)
    path.write_text(path.read_text().replace(*edit))
    with pytest.raises(HardwareConfigError) as info:
        load_hardware(path)
    message = str(info.value)
    assert message.startswith(f"invalid SCALE-Sim config {path}")
    for fragment in fragments:
        assert fragment in message, message


def test_the_cfg_round_trips_through_the_spec(tmp_path: Path) -> None:
    first = load_hardware(scalesim_cfg(tmp_path, rows=32, cols=16, dataflow="is"))
    (tmp_path / "again.cfg").write_text(scalesim_config(first))
    again = load_hardware(tmp_path / "again.cfg")
    assert again.model_dump(exclude={"description"}) == first.model_dump(exclude={"description"})


def test_a_spec_scalesim_cannot_express_is_refused() -> None:
    with pytest.raises(HardwareConfigError, match="sparse section"):
        scalesim_config(load_hardware("systolic-32x32-ws-skip"))
    with pytest.raises(HardwareConfigError, match="only array chips"):
        scalesim_config(load_hardware("isaac-crossbar"))


def test_a_gemm_topology_reads_m_n_k() -> None:
    workload = topology_from_text("Layer, M, N, K,\nffn_in, 128, 3072, 768,\nfc2, 4, 5, 6\n")
    (ffn, fc2) = workload.gemms
    assert (ffn.name, ffn.m, ffn.n, ffn.k, ffn.mask) == ("ffn_in", 128, 3072, 768, None)
    assert (fc2.m, fc2.n, fc2.k) == (4, 5, 6)  # without the trailing comma too
    assert workload.family == "topology"


def test_a_layer_nm_ratio_is_scalesims_synthetic_mask() -> None:
    (op,) = topology_from_text("Layer, M, N, K, Sparsity,\nfc, 16, 8, 12, 2:4,\n").gemms
    assert op.mask.shape == (8, 12)
    assert op.mask[:, [0, 1, 4, 5, 8, 9]].all() and not op.mask[:, [2, 3, 6, 7, 10, 11]].any()
    (dense,) = topology_from_text("Layer, M, N, K, Sparsity,\nfc, 16, 8, 12, 1:1,\n").gemms
    assert dense.mask is None


def test_a_convolution_topology_is_scalesims_im2col(tmp_path: Path) -> None:
    from scalesim.topology_utils import topologies

    text = (
        "Layer name, IFMAP height, IFMAP width, Filter height, Filter width, Channels, "
        "Num filter, Strides,\n"
        "Conv1, 224, 224, 7, 7, 3, 64, 2,\n"
        "Conv2, 56, 56, 3, 3, 64, 64, 1,\n"
        "CB1DP, 14, 14, 3, 3, 4, 1, 1,\n"
    )
    path = tmp_path / "net.csv"
    path.write_text(text)
    ours = load_topology(path).gemms
    reference = topologies()
    reference.load_arrays(str(path))
    reference.topo_calc_hyperparams()
    expected = []
    for index in range(reference.get_num_layers()):
        oh, ow, _, window = reference.layers_calculated_hyperparams[index]
        expected.append((oh * ow, window, reference.get_layer_num_filters(index)))
    assert [(op.m, op.k, op.n) for op in ours] == expected
    assert [op.name for op in ours][-1] == "CB1DPChannel_3"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("Layer, M, N, K,\n", "at least one layer row"),
        ("Layer, M,\nx, 1,\n", "expected 'Layer, M, N, K'"),
        ("Layer, M, N, K,\nx, 0, 1, 1,\n", "M 0 must be at least 1"),
        ("Layer, M, N, K,\nx, 1, a, 1,\n", "N 'a' is not a whole number"),
        ("Layer, M, N, K,\nx, 1, 1, 1,\nx, 2, 2, 2,\n", "repeats"),
        ("Layer, M, N, K, S,\nx, 1, 1, 4, 3:2,\n", "N must not exceed M"),
    ],
)
def test_bad_topologies_are_one_clear_error(text: str, fragment: str) -> None:
    with pytest.raises(WorkloadError, match=fragment):
        topology_from_text(text, "t")


def test_imported_cfg_and_topology_reproduce_scalesim_on_one_layer(tmp_path: Path) -> None:
    """The same GEMM on the same array: SCALE-Sim's compute cycles (CALC mode) and ours under
    the imported SCALE-Sim schedule agree to a cycle (SCALE-Sim counts one less overall)."""
    m, n, k = 64, 80, 96
    topology = tmp_path / "layer.csv"
    topology.write_text(f"Layer, M, N, K,\nfc, {m}, {n}, {k},\n")
    for dataflow in ("ws", "os", "is"):
        cfg = scalesim_cfg(tmp_path, name=f"{dataflow}.cfg", dataflow=dataflow)
        result = simulate(load_topology(topology), load_hardware(cfg))
        (reference,) = run_scalesim([(m, k, n)], rows=8, cols=8, dataflow=dataflow)
        assert abs(result.compute_cycles - reference.compute_cycles) <= 1, dataflow
        assert result.stall_cycles <= 1


def test_simulate_takes_a_cfg_and_a_topology(tmp_path: Path) -> None:
    cfg = scalesim_cfg(tmp_path)
    topology = tmp_path / "layers.csv"
    topology.write_text("Layer, M, N, K,\nqkv, 128, 2304, 768,\nffn_in, 128, 3072, 768,\n")
    out = tmp_path / "r.json"
    result = runner.invoke(
        app, ["simulate", "--hw", str(cfg), "--topology", str(topology), "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "qkv" in result.stdout and "ffn_in" in result.stdout
    document = json.loads(out.read_text())
    assert [op["name"] for op in document["ops"]] == ["qkv", "ffn_in"]
    assert document["hardware_config"]["pe_array"]["rows"] == 8
    both = runner.invoke(app, ["simulate", "--topology", str(topology), "--model", "bert-tiny"])
    assert both.exit_code == 2 and "--topology replaces the model" in both.stderr


def test_accelergy_architecture_names_every_component() -> None:
    hw = load_hardware("systolic-32x32-ws")
    arch = accelergy_architecture(hw)["architecture"]
    assert arch["version"] == 0.3
    (system,) = arch["subtree"]
    assert system["local"][0]["class"] == "DRAM"
    chip = system["subtree"][0]
    names = [component["name"] for component in chip["local"]]
    assert names == ["ifmap_sram", "filter_sram", "ofmap_sram", "vector_unit"]
    ifmap = chip["local"][0]["attributes"]
    assert ifmap["size_bytes"] == hw.sram.ifmap.size_bytes
    assert ifmap["depth"] * ifmap["width"] // 8 == hw.sram.ifmap.size_bytes
    (pe,) = chip["subtree"]
    assert pe["name"] == "PE[0..1023]"
    assert [c["class"] for c in pe["local"]] == ["reg", "intmac"]


def test_the_ert_holds_the_simulators_prices() -> None:
    hw = load_hardware("systolic-32x32-ws")
    tables = {t["name"]: {a["name"]: a["energy"] for a in t["actions"]}
              for t in accelergy_ert(hw)["ERT"]["tables"]}
    prices = energy_prices(hw)
    assert tables["system.chip.PE[0..1023].mac"]["compute"] == pytest.approx(
        default_mac_j("int8") / 1e-12
    )
    assert tables["system.DRAM"]["read"] == pytest.approx(8 * 8 * 8.0)  # 64-bit word, 8 pJ/bit
    width = round(hw.sram.ifmap.bytes_per_cycle)
    assert tables["system.chip.ifmap_sram"]["read"] == pytest.approx(
        prices.ifmap_j[0] * width / 1e-12
    )


def test_multi_core_chips_nest_cores() -> None:
    from accel_sim.spec import derive

    hw = derive(load_hardware("systolic-32x32-ws"), {
        "cores": 4, "global_buffer": {"size_bytes": "1 MiB", "bytes_per_cycle": 64}})
    chip = accelergy_architecture(hw)["architecture"]["subtree"][0]["subtree"][0]
    assert chip["local"][0]["name"] == "global_buffer"
    assert chip["subtree"][0]["name"] == "core[0..3]"
    names = [t["name"] for t in accelergy_ert(hw)["ERT"]["tables"]]
    assert "system.chip.core[0..3].ifmap_sram" in names
    assert "system.chip.global_buffer" in names


def test_cosim_export_writes_each_format(tmp_path: Path) -> None:
    cfg = scalesim_cfg(tmp_path)
    out = tmp_path / "accelergy"
    result = runner.invoke(app, ["export", "hardware", str(cfg), "--format", "accelergy",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert yaml.safe_load((out / "arch.yaml").read_text())["architecture"]["version"] == 0.3
    assert yaml.safe_load((out / "ERT.yaml").read_text())["ERT"]["tables"]
    resolved = runner.invoke(app, ["export", "hardware", str(cfg), "--out", "-",
                                   "--set", "pe_array.rows=16"])
    assert resolved.exit_code == 0, resolved.output
    assert yaml.safe_load(resolved.stdout)["pe_array"]["rows"] == 16
    back = tmp_path / "back.cfg"
    again = runner.invoke(app, ["export", "hardware", str(cfg), "--format", "scalesim",
                                "--out", str(back)])
    assert again.exit_code == 0, again.output
    assert load_hardware(back).pe_array.rows == 8
    refused = runner.invoke(app, ["export", "hardware", "isaac-crossbar", "--format",
                                  "accelergy", "--out", str(tmp_path / "x")])
    assert refused.exit_code == 2 and "only array chips" in refused.stderr


def test_export_masks_stay_numpy() -> None:
    """Topology masks are plain read-only numpy arrays, like an artifact's."""
    (op,) = topology_from_text("Layer, M, N, K, S,\nfc, 4, 4, 8, 1:2,\n").gemms
    assert isinstance(op.mask, np.ndarray) and not op.mask.flags.writeable


def test_the_docs_example_files_are_what_the_commands_write(tmp_path: Path, monkeypatch) -> None:
    """docs/interchange.md includes files cosim export wrote: they must still be current."""
    repo = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(repo)  # the example paths are relative, as in the docs
    cfg = "docs/examples/scalesim/scale.cfg"
    result = runner.invoke(app, ["export", "hardware", cfg, "--format", "accelergy",
                                 "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    again = runner.invoke(app, ["export", "hardware", cfg, "--format", "scalesim",
                                "--out", str(tmp_path / "roundtrip.cfg")])
    assert again.exit_code == 0, again.output
    committed = repo / "docs" / "results" / "interchange"
    for name in ("arch.yaml", "ERT.yaml", "roundtrip.cfg"):
        assert (tmp_path / name).read_text() == (committed / name).read_text(), name
    document = json.loads((committed / "simulate.json").read_text())
    fresh = runner.invoke(app, ["simulate", "--hw", cfg, "--topology",
                                "docs/examples/scalesim/bert_query.csv", "--json", "-"])
    assert fresh.exit_code == 0, fresh.output
    assert json.loads(fresh.stdout)["total"]["cycles"] == document["total"]["cycles"]
