"""pruning.maskfile: the one mask-file format of artifacts and the studies' mask cache."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from pruning.artifact import MASKS_FILE, load_artifact
from pruning.maskfile import MaskFileError, pack_masks, read_mask_file, write_mask_file


def masks_of(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"q.weight": rng.random((5, 7)) < 0.5, "ffn.weight": rng.random((16, 3)) < 0.2}


def test_round_trip_keeps_masks_order_and_meta(tmp_path: Path) -> None:
    path = write_mask_file(tmp_path / "m.safetensors", masks_of(), {"seed": 3, "x": [1.5]})
    masks, meta = read_mask_file(path)
    assert list(masks) == ["q.weight", "ffn.weight"] and meta == {"seed": 3, "x": [1.5]}
    for name, mask in masks_of().items():
        assert masks[name].dtype == bool and np.array_equal(masks[name], mask)
    assert read_mask_file(write_mask_file(tmp_path / "n.safetensors", masks_of()))[1] is None


def test_layout_is_packbits_per_name_with_shapes_metadata(tmp_path: Path) -> None:
    """What other tools may rely on: uint8 packbits tensors, shapes as JSON metadata."""
    path = write_mask_file(tmp_path / "m.safetensors", masks_of())
    tensors = load_file(str(path))
    for name, packed in pack_masks(masks_of()).items():
        assert tensors[name].dtype == np.uint8 and np.array_equal(tensors[name], packed)
    from safetensors import safe_open

    with safe_open(str(path), framework="np") as handle:
        shapes = json.loads(handle.metadata()["shapes"])
    assert shapes == {"q.weight": [5, 7], "ffn.weight": [16, 3]}


def test_files_without_shapes_read_with_given_shapes(tmp_path: Path) -> None:
    """The layout artifacts had before the file carried its shapes: tensors only."""
    path = tmp_path / "old.safetensors"
    save_file(pack_masks(masks_of()), str(path))
    with pytest.raises(MaskFileError, match="no 'shapes' in its metadata"):
        read_mask_file(path)
    shapes = {name: list(mask.shape) for name, mask in masks_of().items()}
    masks, meta = read_mask_file(path, shapes)
    assert meta is None and all(np.array_equal(masks[n], m) for n, m in masks_of().items())


def test_old_layout_artifact_still_loads(pruned, tmp_path: Path) -> None:
    """An artifact whose masks file was written the old way (no metadata) loads the same."""
    _, _, artifact = pruned
    old = tmp_path / "old"
    shutil.copytree(artifact, old)
    packed = load_file(str(old / MASKS_FILE))
    save_file(packed, str(old / MASKS_FILE))  # tensors only, as save_artifact wrote them
    expected = load_artifact(artifact)
    loaded = load_artifact(old)
    assert loaded.manifest == expected.manifest
    assert list(loaded.masks) == list(expected.masks)
    assert all(np.array_equal(loaded.masks[n], m) for n, m in expected.masks.items())


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: p.__setitem__("q.weight", p["q.weight"] | 1), "nonzero padding bits"),
        (lambda p: p.__setitem__("q.weight", p["q.weight"][:-1].copy()), "given shape \\[5, 7\\]"),
        (lambda p: p.__setitem__("extra", p["q.weight"]), "unlisted: \\['extra'\\]"),
        (lambda p: p.pop("ffn.weight"), "missing: \\['ffn.weight'\\]"),
    ],
)
def test_damaged_files_name_the_file_and_mask(tmp_path: Path, damage, message) -> None:
    path = tmp_path / "m.safetensors"
    packed = pack_masks(masks_of())
    damage(packed)
    save_file(packed, str(path))
    shapes = {name: list(mask.shape) for name, mask in masks_of().items()}
    with pytest.raises(MaskFileError, match=message) as err:
        read_mask_file(path, shapes)
    assert str(path) in str(err.value)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(MaskFileError, match="not found"):
        read_mask_file(tmp_path / "none.safetensors")
    torn = tmp_path / "torn.safetensors"
    torn.write_bytes(write_mask_file(tmp_path / "m.safetensors", masks_of()).read_bytes()[:40])
    with pytest.raises(MaskFileError, match="could not be read as safetensors"):
        read_mask_file(torn)
    bad = tmp_path / "bad.safetensors"
    save_file(pack_masks(masks_of()), str(bad), metadata={"shapes": "{not json"})
    with pytest.raises(MaskFileError, match="'shapes' is not valid JSON"):
        read_mask_file(bad)


def test_reading_masks_does_not_import_torch(pruned, tmp_path: Path) -> None:
    """The simulator side reads artifacts and the mask cache without torch."""
    path = write_mask_file(tmp_path / "m.safetensors", masks_of())
    code = (
        "import sys; from pruning.artifact import load_artifact; "
        "from pruning.maskfile import read_mask_file; "
        f"load_artifact({str(pruned[2])!r}); read_mask_file({str(path)!r}); "
        "sys.exit(1 if 'torch' in sys.modules else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
