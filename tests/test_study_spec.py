"""Study specs: validation names the field, expansion counts, paths stay in the output dir."""

from __future__ import annotations

import pytest

from studies.spec import StudySpecError, builtin_names, expand, load_spec, spec_from_dict

BASE = {"name": "t", "models": ["bert-tiny"], "seq_lens": [8], "patterns": ["block:4x4"]}


def spec(**fields):
    return spec_from_dict({**BASE, **fields})


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"bogus": 1}, "bogus: unknown key"),
        ({"seq_lens": [0]}, "seq_lens.0"),
        ({"patterns": ["dense", "block:0x4"]}, "patterns.1.pattern"),
        ({"sparsities": [1.5]}, "sparsities"),
        ({"kind": "sweep"}, "kind"),
        ({"patterns": [{"pattern": "unstructured", "sparsity": 0.5}]}, "patterns.0.sparsity"),
        ({"outputs": {"report": "../report.md"}}, "outputs.report"),
        ({"outputs": {"plots_dir": "/tmp/plots"}}, "outputs.plots_dir"),
        ({"outputs": {"plots_dir": "C:\\plots"}}, "outputs.plots_dir"),
        ({"patterns": [], "artifacts": []}, "nothing to simulate"),
    ],
)
def test_invalid_spec_names_the_field(fields, named):
    with pytest.raises(StudySpecError, match="invalid study spec") as error:
        spec(**fields)
    assert named in str(error.value)
    assert "\n" not in str(error.value)


def test_grid_values_are_validated_by_the_hardware_spec():
    with pytest.raises(StudySpecError, match=r"grid.*pe_array\.rows"):
        expand(spec(grid={"pe_array.rows": [16, -1]}))
    with pytest.raises(StudySpecError, match=r"dram\.bandwidth_bytes_per_s"):
        expand(spec(grid={"dram.bandwidth_bytes_per_s": ["fast"]}))


def test_expansion_counts_and_full_hardware():
    s = spec(
        seq_lens=[8, 16],
        sparsities=[0.5, 0.75],
        grid={
            "pe_array": [{"rows": 8, "cols": 8}, {"rows": 16, "cols": 16}],
            "dram.bandwidth_bytes_per_s": ["16 GB/s", "64 GB/s"],
        },
        patterns=[
            "block:4x4",
            "dense",
            {"pattern": "nm:2:4", "grid": {"sparse.zero_handling": ["nm", "skipping"]}},
        ],
    )
    points = expand(s)
    hw = 2 * 2  # arrays x bandwidths
    assert len(points) == 2 * hw * 2 + hw * 2 + 2 * hw * 2  # block, dense, nm x modes
    first = points[0]
    assert first["hardware"]["pe_array"] == {**first["hardware"]["pe_array"], "rows": 8, "cols": 8}
    assert first["hardware"]["dram"]["bandwidth_bytes_per_s"] == 16e9
    assert "energy" in first["hardware"] and "area" in first["hardware"]  # the full spec
    nm = [p for p in points if p["pattern"] == "nm:2:4"]
    assert {p["sparsity"] for p in nm} == {0.5}  # N:M sparsity is fixed
    assert {p["hardware"]["sparse"]["zero_handling"] for p in nm} == {"nm", "skipping"}
    assert {p["sparsity"] for p in points if p["pattern"] == "dense"} == {0.0}


def test_compression_ratios_and_duplicates():
    s = spec(compression_ratios=[1, 2, 4], patterns=["unstructured", "unstructured"])
    assert [p["sparsity"] for p in expand(s)] == [0.0, 0.5, 0.75]


def test_builtin_specs_load_and_expand():
    assert {"block-size", "compression", "dse"} <= set(builtin_names())
    sizes = {}
    for name in builtin_names():
        loaded, base = load_spec(name)
        sizes[name] = len(expand(loaded, base))
    assert sizes["block-size"] == 14  # 12 systolic points, the outer-product and flexible arrays
    with pytest.raises(StudySpecError, match="unknown study"):
        load_spec("no-such-study")


def test_spec_file_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(StudySpecError, match="not valid YAML"):
        load_spec(bad)
    with pytest.raises(StudySpecError, match="not found"):
        load_spec(tmp_path / "missing.yaml")
