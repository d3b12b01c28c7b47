"""The extreme-value sweep of issue 17: cases, a worker that runs them, and their verdicts.

Every numeric field of the array-chip spec, the crossbar-chip spec, the study spec and the
model config (and ``cosim simulate``'s ``--batch`` and ``--seq-len``) is set, one at a time,
to powers of two up to 2**64, 0, negatives, tiny and huge floats, infinity and NaN. Each
value must either run with finite, self-consistent output (cycles x PEs >= useful MACs,
cycles = compute + stall, energy = the sum of its breakdown) or end in one error line naming
the field and its limit: no crash, traceback, signal or hang.

``python -m tests.extreme_sweep CASES.json OUT.jsonl ARTIFACT`` runs cases in order and
appends ``{"start": id}`` then the case's record to OUT, flushed, so that a parent
(``tests/test_extreme_values.py``) can tell which case a crash or hang happened in, kill
the worker and restart it after that case.
"""

from __future__ import annotations

import copy
import functools
import itertools
import json
import math
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel

INTS = [0, -1, 1, 2, 3, 2**10, 2**12, 2**16, 2**20, 2**24, 2**31, 2**32, 2**48, 2**53,
        2**62, 2**63 - 1, 2**63, 2**64]  # fmt: skip
FLOATS = [5e-324, 1e-300, 1e-15, 0.5, 1.5, 1e15, 1e300, 1.7976931348623157e308, -1.5, -1e300,
          math.inf, -math.inf, math.nan]  # fmt: skip
VALUES = INTS + FLOATS
# The default run's values: zero, a negative, the limits most integer fields have (2**12,
# 2**20) and 2**63; for float fields the smallest and largest floats and NaN.
QUICK_INTS = [0, -1, 2**12, 2**20, 2**63]
QUICK_FLOATS = [0, -1.5, 5e-324, 1e300, math.nan]

ARRAY_PRESETS = ("systolic-32x32-ws-skip", "eie-64pe")
CROSSBAR_PRESET = "isaac-crossbar"
# fields every array-chip case needs present to be set (global_buffer is optional)
ARRAY_EXTRA = {"global_buffer": {"size_bytes": 1 << 20, "bytes_per_cycle": 64.0}}
STUDY_FIELDS = ("seq_lens", "batches", "seed", "sparsities", "compression_ratios",
                "patterns.0.sparsities", "patterns.0.compression_ratios")  # fmt: skip
CLI_FIELDS = ("batch", "seq-len")
# a study's lists of values, and the field of the design point each value becomes
POINT_FIELDS = {"seq_lens": "seq_len", "batches": "batch", "sparsities": "sparsity",
                "compression_ratios": "compression_ratio"}  # fmt: skip
# words that say what a value must be (a limit, a bound, an expected form)
BOUND_WORDS = ("limit", "less than", "greater than", "should be", "expected", "must",
               "positive", "exceeds", "outside", "below", "not finite", "whole number",
               "between")  # fmt: skip


def _numeric_kind(annotation: Any) -> str | None:
    """'int', 'float' or 'pair' for the numeric annotations of the specs; None otherwise."""
    if annotation is bool:
        return None
    if annotation in (int, float):
        return "int" if annotation is int else "float"
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is tuple and args and all(_numeric_kind(a) == "int" for a in args):
        return "pair"
    if args:  # Optional[...], int | Literal[...], Annotated[...]
        kinds = {_numeric_kind(a) for a in args} - {None}
        return kinds.pop() if len(kinds) == 1 else None
    return None


def _section(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _section(arg)
        if found is not None:
            return found
    return None


def numeric_fields(model: type[BaseModel], prefix: str = "") -> list[tuple[str, str]]:
    """Every numeric field of a spec class, dotted, with its kind (recursing into
    sections)."""
    found = []
    for name, info in model.model_fields.items():
        section = _section(info.annotation)
        if section is not None:
            found += numeric_fields(section, f"{prefix}{name}.")
            continue
        kind = _numeric_kind(info.annotation)
        if kind is not None:
            found.append((f"{prefix}{name}", kind))
    return found


def model_fields(config: dict) -> list[str]:
    """The numeric fields of a model config.json, and num_labels."""
    names = [k for k, v in config.items() if isinstance(v, int | float) and not isinstance(v, bool)]
    return sorted({*names, "num_labels"})


# Sections that configure one datapath only, set on a preset of that datapath (elsewhere the
# spec refuses the section itself, before any of its values is read).
SECTION_PRESETS = {"fifo_array": "eie-64pe", "outer_product": "dual-side-32x32",
                   "flexible": "sigma-1024"}  # fmt: skip


def cases(full: bool) -> list[dict]:
    """Every (target, field, value) case; the quick values only unless ``full``."""
    from accel_sim.spec import CrossbarChipConfig, HardwareConfig

    out: list[dict] = []

    def values_of(kind: str) -> list:
        if full:
            return VALUES
        return QUICK_FLOATS if kind == "float" else QUICK_INTS

    def add(target: str, field: str, value: Any, **extra: Any) -> None:
        out.append({"id": len(out), "target": target, "field": field, "value": value, **extra})

    for preset in ARRAY_PRESETS if full else ARRAY_PRESETS[:1]:
        for field, kind in numeric_fields(HardwareConfig):
            own = SECTION_PRESETS.get(field.split(".")[0])
            if own is not None and preset != ARRAY_PRESETS[0]:
                continue  # a datapath's own section: once, on a chip of that datapath
            for value in values_of(kind):
                add("array", field, [value, value] if kind == "pair" else value,
                    preset=own or preset)  # fmt: skip
    if not full:  # the PE array's own kernels, on the fields that size them
        for field in ("pe_array.rows", "pe_array.cols", "cores", "sparse.fifo_depth"):
            for value in values_of("int"):
                add("array", field, value, preset=ARRAY_PRESETS[1])
    for field, kind in numeric_fields(CrossbarChipConfig):
        for value in values_of(kind):
            add("crossbar", field, [value, value] if kind == "pair" else value)
    study_kinds = {"seq_lens": "int", "batches": "int", "seed": "int"}
    for field in STUDY_FIELDS:
        for value in values_of(study_kinds.get(field, "float")):
            add("study", field, value)
    config = _tiny_config()
    for field in model_fields(config):
        kind = "float" if isinstance(config.get(field), float) else "int"
        for value in values_of(kind):
            add("model", field, value)
    for field in CLI_FIELDS:  # 1 and 2: the small batches the large ones are checked against
        for value in sorted({1, 2, *(v for v in values_of("int") if isinstance(v, int))}):
            add("cli", field, value)
    return out


def _tiny_config() -> dict:
    from transformers import BertConfig

    return BertConfig(
        vocab_size=100, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=128, max_position_embeddings=32,
    ).to_dict()  # fmt: skip


# ----------------------------------------------------------------------------- running


def _set(data: dict, dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node: Any = data
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    node[leaf] = value


def _invoke(args: list[str]) -> dict:
    from typer.testing import CliRunner

    from studies.cli import app

    result = CliRunner().invoke(app, args)
    record = {"exit": result.exit_code, "stdout": result.stdout[-4000:],
              "stderr": result.stderr[-4000:]}  # fmt: skip
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        record["exception"] = "".join(
            traceback.format_exception(result.exception)
        )[-4000:]  # fmt: skip
    return record


def _simulate(hw: dict, tmp: Path, artifact: str, extra: list[str] = ()) -> dict:
    path = tmp / "hw.yaml"
    path.write_text(yaml.safe_dump(hw))
    out = tmp / "result.json"
    out.unlink(missing_ok=True)
    record = _invoke(["simulate", "--artifact", artifact, "--hw", str(path), "--seq-len", "8",
                      "--json", str(out), *extra])  # fmt: skip
    if record["exit"] == 0:
        record["document"] = json.loads(out.read_text())
    return record


@functools.cache
def _preset(name: str) -> dict:
    from accel_sim.spec import load_hardware

    return load_hardware(name).model_dump(mode="json")


def _hardware(case: dict) -> dict:
    data = copy.deepcopy(_preset(case.get("preset", CROSSBAR_PRESET)))
    if case["target"] == "array":
        data.update(copy.deepcopy(ARRAY_EXTRA))  # _set writes into it
    _set(data, case["field"], case["value"])  # safe_dump writes .inf, .nan and big ints
    return data


def _study(case: dict, tmp: Path, full: bool) -> dict:
    data: dict[str, Any] = {
        "name": "extreme",
        "models": ["bert-tiny"],
        "seq_lens": [8],
        "hardware": ["systolic-32x32-ws-skip"],
        "grid": {"pe_array": [{"rows": 8, "cols": 8}]},
        "patterns": [{"pattern": "block:4x4"}],
        "outputs": {"plots_dir": "plots", "report": "report.md"},
    }
    field, value = case["field"], case["value"]
    if not field.endswith(("sparsities", "compression_ratios")):
        data["sparsities"] = [0.5]  # a pattern needs one (no default applies)
    if field == "seed":
        data["seed"] = value
    elif field.startswith("patterns."):
        data["patterns"][0][field.rsplit(".", 1)[1]] = [value]
    else:
        data[field] = [value]
    if full:  # the whole command, plots and report included
        spec = tmp / "spec.yaml"
        spec.write_text(yaml.safe_dump(data))
        record = _invoke(["study", "run", str(spec), "--out", str(tmp / "out"), "--no-progress"])
        if record["exit"] == 0:
            import pandas as pd

            record["rows"] = json.loads(pd.read_csv(tmp / "out" / "results.csv").to_json(
                orient="records"))  # fmt: skip
        return record
    return _study_in_process(data, tmp)


def _study_in_process(data: dict, tmp: Path) -> dict:
    """Validate, expand and evaluate the spec's points in this process (the default run:
    everything ``study run`` does with the values but the plots), as the CLI would."""
    from studies.evaluate import evaluate_point, prepare_masks
    from studies.spec import StudySpecError, expand, spec_from_dict

    try:
        points = expand(spec_from_dict(data, "extreme"))
        prepare_masks(points, tmp / "masks")
        rows = [evaluate_point(p, str(tmp / "masks")) for p in points]
    except (StudySpecError, ValueError) as error:  # every input error is a ValueError
        return {"exit": 2, "stdout": "", "stderr": f"error: {error}"}
    except Exception:
        return {"exit": 1, "stdout": "", "stderr": "", "exception": traceback.format_exc()}
    return {
        "exit": 0,
        "stdout": "",
        "stderr": "",
        "rows": json.loads(json.dumps(rows, default=str)),
    }


def _model(case: dict, tmp: Path) -> dict:
    config = _tiny_config()
    field, value = case["field"], case["value"]
    if field == "num_labels":
        config.pop("id2label", None)
        config.pop("label2id", None)
    config[field] = value
    directory = tmp / "model"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps(config))  # NaN/Infinity as Python writes
    out = tmp / "result.json"
    out.unlink(missing_ok=True)
    record = _invoke(["simulate", "--model", str(directory), "--seq-len", "8",
                      "--hw", "systolic-32x32-ws", "--json", str(out)])  # fmt: skip
    if record["exit"] == 0:
        record["document"] = json.loads(out.read_text())
    return record


def _cli(case: dict, tmp: Path) -> dict:
    out = tmp / "result.json"
    out.unlink(missing_ok=True)
    args = ["simulate", "--model", "bert-tiny", "--hw", "systolic-32x32-ws", "--json", str(out)]
    sizes = {"batch": "1", "seq-len": "8", case["field"]: str(case["value"])}
    record = _invoke([*args, "--batch", sizes["batch"], "--seq-len", sizes["seq-len"]])
    if record["exit"] == 0:
        record["document"] = json.loads(out.read_text())
    return record


def run_case(case: dict, artifact: str, full: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix="extreme-") as name:
        tmp = Path(name)
        started = time.perf_counter()
        try:
            if case["target"] in ("array", "crossbar"):
                record = _simulate(_hardware(case), tmp, artifact)
            elif case["target"] == "study":
                record = _study(case, tmp, full)
            elif case["target"] == "model":
                record = _model(case, tmp)
            else:
                record = _cli(case, tmp)
        except Exception:  # the harness itself, e.g. a value YAML cannot write
            record = {"exit": -1, "stdout": "", "stderr": "", "exception": traceback.format_exc()}
        record["seconds"] = time.perf_counter() - started
    return record


# ----------------------------------------------------------------------------- verdicts


def _finite_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_totals(total: dict, where: str) -> list[str]:
    problems = []
    for name in ("cycles", "compute_cycles", "stall_cycles", "latency_s", "energy_j", "macs",
                 "dram_bytes", "effective_macs"):  # fmt: skip
        if not _finite_number(total.get(name)) or total[name] < 0:
            problems.append(f"{where} {name} is {total.get(name)!r}")
    if problems:
        return problems
    if total["cycles"] != total["compute_cycles"] + total["stall_cycles"]:
        problems.append(f"{where} cycles != compute + stall")
    if total["cycles"] <= 0:
        problems.append(f"{where} cycles is {total['cycles']}")
    # cycles x PEs >= useful MACs, as utilisations of at most 1
    for name in ("utilisation", "effective_utilisation"):
        value = total.get(name)
        if not _finite_number(value) or not 0 <= value <= 1 + 1e-9:
            problems.append(f"{where} {name} is {value!r}: cycles x PEs < MACs")
    return problems


def verdict(case: dict, record: dict) -> list[str]:
    """What is wrong with a case's outcome (empty: it ran consistently or ended in one
    named error)."""
    if record.get("exception") or record["exit"] not in (0, 2):
        text = record.get("exception") or record["stderr"] or record["stdout"]
        return [f"exit {record['exit']}: {text[-1500:]}"]
    if record["exit"] == 2:
        stderr = record["stderr"]
        text = " ".join((record["stdout"] + " " + stderr).split())
        problems = []
        if "Traceback" in stderr + record["stdout"]:
            problems.append("a traceback")
        if stderr.count("error:") != 1:
            problems.append(f"{stderr.count('error:')} error lines")
        leaf = case["field"].rsplit(".", 1)[-1].replace("-", "_")
        # a study list's value fails its own design point, named as that point's field
        names = {leaf, POINT_FIELDS.get(leaf, leaf)}
        if not any(name in text.replace("-", "_") for name in names):
            problems.append(f"the error does not name {leaf!r}")
        if not any(word in text for word in BOUND_WORDS):
            problems.append("the error names no limit or expected form")
        return [f"{p}: {text[:600]}" for p in problems]
    if "document" in record:
        document = record["document"]
        problems = _check_totals(document["total"], "total")
        if document.get("baseline"):
            problems += _check_totals(document["baseline"], "baseline")
        ops = document["ops"]
        if sum(op["cycles"] for op in ops) != document["total"]["cycles"]:
            problems.append("op cycles do not add up to the total")
        breakdown = sum(document["energy_breakdown_j"].values())
        if not math.isclose(breakdown, document["total"]["energy_j"], rel_tol=1e-9, abs_tol=1e-30):
            problems.append("the energy breakdown does not add up to the total")
        return problems
    problems = []
    for row in record.get("rows", []):
        for name in ("cycles", "latency_s", "energy_j", "baseline_cycles"):
            if not _finite_number(row.get(name)) or row[name] < 0:
                problems.append(f"row {name} is {row.get(name)!r}")
        if _finite_number(row.get("effective_utilisation")) and row["effective_utilisation"] > 1:
            problems.append("cycles x PEs < useful MACs")
    return problems


def across_cases(cases: list[dict], results: dict[int, dict]) -> list[str]:
    """What is wrong across cases: more sequences (``--batch``) or longer ones
    (``--seq-len``) never take fewer cycles, among the values that ran."""
    problems = []
    for field in CLI_FIELDS:
        ran = sorted(
            (case["value"], results[case["id"]]["document"]["total"]["cycles"])
            for case in cases
            if case["target"] == "cli" and case["field"] == field
            and "document" in results[case["id"]]
        )  # fmt: skip
        for (small, fewer), (large, more) in itertools.pairwise(ran):
            if more < fewer:
                problems.append(f"--{field} {large} takes {more} cycles, fewer than the "
                                f"{fewer} of --{field} {small}")  # fmt: skip
    return problems


def main(argv: list[str]) -> None:
    cases_file, out_file, artifact, mode = argv
    todo = json.loads(Path(cases_file).read_text())
    from accel_sim.datapaths.systolic.dense import warm_up

    warm_up()
    # typer rebuilds the click command from the app's signatures on every CliRunner.invoke
    # (a tenth of a second); the command is stateless between runs, so build it once here
    import typer.testing

    typer.testing._get_command = functools.cache(typer.testing._get_command)
    with open(out_file, "a", encoding="utf-8") as out:
        for case in todo:
            out.write(json.dumps({"start": case["id"]}) + "\n")
            out.flush()
            record = run_case(case, artifact, mode == "full")
            out.write(json.dumps({"id": case["id"], **record}, default=str) + "\n")
            out.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
