"""Bad input at the library entry points the CLI builds on: one table of cases.

Each case calls a loader or validator (hardware specs, study specs, prune jobs, artifacts,
model directories, GLUE TSVs, workloads and masks) with one malformed, missing, wrong-typed,
out-of-range or inconsistent input and expects that module's own error class with one line
naming the field or file and the expected form. The CLI turns these into ``error:`` lines
(tests/test_bad_input_cli.py); here the error type is pinned too, so a caller can catch it.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from accel_sim.spec import HardwareConfigError, hardware_from_dict, load_hardware
from pruning.artifact import MANIFEST_FILE, MASKS_FILE, ArtifactError, load_artifact
from pruning.glue import GlueDataError, load_split
from pruning.job import PruneJobError, prune_job
from pruning.models import ModelLoadError, load_model
from pruning.patterns import PatternError, check_fits, parse_pattern
from studies.spec import StudySpecError, load_spec, spec_from_dict
from workloads import WorkloadError, attach_masks, build_workload

Q = "bert.encoder.layer.0.attention.self.query.weight"  # [64, 64] in the tiny model


def _spec(**changes: Any) -> dict:
    data = {"name": "s", "models": ["bert-tiny"], "patterns": ["block:4x4"]}
    data.update(changes)
    return data


def _job(**changes: Any) -> dict:
    return {"model": "bert-tiny", "pattern": "unstructured", "sparsity": 0.5, **changes}


def _artifact(tmp: Path, src: Path, change: Callable[[Path], None]) -> Path:
    copy = tmp / "artifact"
    shutil.copytree(src, copy)
    change(copy)
    return copy


def _manifest(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def apply(directory: Path) -> None:
        manifest = json.loads((directory / MANIFEST_FILE).read_text())
        change(manifest)
        (directory / MANIFEST_FILE).write_text(json.dumps(manifest))

    return apply


def _masks(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def apply(directory: Path) -> None:
        from safetensors.numpy import load_file, save_file

        packed = load_file(str(directory / MASKS_FILE))
        change(packed)
        save_file(packed, str(directory / MASKS_FILE))

    return apply


def _glue(tmp: Path, task: str, files: dict[str, str | bytes]) -> Path:
    for name, content in files.items():
        path = tmp / "glue" / task / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return tmp / "glue"


def _file(path: Path) -> Path:
    path.write_text("not a directory\n")
    return path


def _config_dir(tmp: Path, config: dict) -> Path:
    directory = tmp / "model"
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps(config))
    return directory


def _tiny_workload():
    from tests.tiny_bert import tiny_model

    return build_workload(tiny_model().config, batch=1, seq_len=8)


MRPC = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
COLA_ROW = "src\t1\t\tA sentence .\n"

# (call(tmp, artifact), error class, fragments of the message)
Case = tuple[Callable[[Path, Path], Any], type[Exception], tuple[str, ...]]
CASES: dict[str, Case] = {
    # --- hardware specs (accel_sim.spec) ----------------------------------------------
    "hw dict: a list": (
        lambda tmp, a: hardware_from_dict([1, 2], "x.yaml"), HardwareConfigError,
        ("x.yaml", "expected a YAML mapping", "list")),
    "hw dict: a string": (
        lambda tmp, a: hardware_from_dict("rows: 32", "x.yaml"), HardwareConfigError,
        ("expected a YAML mapping", "str")),
    "hw dict: empty mapping": (
        lambda tmp, a: hardware_from_dict({}, "x.yaml"), HardwareConfigError,
        ("pe_array: required field is missing", "dram: required field is missing")),
    "hw dict: kind not a string": (
        lambda tmp, a: hardware_from_dict({"kind": 3}, "x.yaml"), HardwareConfigError,
        ("kind: 3", "datapath: one of systolic, pe-array, outer-product, flexible, crossbar")),
    "hw dict: datapath not a string": (
        lambda tmp, a: hardware_from_dict({"datapath": [1]}, "x.yaml"), HardwareConfigError,
        ("datapath: [1]", "expected one of systolic, pe-array, outer-product, flexible, crossbar")),
    "hw dict: crossbar tiles a float": (
        lambda tmp, a: hardware_from_dict({"kind": "crossbar", "name": "c", "tiles": 1.5,
                                           "dram": {"bandwidth_bytes_per_s": 1e9,
                                                    "energy_per_bit_j": 1e-12}}),
        HardwareConfigError, ("tiles", "integer")),
    "hw: preset name with a typo": (
        lambda tmp, a: load_hardware("systolic-32x32-wss"), HardwareConfigError,
        ("'systolic-32x32-wss'", "systolic-32x32-ws,")),
    "hw: directory, not a file": (
        lambda tmp, a: load_hardware(str(tmp) + "/"), HardwareConfigError, ("not found",)),
    # --- study specs (studies.spec) -----------------------------------------------------
    "spec dict: a list": (
        lambda tmp, a: spec_from_dict([_spec()], "s.yaml"), StudySpecError,
        ("s.yaml", "expected a YAML mapping", "list")),
    "spec dict: None": (
        lambda tmp, a: spec_from_dict(None, "s.yaml"), StudySpecError, ("empty document",)),
    "spec: models empty": (
        lambda tmp, a: spec_from_dict(_spec(models=[])), StudySpecError,
        ("models", "at least 1")),
    "spec: models a string": (
        lambda tmp, a: spec_from_dict(_spec(models="bert-tiny")), StudySpecError,
        ("models", "list")),
    "spec: seq lens a float": (
        lambda tmp, a: spec_from_dict(_spec(seq_lens=[12.5])), StudySpecError,
        ("seq_lens.0", "integer")),
    "spec: seq lens a string": (
        lambda tmp, a: spec_from_dict(_spec(seq_lens=["128"])), StudySpecError,
        ("seq_lens.0", "integer")),
    "spec: seed negative": (
        lambda tmp, a: spec_from_dict(_spec(seed=-1)), StudySpecError, ("seed",)),
    "spec: sparsity NaN": (
        lambda tmp, a: spec_from_dict(_spec(sparsities=[float("nan")])), StudySpecError,
        ("sparsities",)),
    "spec: both sparsities and ratios in a case": (
        lambda tmp, a: spec_from_dict(_spec(patterns=[{"pattern": "block:4x4",
                                                       "sparsities": [0.5],
                                                       "compression_ratios": [2]}])),
        StudySpecError, ("patterns.0", "not both")),
    "spec: pattern case unknown key": (
        lambda tmp, a: spec_from_dict(_spec(patterns=[{"pattern": "block:4x4", "size": 4}])),
        StudySpecError, ("patterns.0.size", "unknown key")),
    "spec: pattern a number": (
        lambda tmp, a: spec_from_dict(_spec(patterns=[4])), StudySpecError, ("patterns.0",)),
    "spec: grid path empty part": (
        lambda tmp, a: spec_from_dict(_spec(grid={"pe_array..rows": [8]})), StudySpecError,
        ("grid", "dotted hardware field")),
    "spec: absolute plots dir": (
        lambda tmp, a: spec_from_dict(_spec(outputs={"plots_dir": "/etc"})), StudySpecError,
        ("outputs.plots_dir", "absolute")),
    "spec: Windows drive report": (
        lambda tmp, a: spec_from_dict(_spec(outputs={"report": "C:\\r.md"})), StudySpecError,
        ("outputs.report", "absolute")),
    "spec file: a directory": (
        lambda tmp, a: load_spec(str(tmp) + "/spec.yaml"), StudySpecError, ("not found",)),
    # --- prune jobs (pruning.job) -------------------------------------------------------
    "job: sparsity a string": (
        lambda tmp, a: prune_job(**_job(sparsity="half")), PruneJobError, ("sparsity",)),
    "job: sparsity a bool": (
        lambda tmp, a: prune_job(**_job(sparsity=True)), PruneJobError, ("sparsity",)),
    "job: sparsity 1": (
        lambda tmp, a: prune_job(**_job(sparsity=1)), PruneJobError, ("sparsity", "[0, 1)")),
    "job: pattern a number": (
        lambda tmp, a: prune_job(**_job(pattern=4)), PruneJobError, ("pattern", "string")),
    "job: pattern missing": (
        lambda tmp, a: prune_job(model="bert-tiny", sparsity=0.5), PruneJobError,
        ("pattern is required: unstructured, block:RxC",)),
    "job: unknown field": (
        lambda tmp, a: prune_job(**_job(sparsty=0.5)), PruneJobError,
        ("sparsty", "unknown key", "cosim prune --help")),
    "job: epochs a word": (
        lambda tmp, a: prune_job(**_job(epochs="three")), PruneJobError, ("epochs", "number")),
    "job: epochs zero": (
        lambda tmp, a: prune_job(**_job(epochs=0)), PruneJobError, ("epochs", "greater than 0")),
    "job: max seq len 2": (
        lambda tmp, a: prune_job(**_job(max_seq_len=2)), PruneJobError,
        ("max_seq_len", "greater than 2")),
    "job: include a string": (
        lambda tmp, a: prune_job(**_job(include="decoder")), PruneJobError, ("include",)),
    "job: cycles zero": (
        lambda tmp, a: prune_job(**_job(cycles=0)), PruneJobError, ("cycles", "greater than 0")),
    "job: cycles with one-shot magnitude": (
        lambda tmp, a: prune_job(**_job(cycles=2)), PruneJobError, ("cycles", "'gradual'")),
    "job: kd alpha above 1": (
        lambda tmp, a: prune_job(**_job(kd_alpha=1.5)), PruneJobError, ("kd_alpha",)),
    "job: ramp fraction zero": (
        lambda tmp, a: prune_job(**_job(ramp_fraction=0)), PruneJobError, ("ramp_fraction",)),
    "job: teacher without distill": (
        lambda tmp, a: prune_job(**_job(teacher="t")), PruneJobError, ("teacher", "'distill'")),
    "job: distill without a teacher": (
        lambda tmp, a: prune_job(**_job(method="distill", task="MRPC")), PruneJobError,
        ("distill", "--teacher")),
    "job: admm granularity without admm": (
        lambda tmp, a: prune_job(**_job(admm_granularity="tile-row")), PruneJobError,
        ("admm_granularity", "'admm'")),
    "job: checkpoint every zero steps": (
        lambda tmp, a: prune_job(**_job(method="group-lasso", task="MRPC",
                                        checkpoint_every=0)),
        PruneJobError, ("checkpoint_every", "greater than 0")),
    "job: global scope for admm": (
        lambda tmp, a: prune_job(**_job(method="admm", task="MRPC", scope="global")),
        PruneJobError, ("admm", "per-matrix")),
    # --- patterns against the weights they prune (pruning.patterns) ---------------------
    "fits: block larger than the matrix": (
        lambda tmp, a: check_fits(parse_pattern("block:128x128"), {Q: (64, 64)}), PatternError,
        ("block:128x128", Q, "[64, 64]", "smaller than the matrix")),
    "fits: block as large as the matrix": (
        lambda tmp, a: check_fits(parse_pattern("block:64x64"), {Q: (64, 64)}), PatternError,
        ("block:64x64", "whole matrix")),
    "fits: crossbar tile taller and wider": (
        lambda tmp, a: check_fits(parse_pattern("crossbar:128x96"), {Q: (64, 64)}),
        PatternError, ("crossbar:128x96", Q)),
    "fits: N:M M does not divide in": (
        lambda tmp, a: check_fits(parse_pattern("nm:2:48"), {Q: (64, 64)}), PatternError,
        ("nm:2:48", "in_features=64")),
    "fits: heads do not divide out": (
        lambda tmp, a: check_fits(parse_pattern("head:3"), {Q: (64, 64)}), PatternError,
        ("head:3", "out_features=64")),
    # --- artifacts and manifests (pruning.artifact) -----------------------------------
    "artifact: matrices entry not an object": (
        lambda tmp, a: load_artifact(_artifact(tmp, a, _manifest(
            lambda m: m["matrices"].__setitem__(0, "q")))),
        ArtifactError, (MANIFEST_FILE, "matrices[0]", "object")),
    "artifact: matrix name empty": (
        lambda tmp, a: load_artifact(_artifact(tmp, a, _manifest(
            lambda m: m["matrices"][0].update(name="")))),
        ArtifactError, ("matrices[0]", "name")),
    "artifact: matrix missing nnz": (
        lambda tmp, a: load_artifact(_artifact(tmp, a, _manifest(
            lambda m: m["matrices"][0].pop("nnz")))),
        ArtifactError, ("matrices[0]", "missing field(s) nnz")),
    "artifact: nnz a bool": (
        lambda tmp, a: load_artifact(_artifact(tmp, a, _manifest(
            lambda m: m["matrices"][0].update(nnz=True)))),
        ArtifactError, ("matrices[0]", "nnz True")),
    "artifact: mask stored as float32": (
        lambda tmp, a: load_artifact(_artifact(tmp, a, _masks(
            lambda p: p.__setitem__(Q, p[Q].astype(np.float32))))),
        ArtifactError, (MASKS_FILE, Q, "uint8")),
    "artifact: mask packed 2-D": (
        lambda tmp, a: load_artifact(_artifact(tmp, a, _masks(
            lambda p: p.__setitem__(Q, p[Q].reshape(2, -1))))),
        ArtifactError, (MASKS_FILE, Q, "1-D")),
    "artifact: mask one byte short": (
        lambda tmp, a: load_artifact(_artifact(tmp, a, _masks(
            lambda p: p.__setitem__(Q, p[Q][:-1].copy())))),
        ArtifactError, (MASKS_FILE, Q, "manifest shape")),
    "artifact: an unlisted mask": (
        lambda tmp, a: load_artifact(_artifact(tmp, a, _masks(
            lambda p: p.__setitem__("extra.weight", p[Q])))),
        ArtifactError, (MASKS_FILE, "unlisted", "extra.weight")),
    "artifact: empty masks file": (
        lambda tmp, a: load_artifact(_artifact(tmp, a, lambda d: (d / MASKS_FILE).write_bytes(
            b""))),
        ArtifactError, (MASKS_FILE, "safetensors")),
    # --- model sources (pruning.models, workloads.bert) --------------------------------
    "model: hub id that is no preset": (
        lambda tmp, a: load_model("gpt2"), ModelLoadError, ("'gpt2'", "preset name")),
    "model: GPT-2 config dir": (
        lambda tmp, a: load_model(_config_dir(tmp, {"model_type": "gpt2"})), ModelLoadError,
        ("config.json", "'gpt2'", "bert, roberta, distilbert")),
    "model: config without model_type": (
        lambda tmp, a: load_model(_config_dir(tmp, {"hidden_size": 64})), ModelLoadError,
        ("config.json", "model_type None")),
    "model: num labels zero": (
        lambda tmp, a: load_model("bert-tiny", num_labels=0), ModelLoadError,
        ("num_labels", "positive integer")),
    "model: num labels a bool": (
        lambda tmp, a: load_model("bert-tiny", num_labels=True), ModelLoadError,
        ("num_labels",)),
    "model: truncated weights": (
        lambda tmp, a: load_model(_artifact(tmp, a, lambda d: (d / "model.safetensors")
                                            .write_bytes(b"\x08\x00"))),
        ModelLoadError, ("artifact", "could not load the checkpoint")),
    "workload: batch a bool": (
        lambda tmp, a: build_workload("bert-tiny", batch=True), WorkloadError,
        ("batch", "positive int")),
    "workload: seq len a float": (
        lambda tmp, a: build_workload("bert-tiny", seq_len=8.5), WorkloadError,
        ("seq_len", "positive int")),
    "workload: source a number": (
        lambda tmp, a: build_workload(42), WorkloadError, ("int", "preset name")),
    "workload: num labels zero": (
        lambda tmp, a: build_workload("bert-tiny", num_labels=0), WorkloadError,
        ("num_labels", "positive int")),
    # --- masks against a workload (workloads.masks) ------------------------------------
    "masks: unknown weight name": (
        lambda tmp, a: attach_masks(_tiny_workload(), {"bert.nothing.weight": np.ones((2, 2))}),
        WorkloadError, ("'bert.nothing.weight'", "weight name such as")),
    "masks: 1-D mask": (
        lambda tmp, a: attach_masks(_tiny_workload(), {Q: np.ones(64 * 64, bool)}),
        WorkloadError, (Q, "1-D", "[64, 64]")),
    "masks: transposed shape": (
        lambda tmp, a: attach_masks(_tiny_workload(), {
            "bert.encoder.layer.0.intermediate.dense.weight": np.ones((64, 128), bool)}),
        WorkloadError, ("intermediate", "[64, 128]", "[128, 64]")),
    "masks: values other than 0 and 1": (
        lambda tmp, a: attach_masks(_tiny_workload(), {Q: np.full((64, 64), 2)}),
        WorkloadError, (Q, "other than 0 and 1")),
    "masks: strings": (
        lambda tmp, a: attach_masks(_tiny_workload(), {Q: np.full((64, 64), "x")}),
        WorkloadError, (Q, "not boolean")),
    # --- GLUE data directories (pruning.glue) -----------------------------------------
    "glue: test split": (
        lambda tmp, a: load_split("MRPC", "test", tmp), GlueDataError, ("test", "not public")),
    "glue: unknown split": (
        lambda tmp, a: load_split("MRPC", "valid", tmp), GlueDataError,
        ("'valid'", "train, dev")),
    "glue: max examples zero": (
        lambda tmp, a: load_split("MRPC", "dev", tmp, max_examples=0), GlueDataError,
        ("max_examples", "positive integer")),
    "glue: max examples a float": (
        lambda tmp, a: load_split("MRPC", "dev", tmp, max_examples=2.5), GlueDataError,
        ("max_examples",)),
    "glue: data dir is a file": (
        lambda tmp, a: load_split("MRPC", "dev", _file(tmp / "glue.tsv")),
        GlueDataError, ("glue.tsv", "is a file", "expected a folder")),
    "glue: extra tab in a row": (
        lambda tmp, a: load_split("MRPC", "dev", _glue(tmp, "MRPC", {
            "dev.tsv": MRPC + "1\t2\t3\ta\tb\tc\n"})),
        GlueDataError, ("dev.tsv", "line 2", "6 tab-separated fields", "expected 5")),
    "glue: blank label": (
        lambda tmp, a: load_split("MRPC", "dev", _glue(tmp, "MRPC", {
            "dev.tsv": MRPC + " \t2\t3\ta\tb\n"})),
        GlueDataError, ("dev.tsv", "line 2", "unknown label ''")),
    "glue: CoLA with a header": (
        lambda tmp, a: load_split("CoLA", "dev", _glue(tmp, "CoLA", {
            "dev.tsv": "source\tlabel\tsentence\n" + COLA_ROW})),
        GlueDataError, ("dev.tsv", "line 1", "expected 4")),
    "glue: STS-B score infinite": (
        lambda tmp, a: load_split("STS-B", "dev", _glue(tmp, "STS-B", {
            "dev.tsv": "sentence1\tsentence2\tscore\na\tb\tinf\n"})),
        GlueDataError, ("dev.tsv", "'inf'", "finite number")),
    "glue: QNLI without any split": (
        lambda tmp, a: load_split("QNLI", "train", _glue(tmp, "QNLI", {"README": "x"})),
        GlueDataError, ("QNLI", "dev.tsv", "missing")),
    "glue: Latin-1 file": (
        lambda tmp, a: load_split("RTE", "dev", _glue(tmp, "RTE", {
            "dev.tsv": "index\tsentence1\tsentence2\tlabel\n0\tcaf\xe9\tb\tentailment\n"
            .encode("latin-1")})),
        GlueDataError, ("dev.tsv", "not UTF-8")),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_raises_one_named_error(
    case: str, pruned: tuple, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COSIM_GLUE_DIR", raising=False)
    call, error_type, fragments = CASES[case]
    with pytest.raises(error_type) as caught:
        call(tmp_path, pruned[2])
    message = str(caught.value)
    assert "\n" not in message.strip(), message
    assert "Traceback" not in message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in: {message}"
