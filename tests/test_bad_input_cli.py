"""Bad input at every ``cosim`` command: one table of cases, each ending in one clear line.

Every case builds its input files under a fresh temporary directory, runs the command in
process (typer's ``CliRunner``) and checks the contract of issue 8 item 1: exit code 2, no
traceback, exactly one ``error:`` line on stderr, and the fragments that name the field or
file and the expected form. Cases that pass before any work starts stay fast; no case trains.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from accel_sim.spec import preset_dir
from pruning.artifact import MANIFEST_FILE, MASKS_FILE
from studies.cli import app
from studies.spec import BUILTIN_DIR

DELETE = object()  # a mutation value: remove the field


# ----------------------------------------------------------------------------- workspace


@dataclass
class Workspace:
    """Paths a case may use: a fresh ``tmp`` and shared, read-only fixtures."""

    tmp: Path
    tiny: Path  # config-only tiny BERT directory (random weights)
    artifact_src: Path  # a pruned tiny-BERT artifact; copy before changing it
    glue: Path  # a valid tiny GLUE directory (MRPC, STS-B)

    def file(self, name: str, content: str | bytes) -> str:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return str(path)

    def artifact(self, change: Callable[[Path], None] | None = None) -> str:
        """A private copy of the pruned artifact, changed by ``change``."""
        copy = self.tmp / "artifact"
        shutil.copytree(self.artifact_src, copy)
        if change is not None:
            change(copy)
        return str(copy)

    def glue_copy(self, change: Callable[[Path], None]) -> str:
        copy = self.tmp / "glue"
        shutil.copytree(self.glue, copy)
        change(copy)
        return str(copy)


def _set(data: dict, dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = data
    for part in parents:
        node = node[part]
    if value is DELETE:
        del node[leaf]
    else:
        node[leaf] = value


def _hw(preset: str, **changes: Any) -> Callable[[Workspace], str]:
    """A hardware YAML file: ``preset`` with dotted fields (``__`` for ``.``) changed."""

    def make(ws: Workspace) -> str:
        data = yaml.safe_load((preset_dir() / f"{preset}.yaml").read_text())
        for key, value in changes.items():
            _set(data, key.replace("__", "."), value)
        return ws.file("hw.yaml", yaml.safe_dump(data))

    return make


def _spec(**fields: Any) -> Callable[[Workspace], str]:
    """A small valid study spec with ``fields`` changed (DELETE removes one)."""

    def make(ws: Workspace) -> str:
        data: dict[str, Any] = {
            "name": "bad",
            "models": ["bert-tiny"],
            "seq_lens": [8],
            "patterns": ["block:4x4"],
            "sparsities": [0.5],
        }
        for key, value in fields.items():
            _set(data, key, value)
        return ws.file("spec.yaml", yaml.safe_dump(data))

    return make


def _manifest(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def apply(directory: Path) -> None:
        path = directory / MANIFEST_FILE
        manifest = json.loads(path.read_text())
        change(manifest)
        path.write_text(json.dumps(manifest))

    return apply


def _write(name: str, content: str | bytes) -> Callable[[Path], None]:
    def apply(directory: Path) -> None:
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")

    return apply


def _truncate(name: str, keep: float = 0.5) -> Callable[[Path], None]:
    def apply(directory: Path) -> None:
        path = directory / name
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * keep)])

    return apply


def _remove(name: str) -> Callable[[Path], None]:
    return lambda directory: (directory / name).unlink()


def _matrix(index: int, **fields: Any) -> Callable[[dict], None]:
    def change(manifest: dict) -> None:
        manifest["matrices"][index].update(fields)

    return change


def _config_dir(ws: Workspace, config: Any, name: str = "model") -> str:
    directory = ws.tmp / name
    directory.mkdir()
    text = config if isinstance(config, str | bytes) else json.dumps(config)
    (directory / "config.json").write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(directory)


def _bert_config(**changes: Any) -> dict:
    config = {
        "model_type": "bert",
        "vocab_size": 100,
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 128,
        "max_position_embeddings": 32,
        "hidden_act": "gelu",
    }
    config.update(changes)
    return config


GPT2_CONFIG = {"model_type": "gpt2", "n_embd": 64, "n_layer": 2, "n_head": 4, "vocab_size": 100}


def _glue_tsv(task: str, split: str, text: str | bytes) -> Callable[[Path], None]:
    return _write(f"{task}/{split}.tsv", text)


# ----------------------------------------------------------------------------- commands


def simulate(*extra: str, model: str | None = "bert-tiny", hw: str = "systolic-32x32-ws") -> list:
    """``cosim simulate``; ``model=None`` leaves the model to ``--artifact``."""
    chosen = [] if model is None else ["--model", model]
    return ["simulate", *chosen, "--hw", hw, "--seq-len", "8", *extra]


def with_artifact(ws: Workspace, change: Callable[[Path], None] | None = None) -> list[str]:
    """``cosim simulate --artifact`` of a changed copy of the tiny artifact (its own model)."""
    return simulate("--artifact", ws.artifact(change), model=None)


def prune(ws: Workspace, *extra: str, model: str | None = None) -> list[str]:
    out = str(ws.tmp / "out")
    return ["prune", "--model", model or str(ws.tiny), "--out", out, "--no-progress", *extra]


def prune_glue(ws: Workspace, data_dir: str, task: str = "MRPC") -> list[str]:
    return prune(
        ws, "--pattern", "unstructured", "--sparsity", "0.5", "--task", task,
        "--data-dir", data_dir, "--epochs", "1", "--max-seq-len", "16",
    )  # fmt: skip


def study_run(ws: Workspace, spec: str, *extra: str) -> list[str]:
    return ["study", "run", spec, "--out", str(ws.tmp / "study"), "--no-progress", *extra]


def accuracy(ws: Workspace, *extra: str) -> list[str]:
    """A dry run of one small cell with ``extra`` options overriding the defaults."""
    base = {
        "--tasks": "MRPC",
        "--methods": "magnitude",
        "--patterns": "block:4x4",
        "--sparsities": "0.5",
        "--model": str(ws.tiny),
        "--out": str(ws.tmp / "acc"),
        "--work-dir": str(ws.tmp / "acc-work"),
    }
    given = dict(zip(extra[::2], extra[1::2], strict=True))
    args = [part for pair in {**base, **given}.items() for part in pair]
    return ["study", "accuracy", *args, "--dry-run", "--no-progress"]


def _study_dir(ws: Workspace, results: bytes | None, run: str | None) -> str:
    directory = ws.tmp / "finished"
    directory.mkdir()
    if results is not None:
        (directory / "results.parquet").write_bytes(results)
    if run is not None:
        (directory / "run.json").write_text(run)
    return str(directory)


def _parquet(frame_data: dict) -> bytes:
    import io

    import pandas as pd

    buffer = io.BytesIO()
    pd.DataFrame(frame_data).to_parquet(buffer, index=False)
    return buffer.getvalue()


# ----------------------------------------------------------------------------- the table

Args = Callable[[Workspace], list[str]]
NOT_UTF8 = b"name: \xff\xfe\x00bad\n"
XBAR = "isaac-crossbar"
HW = "systolic-32x32-ws"
MRPC_HEADER = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"

CASES: dict[str, tuple[Args, tuple[str, ...]]] = {
    # --- cosim simulate: model sources ---------------------------------------------------
    "simulate: unknown model preset": (
        lambda ws: simulate(model="bert-gigantic"), ("bert-gigantic", "preset name")),
    "simulate: model dir missing": (
        lambda ws: simulate(model=str(ws.tmp / "nowhere")), ("does not exist", "config.json")),
    "simulate: model is a file": (
        lambda ws: simulate(model=ws.file("model.txt", "x")), ("is a file", "config.json")),
    "simulate: dir without config.json": (
        lambda ws: simulate(model=str(ws.tmp)), ("config.json", "not found")),
    "simulate: GPT-2 config dir": (
        lambda ws: simulate(model=_config_dir(ws, GPT2_CONFIG)),
        ("config.json", "'gpt2'", "bert, roberta, distilbert")),
    "simulate: config.json not JSON": (
        lambda ws: simulate(model=_config_dir(ws, "{hidden_size: 64")),
        ("config.json", "not valid JSON")),
    "simulate: config.json not UTF-8": (
        lambda ws: simulate(model=_config_dir(ws, b'{"model_type": "\xff"}')),
        ("config.json", "expected a JSON object")),
    "simulate: config.json is a list": (
        lambda ws: simulate(model=_config_dir(ws, [1, 2])), ("config.json", "JSON list")),
    "simulate: config hidden_size zero": (
        lambda ws: simulate(model=_config_dir(ws, _bert_config(hidden_size=0))),
        ("hidden_size", "positive int")),
    "simulate: config hidden_size negative": (
        lambda ws: simulate(model=_config_dir(ws, _bert_config(hidden_size=-64))),
        ("hidden_size",)),
    "simulate: config layers a string": (
        lambda ws: simulate(model=_config_dir(ws, _bert_config(num_hidden_layers="two"))),
        ("num_hidden_layers",)),
    "simulate: config heads do not divide hidden": (
        lambda ws: simulate(model=_config_dir(ws, _bert_config(num_attention_heads=5))),
        ("num_attention_heads", "hidden_size")),
    "simulate: config relu activation": (
        lambda ws: simulate(model=_config_dir(ws, _bert_config(hidden_act="relu"))),
        ("hidden_act", "GELU")),
    "simulate: seq len zero": (lambda ws: simulate("--seq-len", "0"), ("seq_len", "positive")),
    "simulate: seq len negative": (lambda ws: simulate("--seq-len", "-8"), ("seq_len",)),
    "simulate: batch zero": (lambda ws: simulate("--batch", "0"), ("batch", "positive")),
    "simulate: seq len past positions": (
        lambda ws: simulate("--seq-len", "100000"), ("seq_len", "512")),
    "simulate: seq len not a number": (lambda ws: simulate("--seq-len", "many"), ("--seq-len",)),
    # --- cosim simulate --hw: hardware YAML ------------------------------------------------
    "hw: unknown preset": (lambda ws: simulate(hw="systolic-7x7-ws"), ("systolic-7x7-ws",)),
    "hw: missing file": (
        lambda ws: simulate(hw=str(ws.tmp / "absent.yaml")), ("absent.yaml", "not found")),
    "hw: malformed YAML": (
        lambda ws: simulate(hw=ws.file("hw.yaml", "pe_array: {rows: [32\n")),
        ("hw.yaml", "not valid YAML")),
    "hw: not UTF-8": (
        lambda ws: simulate(hw=ws.file("hw.yaml", NOT_UTF8)), ("hw.yaml", "not valid YAML")),
    "hw: YAML list": (
        lambda ws: simulate(hw=ws.file("hw.yaml", "- rows: 32\n- cols: 32\n")),
        ("hw.yaml", "expected a YAML mapping", "list")),
    "hw: empty file": (
        lambda ws: simulate(hw=ws.file("hw.yaml", "")),
        ("hw.yaml", "expected a YAML mapping", "empty document")),
    "hw: rows zero": (
        lambda ws: simulate(hw=_hw(HW, pe_array__rows=0)(ws)), ("pe_array.rows", "greater than 0")),
    "hw: rows negative": (
        lambda ws: simulate(hw=_hw(HW, pe_array__rows=-32)(ws)), ("pe_array.rows",)),
    "hw: rows a string": (
        lambda ws: simulate(hw=_hw(HW, pe_array__rows="32")(ws)), ("pe_array.rows", "integer")),
    "hw: rows fractional": (
        lambda ws: simulate(hw=_hw(HW, pe_array__cols=1.5)(ws)), ("pe_array.cols", "integer")),
    "hw: unknown dataflow": (
        lambda ws: simulate(hw=_hw(HW, pe_array__dataflow="diagonal")(ws)),
        ("pe_array.dataflow", "'ws'")),
    "hw: unknown key": (
        lambda ws: simulate(hw=_hw(HW, pe_array__colz=32)(ws)), ("pe_array.colz", "unknown key")),
    "hw: missing section": (
        lambda ws: simulate(hw=_hw(HW, dram=DELETE)(ws)), ("dram", "required field is missing")),
    "hw: section a list": (
        lambda ws: simulate(hw=_hw(HW, sram=[1, 2])(ws)), ("sram",)),
    "hw: sram size zero": (
        lambda ws: simulate(hw=_hw(HW, sram__ifmap__size_bytes=0)(ws)),
        ("sram.ifmap.size_bytes",)),
    "hw: sram size negative with unit": (
        lambda ws: simulate(hw=_hw(HW, sram__ifmap__size_bytes="-64 KiB")(ws)),
        ("sram.ifmap.size_bytes",)),
    "hw: clock not a quantity": (
        lambda ws: simulate(hw=_hw(HW, pe_array__clock_hz="fast")(ws)),
        ("pe_array.clock_hz", "Hz")),
    "hw: clock with the wrong unit": (
        lambda ws: simulate(hw=_hw(HW, pe_array__clock_hz="1 GB/s")(ws)),
        ("pe_array.clock_hz",)),
    "hw: dram bandwidth zero": (
        lambda ws: simulate(hw=_hw(HW, dram__bandwidth_bytes_per_s=0)(ws)),
        ("dram.bandwidth_bytes_per_s",)),
    "hw: vector lanes zero": (
        lambda ws: simulate(hw=_hw(HW, vector_unit__lanes=0)(ws)), ("vector_unit.lanes",)),
    "hw: nm with N > M": (
        lambda ws: simulate(hw=_hw(HW, sparse={"zero_handling": "nm", "nm": [4, 2]})(ws)),
        ("sparse.nm", "N <= M")),
    "hw: nm of one number": (
        lambda ws: simulate(hw=_hw(HW, sparse={"zero_handling": "nm", "nm": [2]})(ws)),
        ("sparse.nm",)),
    "hw: unknown zero handling": (
        lambda ws: simulate(hw=_hw(HW, sparse={"zero_handling": "ignore"})(ws)),
        ("sparse.zero_handling", "'skipping'")),
    "hw: format block zero": (
        lambda ws: simulate(hw=_hw(HW, sparse={"format_block": [0, 4]})(ws)),
        ("sparse.format_block", "positive")),
    "hw: skip granularity negative": (
        lambda ws: simulate(hw=_hw(HW, sparse={"skip_granularity": -1})(ws)),
        ("sparse.skip_granularity",)),
    "hw: unknown kind": (
        lambda ws: simulate(hw=_hw(HW, kind="quantum")(ws)),
        ("kind: 'quantum'",
         "datapath: one of systolic, pe-array, outer-product, flexible, crossbar")),
    "hw: unknown datapath": (
        lambda ws: simulate(hw=_hw(HW, datapath="quantum")(ws)),
        ("datapath: 'quantum'",
         "expected one of systolic, pe-array, outer-product, flexible, crossbar")),
    "hw: zero handling the datapath lacks": (
        lambda ws: simulate(hw=_hw(HW, datapath="pe-array", sparse={"zero_handling": "nm"})(ws)),
        ("sparse.zero_handling 'nm' is not available on datapath 'pe-array'",
         "expected one of none, skipping")),
    "hw crossbar: rows zero": (
        lambda ws: simulate(hw=_hw(XBAR, crossbar__rows=0)(ws)), ("crossbar.rows",)),
    "hw crossbar: tiles negative": (
        lambda ws: simulate(hw=_hw(XBAR, tiles=-1)(ws)), ("tiles",)),
    "hw crossbar: bits per cell zero": (
        lambda ws: simulate(hw=_hw(XBAR, crossbar__bits_per_cell=0)(ws)),
        ("crossbar.bits_per_cell",)),
    "hw crossbar: unknown key": (
        lambda ws: simulate(hw=_hw(XBAR, crossbar__rowz=128)(ws)),
        ("crossbar.rowz", "unknown key")),
    "hw crossbar: missing dram section": (
        lambda ws: simulate(hw=_hw(XBAR, dram=DELETE)(ws)), ("dram", "required field is missing")),
    "hw crossbar: unknown execution": (
        lambda ws: simulate(hw=_hw(XBAR, mapping__execution="sideways")(ws)),
        ("mapping.execution",)),
    "hw crossbar: weight bits a string": (
        lambda ws: simulate(hw=_hw(XBAR, encoding__weight_bits="sixteen")(ws)),
        ("encoding.weight_bits",)),
    # --- cosim simulate --artifact: artifacts and manifests ----------------------------------
    "artifact: directory missing": (
        lambda ws: simulate("--artifact", str(ws.tmp / "none")), ("none", "not a directory")),
    "artifact: a file, not a directory": (
        lambda ws: simulate("--artifact", ws.file("artifact", "x")), ("not a directory",)),
    "artifact: manifest missing": (
        lambda ws: with_artifact(ws, _remove(MANIFEST_FILE)),
        (MANIFEST_FILE, "not found")),
    "artifact: manifest not JSON": (
        lambda ws: with_artifact(ws, _write(MANIFEST_FILE, "{oops")),
        (MANIFEST_FILE, "not valid JSON")),
    "artifact: manifest not UTF-8": (
        lambda ws: with_artifact(ws, _write(MANIFEST_FILE, b"{\"a\": \"\xff\"}")),
        (MANIFEST_FILE, "not valid JSON")),
    "artifact: manifest is a list": (
        lambda ws: with_artifact(ws, _write(MANIFEST_FILE, "[1, 2]")),
        (MANIFEST_FILE, "expected an object")),
    "artifact: manifest missing a field": (
        lambda ws: with_artifact(ws, _manifest(lambda m: m.pop("matrices"))),
        (MANIFEST_FILE, "matrices")),
    "artifact: unknown format version": (
        lambda ws: with_artifact(ws, _manifest(lambda m: m.update(format_version=99))),
        ("format_version", "expected 1")),
    "artifact: training record a list": (
        lambda ws: with_artifact(ws, _manifest(lambda m: m.update(training=[1]))),
        (MANIFEST_FILE, "field training is a JSON list", "expected an object or null")),
    "artifact: head record a string": (
        lambda ws: with_artifact(ws, _manifest(lambda m: m.update(head="cls"))),
        (MANIFEST_FILE, "field head is a JSON str", "expected an object or null")),
    "artifact: matrices not a list": (
        lambda ws: with_artifact(ws, _manifest(lambda m: m.update(matrices={"a": 1}))),
        ("matrices", "list")),
    "artifact: matrix shape negative": (
        lambda ws: with_artifact(ws, _manifest(_matrix(0, shape=[-64, 64]))),
        ("matrices[0]", "shape", "[out, in]")),
    "artifact: matrix shape 3-D": (
        lambda ws: with_artifact(ws, _manifest(_matrix(0, shape=[4, 4, 4]))),
        ("matrices[0]", "shape")),
    "artifact: matrix nnz a string": (
        lambda ws: with_artifact(ws, _manifest(_matrix(0, nnz="many"))),
        ("matrices[0]", "nnz")),
    "artifact: manifest shape disagrees with masks": (
        lambda ws: with_artifact(ws, _manifest(_matrix(0, shape=[32, 64]))),
        (MASKS_FILE, "manifest shape")),
    "artifact: manifest nnz disagrees with mask": (
        lambda ws: with_artifact(ws, _manifest(_matrix(0, nnz=1))),
        (MANIFEST_FILE, "nnz")),
    "artifact: manifest total nnz disagrees": (
        lambda ws: with_artifact(ws, _manifest(lambda m: m.update(nnz=7))),
        (MANIFEST_FILE, "field nnz")),
    "artifact: manifest names a matrix the masks lack": (
        lambda ws: with_artifact(ws, _manifest(_matrix(0, name="bert.encoder.nothing.weight"))),
        (MASKS_FILE, "missing")),
    "artifact: masks file missing": (
        lambda ws: with_artifact(ws, _remove(MASKS_FILE)),
        (MASKS_FILE, "not found")),
    "artifact: masks safetensors truncated": (
        lambda ws: with_artifact(ws, _truncate(MASKS_FILE)),
        (MASKS_FILE, "safetensors")),
    "artifact: masks file is text": (
        lambda ws: with_artifact(ws, _write(MASKS_FILE, "not tensors")),
        (MASKS_FILE, "safetensors")),
    "artifact: masks for another model": (
        lambda ws: simulate("--artifact", ws.artifact()),
        ("has shape", "[out, in]")),
    "artifact: config.json of the artifact broken": (
        lambda ws: with_artifact(ws, _write("config.json", "{")),
        ("config.json", "not valid JSON")),
    # --- cosim prune: job options -------------------------------------------------------
    "prune: sparsity 1": (
        lambda ws: prune(ws, "--pattern", "unstructured", "--sparsity", "1.0"),
        ("sparsity", "[0, 1)")),
    "prune: sparsity above 1": (
        lambda ws: prune(ws, "--pattern", "unstructured", "--sparsity", "1.5"),
        ("sparsity", "[0, 1)")),
    "prune: sparsity negative": (
        lambda ws: prune(ws, "--pattern", "unstructured", "--sparsity", "-0.1"),
        ("sparsity", "[0, 1)")),
    "prune: sparsity NaN": (
        lambda ws: prune(ws, "--pattern", "unstructured", "--sparsity", "nan"),
        ("sparsity", "[0, 1)")),
    "prune: sparsity not a number": (
        lambda ws: prune(ws, "--pattern", "unstructured", "--sparsity", "half"), ("--sparsity",)),
    "prune: sparsity missing": (
        lambda ws: prune(ws, "--pattern", "block:4x4"), ("sparsity", "required")),
    "prune: unknown pattern": (
        lambda ws: prune(ws, "--pattern", "diagonal", "--sparsity", "0.5"),
        ("pattern", "'diagonal'", "block:RxC")),
    "prune: block of zero rows": (
        lambda ws: prune(ws, "--pattern", "block:0x4", "--sparsity", "0.5"),
        ("pattern", "block rows", "positive")),
    "prune: block without cols": (
        lambda ws: prune(ws, "--pattern", "block:4", "--sparsity", "0.5"),
        ("pattern", "block:RxC")),
    "prune: block larger than the matrix": (
        lambda ws: prune(ws, "--pattern", "block:256x256", "--sparsity", "0.5"),
        ("block:256x256", "[64, 64]", "smaller than the matrix")),
    "prune: crossbar tile larger than the matrix": (
        lambda ws: prune(ws, "--pattern", "crossbar:512x512", "--sparsity", "0.5"),
        ("crossbar:512x512", "smaller than the matrix")),
    "prune: N > M": (
        lambda ws: prune(ws, "--pattern", "nm:4:2"), ("pattern", "nm:4:2", "N must be <= M")),
    "prune: N zero": (lambda ws: prune(ws, "--pattern", "nm:0:4"), ("pattern", "N", "positive")),
    "prune: M does not divide the matrix": (
        lambda ws: prune(ws, "--pattern", "nm:2:48"), ("nm:2:48", "in_features")),
    "prune: head count does not divide": (
        lambda ws: prune(ws, "--pattern", "head:3", "--sparsity", "0.5"), ("head:3", "divide")),
    "prune: N:M with another sparsity": (
        lambda ws: prune(ws, "--pattern", "nm:2:4", "--sparsity", "0.3"),
        ("sparsity", "nm:2:4", "1 - N/M")),
    "prune: unknown method": (
        lambda ws: prune(ws, "--pattern", "unstructured", "--sparsity", "0.5", "--method", "x"),
        ("method", "'magnitude'")),
    "prune: trained method without task": (
        lambda ws: prune(ws, "--pattern", "unstructured", "--sparsity", "0.5",
                         "--method", "gradual"),
        ("gradual", "--task")),
    "prune: unknown scope": (
        lambda ws: prune(ws, "--pattern", "unstructured", "--sparsity", "0.5", "--scope", "all"),
        ("scope", "'per-matrix'")),
    "prune: unknown include": (
        lambda ws: prune(ws, "--pattern", "unstructured", "--sparsity", "0.5",
                         "--include", "decoder"),
        ("include", "'encoder'")),
    "prune: epochs negative": (
        lambda ws: prune(ws, "--pattern", "unstructured", "--sparsity", "0.5", "--epochs", "-1"),
        ("epochs", "greater than 0")),
    "prune: batch size zero": (
        lambda ws: prune(ws, "--pattern", "unstructured", "--sparsity", "0.5",
                         "--batch-size", "0"),
        ("batch_size", "greater than 0")),
    "prune: max seq len too long": (
        lambda ws: prune(ws, "--pattern", "unstructured", "--sparsity", "0.5",
                         "--max-seq-len", "100000"),
        ("max_seq_len", "512")),
    "prune: learning rate infinite": (
        lambda ws: prune(ws, "--pattern", "unstructured", "--sparsity", "0.5", "--lr", "inf"),
        ("lr",)),
    "prune: cycle targets falling": (
        lambda ws: prune(ws, "--pattern", "unstructured", "--sparsity", "0.5", "--method",
                         "gradual", "--task", "MRPC", "--cycles", "2",
                         "--cycle-target", "0.6", "--cycle-target", "0.5"),
        ("cycle_targets", "rising")),
    "prune: out is a file": (
        lambda ws: ["prune", "--pattern", "unstructured", "--sparsity", "0.5",
                    "--model", str(ws.tiny), "--out", ws.file("taken", "x")],
        ("--out", "is a file")),
    # --- cosim prune --model: model directories ---------------------------------------------
    "prune model: unknown preset": (
        lambda ws: prune(ws, "--pattern", "unstructured", "--sparsity", "0.5",
                         model="bert-gigantic"),
        ("bert-gigantic", "preset name")),
    "prune model: GPT-2 config dir": (
        lambda ws: prune(ws, "--pattern", "unstructured", "--sparsity", "0.5",
                         model=_config_dir(ws, GPT2_CONFIG)),
        ("config.json", "'gpt2'")),
    "prune model: truncated model.safetensors": (
        lambda ws: prune(ws, "--pattern", "unstructured", "--sparsity", "0.5",
                         model=ws.artifact(_truncate("model.safetensors"))),
        ("artifact", "could not load the checkpoint")),
    "prune model: model.safetensors is text": (
        lambda ws: prune(ws, "--pattern", "unstructured", "--sparsity", "0.5",
                         model=ws.artifact(_write("model.safetensors", "weights"))),
        ("artifact", "could not load the checkpoint")),
    "prune: unknown head": (
        lambda ws: prune(ws, "--pattern", "unstructured", "--sparsity", "0.5", "--head", "max"),
        ("head", "'cls'", "'bi-encoder'")),
    "prune: bi-encoder on a single-sentence task": (
        lambda ws: prune(ws, "--pattern", "unstructured", "--sparsity", "0.5", "--head",
                         "bi-encoder", "--task", "SST-2", "--data-dir", str(ws.glue)),
        ("bi-encoder", "SST-2 has one sentence")),
    "prune: mean head with the pooler included": (
        lambda ws: prune(ws, "--pattern", "unstructured", "--sparsity", "0.5", "--head", "mean",
                         "--include", "encoder", "--include", "pooler"),
        ("head 'mean' has no pooler layer",)),
    "prune: unknown lr schedule": (
        lambda ws: prune(ws, "--pattern", "unstructured", "--sparsity", "0.5", "--lr-schedule",
                         "cosine"),
        ("lr_schedule", "'linear' or 'constant'")),
    "prune: warm-up ratio 1": (
        lambda ws: prune(ws, "--pattern", "unstructured", "--sparsity", "0.5", "--warmup-ratio",
                         "1"),
        ("warmup_ratio", "less than 1")),
    "prune: weight decay negative": (
        lambda ws: prune(ws, "--pattern", "unstructured", "--sparsity", "0.5", "--weight-decay",
                         "-0.1"),
        ("weight_decay", "greater than or equal to 0")),
    "prune: unknown optimizer preset": (
        lambda ws: prune(ws, "--pattern", "unstructured", "--sparsity", "0.5",
                         "--optimizer-preset", "bert"),
        ("optimizer_preset", "'sparsebert'")),
    "prune: unknown schedule shape": (
        lambda ws: prune(ws, "--pattern", "unstructured", "--sparsity", "0.5", "--method",
                         "gradual", "--task", "MRPC", "--schedule-shape", "linear"),
        ("schedule_shape", "'cubic' or 'geometric'")),
    "prune: schedule shape for magnitude": (
        lambda ws: prune(ws, "--pattern", "unstructured", "--sparsity", "0.5",
                         "--schedule-shape", "geometric"),
        ("schedule_shape applies only to methods 'gradual' and 'distill'",)),
    "prune: student init without distill": (
        lambda ws: prune(ws, "--pattern", "unstructured", "--sparsity", "0.5",
                         "--student-init", "fine-tuned"),
        ("student_init applies only to method 'distill'",)),
    "prune: unknown student init": (
        lambda ws: prune(ws, "--pattern", "unstructured", "--sparsity", "0.5",
                         "--student-init", "random"),
        ("student_init", "'pre-trained' or 'fine-tuned'")),
    "prune: unknown kd cache": (
        lambda ws: prune(ws, "--pattern", "unstructured", "--sparsity", "0.5", "--kd-cache",
                         "disk"),
        ("kd_cache", "'off', 'logits' or 'hidden'")),
    "prune: MixKD without distill": (
        lambda ws: prune(ws, "--pattern", "unstructured", "--sparsity", "0.5",
                         "--mixkd-weight", "1"),
        ("mixkd_weight applies only to method 'distill'",)),
    "prune: MixKD alpha zero": (
        lambda ws: prune(ws, "--pattern", "unstructured", "--sparsity", "0.5",
                         "--mixkd-alpha", "0"),
        ("mixkd_alpha", "greater than 0")),
    "prune: teacher cache from another teacher": (
        lambda ws: prune(ws, "--pattern", "unstructured", "--sparsity", "0.5", "--method",
                         "distill", "--task", "MRPC", "--data-dir", str(ws.glue),
                         "--dense-epochs", "1", "--epochs", "1", "--kd-mode", "logits",
                         "--max-seq-len", "16",
                         "--teacher-cache", ws.file("cache.safetensors", "not a cache")),
        ("cache.safetensors", "unreadable teacher cache")),
    "prune: distill teacher missing": (
        lambda ws: prune(ws, "--pattern", "unstructured", "--sparsity", "0.5", "--method",
                         "distill", "--task", "MRPC", "--data-dir", str(ws.glue),
                         "--teacher", str(ws.tmp / "no-teacher")),
        ("no-teacher", "does not exist")),
    "prune: distill teacher a GPT-2 dir": (
        lambda ws: prune(ws, "--pattern", "unstructured", "--sparsity", "0.5", "--method",
                         "distill", "--task", "MRPC", "--data-dir", str(ws.glue),
                         "--teacher", _config_dir(ws, GPT2_CONFIG)),
        ("config.json", "'gpt2'")),
    # --- cosim prune --task: GLUE data directories ------------------------------------------
    "glue: unknown task": (
        lambda ws: prune_glue(ws, str(ws.glue), task="MNLI-X"), ("MNLI-X", "valid tasks")),
    "glue: data dir missing": (
        lambda ws: prune_glue(ws, str(ws.tmp / "no-glue")), ("no-glue", "does not exist")),
    "glue: task folder missing": (
        lambda ws: prune_glue(ws, str(ws.glue), task="RTE"), ("RTE", "missing")),
    "glue: train.tsv missing": (
        lambda ws: prune_glue(ws, ws.glue_copy(_remove("MRPC/train.tsv"))),
        ("train.tsv", "missing")),
    "glue: data dir is a file": (
        lambda ws: prune_glue(ws, ws.file("glue.tsv", "x")), ("glue.tsv", "is a file")),
    "glue: empty TSV": (
        lambda ws: prune_glue(ws, ws.glue_copy(_glue_tsv("MRPC", "train", ""))),
        ("train.tsv", "no data rows")),
    "glue: header only": (
        lambda ws: prune_glue(ws, ws.glue_copy(_glue_tsv("MRPC", "train", MRPC_HEADER))),
        ("train.tsv", "no data rows")),
    "glue: short row": (
        lambda ws: prune_glue(
            ws, ws.glue_copy(_glue_tsv("MRPC", "train", MRPC_HEADER + "1\t2\t3\n"))),
        ("train.tsv", "line 2", "expected 5")),
    "glue: wrong header": (
        lambda ws: prune_glue(
            ws, ws.glue_copy(_glue_tsv("MRPC", "train", "a\tb\tc\td\te\n1\t2\t3\t4\t5\n"))),
        ("train.tsv", "missing column", "Quality")),
    "glue: unknown label": (
        lambda ws: prune_glue(
            ws, ws.glue_copy(_glue_tsv("MRPC", "train", MRPC_HEADER + "7\t1\t2\ta\tb\n"))),
        ("train.tsv", "line 2", "unknown label '7'")),
    "glue: STS-B score not a number": (
        lambda ws: prune_glue(
            ws,
            ws.glue_copy(_glue_tsv("STS-B", "train", "sentence1\tsentence2\tscore\na\tb\tfive\n")),
            task="STS-B"),
        ("train.tsv", "'five'", "finite number")),
    "glue: TSV not UTF-8": (
        lambda ws: prune_glue(
            ws, ws.glue_copy(_glue_tsv("MRPC", "train", MRPC_HEADER.encode() + b"1\t\xff\n"))),
        ("train.tsv", "UTF-8")),
    # --- cosim study run: study specs ---------------------------------------------------
    "study: unknown built-in": (
        lambda ws: study_run(ws, "no-such-study"), ("no-such-study", "block-size")),
    "study: spec file missing": (
        lambda ws: study_run(ws, str(ws.tmp / "absent.yaml")), ("absent.yaml", "not found")),
    "study: malformed YAML": (
        lambda ws: study_run(ws, ws.file("spec.yaml", "name: [bad\n")),
        ("spec.yaml", "not valid YAML")),
    "study: not UTF-8": (
        lambda ws: study_run(ws, ws.file("spec.yaml", NOT_UTF8)), ("spec.yaml", "not valid YAML")),
    "study: YAML list": (
        lambda ws: study_run(ws, ws.file("spec.yaml", "- name: bad\n")),
        ("spec.yaml", "expected a YAML mapping", "list")),
    "study: empty file": (
        lambda ws: study_run(ws, ws.file("spec.yaml", "")),
        ("spec.yaml", "expected a YAML mapping", "empty document")),
    "study: name missing": (
        lambda ws: study_run(ws, _spec(name=DELETE)(ws)), ("name", "required field is missing")),
    "study: name with a slash": (
        lambda ws: study_run(ws, _spec(name="a/b")(ws)), ("name", "pattern")),
    "study: unknown key": (
        lambda ws: study_run(ws, _spec(sparsity=[0.5])(ws)), ("sparsity", "unknown key")),
    "study: unknown kind": (
        lambda ws: study_run(ws, _spec(kind="sweep")(ws)), ("kind", "'block-size'")),
    "study: unknown model, dense only": (
        lambda ws: study_run(ws, _spec(models=["no-such-model"], patterns=["dense"])(ws)),
        ("models[0]", "unknown model", "preset name")),
    "study: GPT-2 model dir, dense only": (
        lambda ws: study_run(
            ws, _spec(models=[_config_dir(ws, GPT2_CONFIG)], patterns=["dense"])(ws)),
        ("models[0]", "'gpt2'", "bert, roberta, distilbert")),
    "study: nothing to simulate": (
        lambda ws: study_run(ws, _spec(patterns=DELETE)(ws)),
        ("patterns, artifacts or checkpoints",)),
    "study: sparsity 1": (
        lambda ws: study_run(ws, _spec(sparsities=[1.0])(ws)), ("sparsities", "[0, 1)")),
    "study: sparsity negative": (
        lambda ws: study_run(ws, _spec(sparsities=[-0.5])(ws)), ("sparsities", "[0, 1)")),
    "study: sparsity a string": (
        lambda ws: study_run(ws, _spec(sparsities=["half"])(ws)), ("sparsities.0", "number")),
    "study: sparsities not a list": (
        lambda ws: study_run(ws, _spec(sparsities=0.5)(ws)), ("sparsities", "list")),
    "study: compression ratio below 1": (
        lambda ws: study_run(ws, _spec(compression_ratios=[0.5])(ws)),
        ("compression_ratios", "below 1")),
    "study: seq len zero": (
        lambda ws: study_run(ws, _spec(seq_lens=[0])(ws)), ("seq_lens.0", "greater than 0")),
    "study: batch negative": (
        lambda ws: study_run(ws, _spec(batches=[-1])(ws)), ("batches.0", "greater than 0")),
    "study: seq len past positions": (
        lambda ws: study_run(ws, _spec(seq_lens=[1000])(ws)), ("seq_len", "512")),
    "study: unknown model": (
        lambda ws: study_run(ws, _spec(models=["bert-gigantic"])(ws)), ("bert-gigantic",)),
    "study: GPT-2 model": (
        lambda ws: study_run(ws, _spec(models=[_config_dir(ws, GPT2_CONFIG)])(ws)),
        ("config.json", "'gpt2'")),
    "study: unknown pattern": (
        lambda ws: study_run(ws, _spec(patterns=["diagonal"])(ws)),
        ("patterns.0.pattern", "block:RxC")),
    "study: N > M": (
        lambda ws: study_run(ws, _spec(patterns=["nm:4:2"])(ws)),
        ("patterns.0.pattern", "N must be <= M")),
    "study: block larger than the matrix": (
        lambda ws: study_run(ws, _spec(patterns=["block:1024x1024"])(ws)),
        ("block:1024x1024", "computing masks", "smaller than the matrix")),
    "study: unknown hardware preset": (
        lambda ws: study_run(ws, _spec(hardware=["systolic-7x7-ws"])(ws)),
        ("hardware", "systolic-7x7-ws")),
    "study: hardware file is a list": (
        lambda ws: study_run(
            ws, _spec(hardware=[ws.file("hw-list.yaml", "- 1\n")])(ws)),
        ("hardware", "hw-list.yaml", "expected a YAML mapping")),
    "study: hardware file missing": (
        lambda ws: study_run(ws, _spec(hardware=["missing-hw.yaml"])(ws)),
        ("hardware", "missing-hw.yaml", "not found")),
    "study: grid value zero": (
        lambda ws: study_run(ws, _spec(grid={"pe_array.rows": [0]})(ws)),
        ("grid", "pe_array.rows", "greater than 0")),
    "study: grid unknown field": (
        lambda ws: study_run(ws, _spec(grid={"pe_array.colz": [8]})(ws)),
        ("grid", "pe_array.colz", "unknown key")),
    "study: grid values not a list": (
        lambda ws: study_run(ws, _spec(grid={"pe_array.rows": 16})(ws)), ("grid", "list")),
    "study: grid empty list": (
        lambda ws: study_run(ws, _spec(grid={"pe_array.rows": []})(ws)),
        ("grid", "non-empty list")),
    "study: grid path into a number": (
        lambda ws: study_run(ws, _spec(grid={"pe_array.rows.x": [1]})(ws)),
        ("grid", "pe_array.rows.x")),
    "study: output path escapes": (
        lambda ws: study_run(ws, _spec(outputs={"report": "../report.md"})(ws)),
        ("outputs.report", "..")),
    "study: artifact missing": (
        lambda ws: study_run(ws, _spec(artifacts=[str(ws.tmp / "gone")])(ws)),
        ("artifacts", "gone")),
    "study: artifact corrupt": (
        lambda ws: study_run(ws, _spec(artifacts=[ws.artifact(_truncate(MASKS_FILE))])(ws)),
        (MASKS_FILE, "safetensors")),
    "study: pareto objective a text column": (
        lambda ws: study_run(ws, _spec(pareto={"objectives": ["model"]})(ws)),
        ("pareto objective or constraint model is a text column", "numeric result column")),
    "study: jobs zero": (
        lambda ws: study_run(ws, _spec()(ws), "--jobs", "0"), ("--jobs", "at least 1")),
    # the spec is bad too, so without the bound nothing starts a single worker
    "study: jobs over the limit": (
        lambda ws: study_run(ws, _spec(sparsities=[1.0])(ws), "--jobs", "100000"),
        ("--jobs 100000", "over the limit of 256 worker processes")),
    "study: dask workers over the limit": (
        lambda ws: study_run(ws, _spec(sparsities=[1.0])(ws), "--dask-workers", "257"),
        ("--dask-workers 257", "over the limit of 256 worker processes")),
    # --- cosim study plot -----------------------------------------------------------------
    "plot: directory missing": (
        lambda ws: ["study", "plot", str(ws.tmp / "none")], ("results.parquet", "run.json")),
    "plot: run.json missing": (
        lambda ws: ["study", "plot", _study_dir(ws, _parquet({"a": [1]}), None)],
        ("run.json",)),
    "plot: results not parquet": (
        lambda ws: ["study", "plot", _study_dir(ws, b"not parquet", "{}")],
        ("results.parquet",)),
    "plot: run.json not JSON": (
        lambda ws: ["study", "plot", _study_dir(ws, _parquet({"a": [1]}), "{")],
        ("run.json", "not valid JSON")),
    "plot: run.json is a list": (
        lambda ws: ["study", "plot", _study_dir(ws, _parquet({"a": [1]}), "[1]")],
        ("run.json", "object")),
    "plot: run.json pareto a list": (
        lambda ws: ["study", "plot", _study_dir(ws, _parquet({"a": [1]}), '{"pareto": [1]}')],
        ("run.json", "pareto is a JSON list", "expected an object")),
    "plot: run.json wall time a string": (
        lambda ws: ["study", "plot", _study_dir(ws, _parquet({"a": [1]}), '{"wall_s": "x"}')],
        ("run.json", "wall_s is 'x'", "expected a number of seconds")),
    "plot: run.json timing a list": (
        lambda ws: ["study", "plot", _study_dir(ws, _parquet({"a": [1]}), '{"timing": [1]}')],
        ("run.json", "timing is a JSON list", "expected an object")),
    "plot: results lack the study columns": (
        lambda ws: ["study", "plot", _study_dir(ws, _parquet({"a": [1]}), "{}")],
        ("results.parquet", "column")),
    "plot: objective a text column": (
        lambda ws: ["study", "plot", _study_dir(ws, _parquet({"model": ["bert-tiny"]}), "{}"),
                    "--objective", "model"],
        ("results.parquet", "model is a text column", "numeric result column")),
    # --- cosim study accuracy (dry runs: validation happens before any training) ------------
    "accuracy: sparsity not a number": (
        lambda ws: accuracy(ws, "--sparsities", "half"), ("--sparsities", "'half'")),
    "accuracy: sparsity 1": (
        lambda ws: accuracy(ws, "--sparsities", "1.0"), ("sparsity", "[0, 1)")),
    "accuracy: sparsity negative": (
        lambda ws: accuracy(ws, "--sparsities", "-0.2"), ("sparsity", "[0, 1)")),
    "accuracy: unknown method": (
        lambda ws: accuracy(ws, "--methods", "prune-harder"), ("prune-harder", "magnitude")),
    "accuracy: unknown task": (
        lambda ws: accuracy(ws, "--tasks", "MNLI-X"), ("MNLI-X", "valid tasks")),
    "accuracy: unknown pattern": (
        lambda ws: accuracy(ws, "--patterns", "diagonal"), ("diagonal", "block:RxC")),
    "accuracy: N > M": (lambda ws: accuracy(ws, "--patterns", "nm:4:2"), ("nm:4:2", "N must")),
    "accuracy: block larger than every matrix": (
        lambda ws: accuracy(ws, "--patterns", "block:1024x1024"),
        ("block:1024x1024", "[64, 64]", "smaller than the matrix", "of cell MRPC magnitude")),
    "accuracy: N:M M does not divide in": (
        lambda ws: accuracy(ws, "--patterns", "nm:24:48"), ("nm:24:48", "in_features=64")),
    "accuracy: unknown hardware": (
        lambda ws: accuracy(ws, "--hw", "systolic-7x7-ws"), ("systolic-7x7-ws",)),
    "accuracy: epochs negative": (
        lambda ws: accuracy(ws, "--epochs", "-1"), ("epochs", "greater than 0")),
    "accuracy: seq len zero": (
        lambda ws: accuracy(ws, "--seq-len", "0"), ("max_seq_len", "greater than 2")),
    "accuracy: batch size zero": (
        lambda ws: accuracy(ws, "--batch-size", "0"), ("batch_size", "greater than 0")),
    "accuracy: train examples zero": (
        lambda ws: accuracy(ws, "--max-train-examples", "0"),
        ("--max-train-examples", "positive integer or 'all'")),
    "accuracy: eval examples not a number": (
        lambda ws: accuracy(ws, "--max-eval-examples", "many"),
        ("--max-eval-examples", "'many'", "'all'")),
    "accuracy: unknown head": (
        lambda ws: accuracy(ws, "--heads", "mean,max"), ("--heads", "'max'", "bi-encoder")),
    "accuracy: bi-encoder on a single-sentence task only": (
        lambda ws: accuracy(ws, "--tasks", "SST-2", "--heads", "bi-encoder"),
        ("no cells", "bi-encoder needs a pair task")),
    "accuracy: seed not an integer": (
        lambda ws: accuracy(ws, "--seeds", "0,x"), ("--seeds", "'x'", "e.g. 0,1,2")),
    "accuracy: seed and seeds": (
        lambda ws: accuracy(ws, "--seeds", "1,2", "--seed", "3"), ("--seeds or --seed",)),
    "accuracy: unknown student init": (
        lambda ws: accuracy(ws, "--student-init", "random"),
        ("--student-init", "'random'", "pre-trained, fine-tuned")),
    "accuracy: unknown kd mode": (
        lambda ws: accuracy(ws, "--kd-mode", "hidden"), ("--kd-mode", "full, logits")),
    "accuracy: unknown kd cache": (
        lambda ws: accuracy(ws, "--kd-cache", "disk"), ("--kd-cache", "off, logits, hidden")),
    "accuracy: hidden cache in logits mode": (
        lambda ws: accuracy(ws, "--methods", "distill", "--kd-mode", "logits",
                            "--kd-cache", "hidden"),
        ("kd_cache 'hidden'", "kd_cache logits")),
    "accuracy: unknown lr schedule": (
        lambda ws: accuracy(ws, "--lr-schedule", "cosine"), ("--lr-schedule", "linear, constant")),
    "accuracy: unknown schedule shape": (
        lambda ws: accuracy(ws, "--schedule-shape", "linear"),
        ("--schedule-shape", "cubic, geometric")),
    "accuracy: unknown optimizer preset": (
        lambda ws: accuracy(ws, "--optimizer-preset", "bert"),
        ("--optimizer-preset", "sparsebert")),
    "accuracy: warm-up ratio 1": (
        lambda ws: accuracy(ws, "--warmup-ratio", "1.0"), ("warmup_ratio", "less than 1")),
    "accuracy: MixKD weight negative": (
        lambda ws: accuracy(ws, "--methods", "distill-mixkd", "--mixkd-weight", "-1"),
        ("mixkd_weight", "greater than or equal to 0")),
    "accuracy: prune learning rate zero": (
        lambda ws: accuracy(ws, "--prune-lr", "0"), ("lr", "greater than 0")),
    "accuracy: checkpoint every zero": (
        lambda ws: accuracy(ws, "--checkpoint-every", "0"), ("--checkpoint-every", "at least 1")),
    "accuracy: GPT-2 model": (
        lambda ws: accuracy(ws, "--model", _config_dir(ws, GPT2_CONFIG)), ("config.json", "gpt2")),
    "accuracy: unknown model": (
        lambda ws: accuracy(ws, "--model", "bert-gigantic"), ("bert-gigantic",)),
    "accuracy: jobs zero": (lambda ws: accuracy(ws, "--jobs", "0"), ("--jobs", "at least 1")),
    "accuracy: jobs over the limit": (
        lambda ws: accuracy(ws, "--jobs", "100000"),
        ("--jobs 100000", "over the limit of 256 worker processes")),
    "accuracy: nothing given": (lambda ws: accuracy(ws, "--tasks", ","), ("no cells",)),
}  # fmt: skip


# ----------------------------------------------------------------------------- the test


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, pruned) -> dict[str, Path]:
    from tests.tiny_bert import save_tiny_config

    tiny = save_tiny_config(tmp_path_factory.mktemp("tiny-bert"))
    glue = tmp_path_factory.mktemp("glue")
    (glue / "MRPC").mkdir()
    rows = "".join(f"{i % 2}\t{i}\t{i + 100}\tsentence {i} a\tsentence {i} b\n" for i in range(8))
    for split in ("train", "dev"):
        (glue / "MRPC" / f"{split}.tsv").write_text(MRPC_HEADER + rows, encoding="utf-8")
    (glue / "STS-B").mkdir()
    scores = "".join(f"a {i}\tb {i}\t{i % 5}.0\n" for i in range(8))
    for split in ("train", "dev"):
        (glue / "STS-B" / f"{split}.tsv").write_text(
            "sentence1\tsentence2\tscore\n" + scores, encoding="utf-8"
        )
    return {"tiny": tiny, "artifact": pruned[2], "glue": glue}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_clear_error(
    case: str, shared: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # nothing a case writes lands in the repository
    make_args, fragments = CASES[case]
    ws = Workspace(tmp_path, shared["tiny"], shared["artifact"], shared["glue"])
    result = CliRunner().invoke(app, make_args(ws))
    output = result.output
    assert result.exit_code == 2, output
    assert result.exception is None or isinstance(result.exception, SystemExit), output
    assert "Traceback" not in output
    if "error:" in result.stderr:  # our one-line errors (else a typer usage error box)
        assert result.stderr.count("error:") == 1, result.stderr
        assert result.stderr.strip().startswith("error:"), result.stderr
    else:
        assert "Invalid value" in output or "No such option" in output, output
    flat = " ".join(output.split())  # rich may wrap long lines
    for fragment in fragments:
        assert fragment in flat, f"{fragment!r} not in: {flat}"


def test_the_table_covers_every_command() -> None:
    covered = {name.split(":")[0].split()[0] for name in CASES}
    assert {"simulate", "hw", "artifact", "prune", "glue", "study", "plot", "accuracy"} <= covered
    assert len(CASES) >= 150
    assert BUILTIN_DIR.is_dir()
