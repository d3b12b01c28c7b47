"""Hub ids resolve as transformers resolves them: the local hub cache first (the layout
huggingface_hub writes, under ``$HF_HUB_CACHE``), known checkpoints to their preset offline,
and other ids downloaded only online. Nothing here touches the network: the download
functions are replaced by ones that fail the test or serve a local directory."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import huggingface_hub
import pytest
import torch
from typer.testing import CliRunner

from pruning.models import ModelLoadError, load_model
from studies.cli import app
from tests.tiny_bert import save_tiny_config, tiny_model
from workloads import WorkloadError, build_workload, resolve_hub_dir
from workloads.bert import hub_unreachable

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def cache_snapshot(cache: Path, model_id: str, *, weights: bool) -> Path:
    """``models--org--name/refs/main`` naming ``snapshots/<commit>/`` (config, weights)."""
    repo = cache / ("models--" + model_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    snapshot = repo / "snapshots" / COMMIT
    if weights:
        tiny_model().save_pretrained(snapshot)
    else:
        save_tiny_config(snapshot)
    return snapshot


@pytest.fixture
def hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty hub cache, online as far as the code can tell, with every download failing
    the test."""
    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)

    def no_download(*args, **kwargs):
        pytest.fail(f"tried to download {args} {kwargs}")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_download)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", no_download)
    # the hub's host name resolves, whatever this machine's DNS says (asked once a process)
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: [])
    hub_unreachable.cache_clear()
    yield cache
    hub_unreachable.cache_clear()


def test_an_unreachable_hub_is_not_asked(hub_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No DNS for the hub: no download is tried (huggingface_hub would retry for about 25 s,
    and the fixture fails the test if one is), and the error says why."""

    def no_dns(host: str, *args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    hub_unreachable.cache_clear()
    assert hub_unreachable()
    with pytest.raises(WorkloadError, match="the hub was not asked: its host name does not"):
        build_workload("someone/missing")
    with pytest.raises(ModelLoadError, match="someone/missing"):
        load_model("someone/missing")


def test_known_hub_ids_resolve_to_presets_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for model_id, preset in [
        ("prajjwal1/bert-tiny", "bert-tiny"),
        ("google-bert/bert-base-uncased", "bert-base-uncased"),
        ("sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2"),
    ]:
        workload = build_workload(model_id, seq_len=16)
        assert workload.model_name == preset
        assert workload.ops == build_workload(preset, seq_len=16).ops


def test_a_cached_hub_id_is_read_from_its_snapshot(hub_cache: Path) -> None:
    snapshot = cache_snapshot(hub_cache, "prajjwal1/bert-tiny", weights=False)
    assert resolve_hub_dir("prajjwal1/bert-tiny") == snapshot
    workload = build_workload("prajjwal1/bert-tiny", seq_len=16)
    assert workload.model_name == "prajjwal1/bert-tiny"
    assert workload.ops == build_workload(snapshot, seq_len=16).ops  # hidden 64, not the preset
    assert workload.ops != build_workload("bert-tiny", seq_len=16).ops
    assert workload.synthetic_weights


def test_a_cached_checkpoint_loads_its_real_weights(hub_cache: Path) -> None:
    cache_snapshot(hub_cache, "someone/tiny-bert-mrpc", weights=True)
    loaded = load_model("someone/tiny-bert-mrpc")
    assert not loaded.synthetic_weights
    expected = tiny_model().state_dict()
    got = loaded.model.state_dict()
    name = "bert.encoder.layer.0.attention.self.query.weight"
    assert torch.equal(got[name], expected[name])
    assert not build_workload("someone/tiny-bert-mrpc", seq_len=8).synthetic_weights


def test_the_cli_simulates_a_cached_hub_id(hub_cache: Path) -> None:
    cache_snapshot(hub_cache, "someone/tiny-bert-mrpc", weights=True)
    result = CliRunner().invoke(
        app, ["simulate", "--model", "someone/tiny-bert-mrpc", "--seq-len", "16"]
    )
    assert result.exit_code == 0, result.output
    assert "someone/tiny-bert-mrpc" in result.output


def test_an_unknown_hub_id_offline_names_the_cache(
    hub_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WorkloadError, match=r"unknown model 'someone/missing'.*hub cache"):
        build_workload("someone/missing")
    with pytest.raises(ModelLoadError, match="someone/missing"):
        load_model("someone/missing")


def test_online_an_unknown_hub_id_fetches_into_the_cache(
    hub_cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The download path, with huggingface_hub's functions serving a local snapshot."""
    served = tmp_path / "served"
    tiny_model().save_pretrained(served)
    calls = []

    def hf_hub_download(repo_id: str, filename: str, **kwargs) -> str:
        calls.append(("file", repo_id, filename))
        return str(served / filename)

    def snapshot_download(repo_id: str, **kwargs) -> str:
        calls.append(("snapshot", repo_id))
        return str(served)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hf_hub_download)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    assert build_workload("textattack/tiny", seq_len=8).model_name == "textattack/tiny"
    loaded = load_model("textattack/tiny")
    assert not loaded.synthetic_weights
    assert calls == [("file", "textattack/tiny", "config.json"), ("snapshot", "textattack/tiny")]
