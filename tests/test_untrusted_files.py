"""Untrusted files: nothing the tool reads is unpickled, and specs cannot write outside --out.

Each malicious file carries a pickle whose ``__reduce__`` calls ``os.mkdir(SENTINEL)``: if any
loader unpickled it, the sentinel directory would appear. The loaders must instead ignore the
file (it is not part of the format), refuse it with their documented error, or load it through
``torch.load(weights_only=True)``, which rejects the call.
"""

from __future__ import annotations

import os
import pickle
import re
import shutil
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from pruning.artifact import MASKS_FILE, ArtifactError, load_artifact
from pruning.checkpoint import (
    STATE_FILE,
    TENSORS_FILE,
    CheckpointError,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from pruning.models import ModelLoadError, load_model
from studies.cli import app
from studies.spec import StudySpecError, load_spec, spec_from_dict

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("accel_sim", "pruning", "workloads", "studies")


class _Payload:
    """Pickles to a call of ``os.mkdir(path)``."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return os.mkdir, (self.path,)


@pytest.fixture
def sentinel(tmp_path: Path) -> Path:
    path = tmp_path / "PWNED"
    yield path
    assert not path.exists(), "a loader unpickled an untrusted file and ran its code"


@pytest.fixture(autouse=True)
def no_unpickling(monkeypatch: pytest.MonkeyPatch):
    """Fail on any pickle.load(s) and on torch.load without weights_only=True."""

    real_load, real_loads = pickle.load, pickle.loads

    def guard(real):
        def refuse(*args, **kwargs):
            # numba's JIT cache (its own index files under the package's __pycache__) is the
            # one pickle reader allowed: it reads what numba wrote, never a user's file
            if sys._getframe(1).f_globals.get("__name__", "").startswith("numba."):
                return real(*args, **kwargs)
            raise AssertionError("pickle.load/loads called on an untrusted file")

        return refuse

    real_torch_load = torch.load

    def checked_torch_load(*args, **kwargs):
        assert kwargs.get("weights_only") is True, "torch.load without weights_only=True"
        return real_torch_load(*args, **kwargs)

    monkeypatch.setattr(pickle, "load", guard(real_load))
    monkeypatch.setattr(pickle, "loads", guard(real_loads))
    monkeypatch.setattr(torch, "load", checked_torch_load)


def _pickle_bytes(sentinel: Path) -> bytes:
    return pickle.dumps({"weight": _Payload(sentinel)})


def _torch_pickle(path: Path, sentinel: Path) -> None:
    torch.save({"bert.embeddings.word_embeddings.weight": _Payload(sentinel)}, path)


def _drop_pickles(directory: Path, sentinel: Path) -> None:
    (directory / "evil.pkl").write_bytes(_pickle_bytes(sentinel))
    _torch_pickle(directory / "evil.pt", sentinel)
    _torch_pickle(directory / "optimizer.pt", sentinel)
    _torch_pickle(directory / "training_args.bin", sentinel)


def test_artifact_ignores_pickles_dropped_beside_it(pruned, tmp_path: Path, sentinel) -> None:
    artifact = tmp_path / "artifact"
    shutil.copytree(pruned[2], artifact)
    _drop_pickles(artifact, sentinel)
    _torch_pickle(artifact / "pytorch_model.bin", sentinel)
    loaded = load_artifact(artifact)
    assert loaded.masks.keys() == pruned[1].keys()
    result = CliRunner().invoke(
        app,
        ["simulate", "--artifact", str(artifact), "--hw", "systolic-32x32-ws", "--seq-len", "8"],
    )
    assert result.exit_code == 0, result.output


def test_artifact_masks_file_holding_a_pickle_is_refused(pruned, tmp_path: Path, sentinel) -> None:
    artifact = tmp_path / "artifact"
    shutil.copytree(pruned[2], artifact)
    (artifact / MASKS_FILE).write_bytes(_pickle_bytes(sentinel))
    with pytest.raises(ArtifactError, match="could not be read as safetensors"):
        load_artifact(artifact)


def test_checkpoint_ignores_pickles_and_refuses_a_pickled_tensor_file(
    tmp_path: Path, sentinel
) -> None:
    path = save_checkpoint(tmp_path / "ckpt", 3, {"w": torch.ones(2, 2)}, {"lr": 0.1})
    _drop_pickles(path, sentinel)
    assert latest_checkpoint(tmp_path / "ckpt") == path
    tensors, state = load_checkpoint(path)
    assert torch.equal(tensors["w"], torch.ones(2, 2)) and state["lr"] == 0.1
    (path / TENSORS_FILE).write_bytes(_pickle_bytes(sentinel))
    with pytest.raises(CheckpointError, match="unreadable checkpoint"):
        load_checkpoint(path)


@pytest.mark.parametrize(
    ("name", "damage"),
    [
        (TENSORS_FILE, lambda data: data[: len(data) // 2]),  # torn write
        (TENSORS_FILE, lambda data: data[:4]),  # shorter than the header length
        (STATE_FILE, lambda data: data[:-3]),  # JSON cut short
        (STATE_FILE, lambda data: b"\xff\xfe" + data),  # not UTF-8
    ],
)
def test_truncated_or_garbled_checkpoint_is_unreadable(tmp_path: Path, name, damage) -> None:
    path = save_checkpoint(tmp_path / "ckpt", 3, {"w": torch.ones(8, 8)}, {"lr": 0.1})
    (path / name).write_bytes(damage((path / name).read_bytes()))
    with pytest.raises(CheckpointError, match="unreadable checkpoint"):
        load_checkpoint(path)
    (path / name).unlink()
    with pytest.raises(CheckpointError, match="unreadable checkpoint"):
        load_checkpoint(path)


def test_checkpoint_loader_bug_is_not_reported_as_a_bad_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = save_checkpoint(tmp_path / "ckpt", 3, {"w": torch.ones(2, 2)}, {"lr": 0.1})

    def broken(*args, **kwargs):
        raise TypeError("a programming error")

    monkeypatch.setattr("pruning.checkpoint.load_file", broken)
    with pytest.raises(TypeError, match="a programming error"):
        load_checkpoint(path)


def test_pickle_based_model_weights_load_weights_only(tiny_dir: Path, tmp_path: Path, sentinel):
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_dir, model_dir)
    _torch_pickle(model_dir / "pytorch_model.bin", sentinel)
    with pytest.raises(ModelLoadError, match="could not load the checkpoint"):
        load_model(model_dir)
    # a plain state dict in pytorch_model.bin still loads (torch.load weights_only=True)
    source = load_model(tiny_dir).model
    torch.save(source.state_dict(), model_dir / "pytorch_model.bin")
    loaded = load_model(model_dir).model
    name = "bert.encoder.layer.0.attention.self.query.weight"
    assert torch.equal(loaded.state_dict()[name], source.state_dict()[name])


YAML_BOMB = "!!python/object/apply:os.mkdir [{path}]\n"


def test_yaml_python_tags_are_not_executed(tmp_path: Path, sentinel) -> None:
    from accel_sim.spec import HardwareConfigError, load_hardware

    spec = tmp_path / "spec.yaml"
    spec.write_text(YAML_BOMB.format(path=sentinel))
    with pytest.raises(StudySpecError, match="not valid YAML"):
        load_spec(spec)
    hw = tmp_path / "hw.yaml"
    hw.write_text(f"name: x\ndescription: {YAML_BOMB.format(path=sentinel)}")
    with pytest.raises(HardwareConfigError, match="not valid YAML"):
        load_hardware(hw)


_UNSAFE_CALLS = [
    (re.compile(r"\bpickle\.loads?\("), "pickle.load"),
    (re.compile(r"\bcloudpickle\.loads?\("), "cloudpickle.load"),
    (re.compile(r"\bdill\.loads?\("), "dill.load"),
    (re.compile(r"allow_pickle\s*=\s*True"), "np.load(allow_pickle=True)"),
    (re.compile(r"\byaml\.(load|unsafe_load|full_load|load_all)\("), "yaml.load"),
    (re.compile(r"weights_only\s*=\s*False"), "weights_only=False"),
]


def test_package_sources_use_only_safe_loaders() -> None:
    """A grep of the packages: no pickle loads, no unsafe YAML, torch.load only weights_only."""
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            for pattern, what in _UNSAFE_CALLS:
                found += [f"{path.relative_to(ROOT)}: {what}" for _ in pattern.finditer(text)]
            for match in re.finditer(r"\btorch\.load\(([^)]*)\)", text):
                if "weights_only=True" not in match.group(1):
                    found.append(f"{path.relative_to(ROOT)}: torch.load without weights_only")
    assert found == []


# ----------------------------------------------------------------------------- output paths

ESCAPES = ["../report.md", "/tmp/report.md", "sub/report.md", "sub\\report.md", "C:\\r.md", ".."]


@pytest.mark.parametrize("field", ["plots_dir", "report"])
@pytest.mark.parametrize("value", ESCAPES)
def test_spec_outputs_cannot_leave_the_output_directory(field: str, value: str) -> None:
    data = {"name": "t", "patterns": ["dense"], "outputs": {field: value}}
    with pytest.raises(StudySpecError, match=rf"outputs\.{field}: .*{re.escape(repr(value))}"):
        spec_from_dict(data)


@pytest.mark.parametrize("name", ["../up", "/abs", "a/b", ".hidden", ""])
def test_spec_name_cannot_leave_the_output_directory(name: str) -> None:
    with pytest.raises(StudySpecError, match=r"\bname\b"):
        spec_from_dict({"name": name, "patterns": ["dense"]})


def test_cli_study_run_refuses_an_escaping_spec_and_writes_nothing(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "name: t\nmodels: [bert-tiny]\nseq_lens: [8]\npatterns: [dense]\n"
        "outputs: {plots_dir: ../../escaped}\n"
    )
    out = tmp_path / "a" / "b"
    result = CliRunner().invoke(app, ["study", "run", str(spec), "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert "outputs.plots_dir" in result.stderr and "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]
