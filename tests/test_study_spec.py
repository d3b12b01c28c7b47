"""Study specs: validation names the field, expansion counts, paths stay in the output dir."""

from __future__ import annotations

import pytest

from studies.spec import StudySpecError, builtin_names, expand, load_spec, spec_from_dict

BASE = {
    "name": "t",
    "models": ["bert-tiny"],
    "seq_lens": [8],
    "patterns": ["block:4x4"],
    "sparsities": [0.5],
}


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
        ({"pareto": {"epsilon": 2}}, "pareto.epsilon"),
        ({"pareto": {"objectives": ["latency s"]}}, "pareto.objectives"),
        ({"pareto": {"constraints": {"area_mm2": "< 5"}}}, "pareto.constraints"),
    ],
)
def test_invalid_spec_names_the_field(fields, named):
    with pytest.raises(StudySpecError, match="invalid study spec") as error:
        spec(**fields)
    assert named in str(error.value)
    assert "\n" not in str(error.value)


def test_a_missing_sparsities_is_an_error_naming_the_patterns():
    """No silent default of 0.5: a pattern that needs a sparsity must get one."""
    fields = {k: v for k, v in BASE.items() if k != "sparsities"}
    with pytest.raises(StudySpecError) as error:
        spec_from_dict({**fields, "patterns": ["dense", "block:4x4", "nm:2:4", "row"]})
    message = str(error.value)
    assert "patterns[1] (block:4x4) needs a sparsity" in message
    assert "patterns[3] (row) needs a sparsity" in message
    assert "patterns[0]" not in message and "patterns[2]" not in message
    assert "sparsities or compression_ratios" in message
    # dense and N:M need none; a pattern's own sparsities are enough
    assert expand(spec_from_dict({**fields, "patterns": ["dense", "nm:2:4"]}))
    own = {**fields, "patterns": [{"pattern": "row", "sparsities": [0.25]}]}
    assert [p["sparsity"] for p in expand(spec_from_dict(own))] == [0.25]


def test_study_level_sparsities_and_ratios_together_are_refused():
    with pytest.raises(StudySpecError, match="not both"):
        spec(compression_ratios=[2])


def test_unknown_keys_get_a_did_you_mean():
    with pytest.raises(StudySpecError, match=r"sparsity: unknown key \(did you mean 'sparsities'"):
        spec_from_dict({**BASE, "sparsity": [0.5]})
    with pytest.raises(StudySpecError, match=r"patterns.0.gird: unknown key \(did you mean 'grid'"):
        spec(patterns=[{"pattern": "row", "gird": {}}])


def test_every_problem_of_a_spec_is_reported_at_once():
    with pytest.raises(StudySpecError) as error:
        expand(spec(
            models=["bert-tiny", "bert-tiyn"],
            hardware=["systolic-32x32-ws", "systolic-32x32-sw"],
            grid={"pe_array.rows": [0]},
        ))
    message = str(error.value)
    assert message.startswith("3 problems in the study spec")
    assert "models[1]" in message and "did you mean 'bert-tiny'" in message
    assert "did you mean 'systolic-32x32-ws'" in message
    assert "pe_array.rows" in message
    assert "\n" not in message


def test_an_unknown_study_gets_a_did_you_mean():
    with pytest.raises(StudySpecError, match="did you mean 'block-size'"):
        load_spec("blocksize")


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
    s = spec(
        sparsities=None, compression_ratios=[1, 2, 4], patterns=["unstructured", "unstructured"]
    )
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
