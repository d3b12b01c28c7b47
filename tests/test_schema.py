"""``cosim schema hardware|study``: JSON Schemas that every shipped spec satisfies and that
catch a misspelt key, checked by a small validator of the keywords pydantic emits."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from accel_sim.spec import list_presets, preset_dir
from accel_sim.spec.loading import hardware_json_schema
from studies.cli import app
from studies.spec import BUILTIN_DIR, builtin_names, study_json_schema

TYPES = {
    "object": dict,
    "array": list,
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "null": type(None),
}


def errors(value: Any, schema: dict, root: dict, where: str = "") -> list[str]:
    """Why ``value`` fails ``schema`` ($ref, anyOf, type, enum, const, properties,
    additionalProperties: false, required, items, prefixItems); empty when it passes."""
    if "$ref" in schema:
        return errors(value, root["$defs"][schema["$ref"].rsplit("/", 1)[-1]], root, where)
    if "anyOf" in schema:
        branches = [errors(value, branch, root, where) for branch in schema["anyOf"]]
        return [] if any(not b for b in branches) else min(branches, key=len)
    found = []
    kind = schema.get("type")
    if kind is not None:
        expected = TYPES[kind]
        if isinstance(value, bool) and kind in ("integer", "number"):
            return [f"{where}: {value!r} is not {kind}"]
        if not isinstance(value, expected):
            return [f"{where}: {value!r} is not {kind}"]
    if "enum" in schema and value not in schema["enum"]:
        found.append(f"{where}: {value!r} not in {schema['enum']}")
    if "const" in schema and value != schema["const"]:
        found.append(f"{where}: {value!r} is not {schema['const']!r}")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in value:
                found.append(f"{where}.{key}: required")
        for key, item in value.items():
            if key in properties:
                found += errors(item, properties[key], root, f"{where}.{key}")
            elif schema.get("additionalProperties") is False:
                found.append(f"{where}.{key}: not allowed")
            elif isinstance(schema.get("additionalProperties"), dict):
                found += errors(item, schema["additionalProperties"], root, f"{where}.{key}")
    if isinstance(value, list):
        prefix = schema.get("prefixItems", [])
        for index, item in enumerate(value):
            sub = prefix[index] if index < len(prefix) else schema.get("items")
            if sub:
                found += errors(item, sub, root, f"{where}[{index}]")
    return found


@pytest.fixture(scope="module")
def hardware_schema() -> dict:
    return hardware_json_schema()


@pytest.mark.parametrize("name", list_presets())
def test_every_preset_satisfies_the_hardware_schema(hardware_schema: dict, name: str) -> None:
    data = yaml.safe_load((preset_dir() / f"{name}.yaml").read_text())
    assert errors(data, hardware_schema, hardware_schema) == []


def test_the_hardware_schema_covers_every_datapath(hardware_schema: dict) -> None:
    defs = hardware_schema["$defs"]
    array = defs["HardwareConfig"]["properties"]["datapath"]
    assert set(array["enum"]) == {"systolic", "pe-array", "outer-product", "flexible"}
    assert defs["CrossbarChipConfig"]["properties"]["datapath"]["const"] == "crossbar"
    for datapath in ("systolic", "pe-array", "outer-product", "flexible", "crossbar"):
        assert datapath in hardware_schema["description"]
    assert "extends" in defs["HardwareConfig"]["properties"]


def test_the_hardware_schema_catches_a_typo_and_accepts_unit_strings(
    hardware_schema: dict,
) -> None:
    data = yaml.safe_load((preset_dir() / "systolic-32x32-ws.yaml").read_text())
    assert isinstance(data["sram"]["ifmap"]["size_bytes"], str)  # "64 KiB" passes
    wrong = copy.deepcopy(data)
    wrong["pe_array"]["rowz"] = 8
    assert any("rowz" in e for e in errors(wrong, hardware_schema, hardware_schema))
    assert errors({"extends": "systolic-32x32-ws", "cores": 2}, hardware_schema,
                  hardware_schema) == []


@pytest.mark.parametrize("name", builtin_names())
def test_every_builtin_study_satisfies_the_study_schema(name: str) -> None:
    schema = study_json_schema()
    data = yaml.safe_load((BUILTIN_DIR / f"{name}.yaml").read_text())
    assert errors(data, schema, schema) == []
    data["sparsity"] = [0.5]
    assert errors(data, schema, schema) == [".sparsity: not allowed"]


def test_cosim_schema_writes_json(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["schema", "hardware"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["title"] == "sparse-bert-cosim hardware spec"
    out = tmp_path / "study.schema.json"
    result = runner.invoke(app, ["schema", "study", "--out", str(out)])
    assert result.exit_code == 0, result.output
    schema = json.loads(out.read_text())
    assert schema["title"] == "sparse-bert-cosim study spec"
    assert "sparsities" in schema["properties"]
    bad = runner.invoke(app, ["schema", "chip"])
    assert bad.exit_code == 2
