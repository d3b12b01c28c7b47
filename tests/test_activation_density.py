"""Measured input-activation densities (pruning.activations) and their use by a workload."""

from __future__ import annotations

import json

import pytest
import torch

from pruning.activations import count_inputs, measure_input_density
from tests.tiny_bert import tiny_model
from workloads import attach_activations, build_workload

torch.set_num_threads(1)

QUERY = "bert.encoder.layer.0.attention.self.query.weight"


def batches(n: int = 3, seq: int = 12, pad: int = 0, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    for _ in range(n):
        ids = torch.randint(1, 100, (2, seq), generator=generator)
        mask = torch.ones(2, seq + pad, dtype=torch.int64)
        mask[:, seq:] = 0
        yield {"input_ids": torch.cat([ids, torch.zeros(2, pad, dtype=torch.int64)], dim=1),
               "attention_mask": mask}  # fmt: skip


def half_zero_model():
    """The tiny model with the embedding LayerNorm's scale and shift zeroed on half the
    features: layer 0's Q, K and V inputs are then exactly half zeros."""
    model = tiny_model()
    with torch.no_grad():
        model.bert.embeddings.LayerNorm.weight[:32] = 0
        model.bert.embeddings.LayerNorm.bias[:32] = 0
    return model


def test_gelu_bert_inputs_are_dense_and_exact_zeros_are_counted() -> None:
    gelu = measure_input_density(tiny_model(), batches())
    assert len(gelu) == 2 * 6 + 2  # six linear layers a layer, pooler and classifier
    assert min(gelu.values()) > 0.99  # LayerNorm and GELU outputs are never exactly zero
    zeros = measure_input_density(half_zero_model(), batches())
    assert zeros[QUERY] == zeros[QUERY.replace("query", "key")] == 0.5
    assert zeros["bert.encoder.layer.0.output.dense.weight"] > 0.99


def test_padding_is_not_measured() -> None:
    model = half_zero_model()
    _, plain = count_inputs(model, batches(pad=0))
    nonzero, padded = count_inputs(model, batches(pad=5))
    assert padded == plain
    assert padded[QUERY] == 3 * 2 * 12 * 64  # batches x rows x kept tokens x hidden
    assert padded["bert.pooler.dense.weight"] == 3 * 2 * 64  # the first token of each row
    assert nonzero[QUERY] == padded[QUERY] // 2


def test_measured_densities_attach_to_the_models_workload() -> None:
    model = half_zero_model()
    densities = measure_input_density(model, batches())
    workload = attach_activations(build_workload(model.config, batch=1, seq_len=12), densities)
    by_name = {op.weight_name: op.activation_density for op in workload.gemms if op.weight_name}
    assert by_name == pytest.approx(densities)
    assert by_name[QUERY] == 0.5
    assert all(op.activation_density == 1.0 for op in workload.gemms if op.weight_name is None)


def test_no_tokens_is_an_error() -> None:
    with pytest.raises(ValueError, match="no tokens"):
        measure_input_density(tiny_model(), [])


def test_a_run_function_picks_what_runs() -> None:
    """The encoder alone (a mean or bi-encoder head's measurement): the classifier never
    sees an input, so it is not measured."""
    model = tiny_model()
    measured = measure_input_density(model, batches(), lambda inputs: model.base_model(**inputs))
    assert "classifier.weight" not in measured and QUERY in measured
    assert len(measured) == 2 * 6 + 1  # six linear layers a layer and the pooler


# --- cosim simulate --activations -------------------------------------------------------


def simulate_json(tmp_path, *extra: str) -> tuple[int, str, dict | None]:
    from typer.testing import CliRunner

    from studies.cli import app

    out = tmp_path / "out.json"
    out.unlink(missing_ok=True)
    args = ["simulate", "--model", "bert-tiny", "--hw", "eie-64pe", "--seq-len", "16",
            "--json", str(out), *extra]  # fmt: skip
    result = CliRunner().invoke(app, args)
    document = json.loads(out.read_text()) if out.is_file() else None
    return result.exit_code, result.stderr, document


def test_a_fixed_activation_density_speeds_up_an_array_that_skips_zero_activations(
    tmp_path,
) -> None:
    code, _, dense = simulate_json(tmp_path)
    assert code == 0 and "activations" not in dense
    code, _, quarter = simulate_json(tmp_path, "--activations", "0.25")
    assert code == 0
    assert quarter["activations"]["mode"] == "fixed"
    assert quarter["activations"]["mean_density"] == pytest.approx(0.25)
    # EIE broadcasts only nonzero activations: a quarter of the entries, fewer cycles
    assert quarter["total"]["cycles"] < dense["total"]["cycles"]


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (("--activations", "1.5"), "expected dense, measured or a density in [0, 1]"),
        (("--activations", "sparse"), "expected dense, measured or a density in [0, 1]"),
        (("--activations", "measured"), "give --activations-task TASK"),
        (("--activations", "measured", "--activations-task", "SST-2",
          "--activations-examples", "0"), "expected a whole number from 1 to 4096"),
        (("--activations", "measured", "--activations-task", "NOPE"), "NOPE"),
    ],
)  # fmt: skip
def test_bad_activation_options_are_one_error_line(tmp_path, extra, fragment) -> None:
    code, stderr, _ = simulate_json(tmp_path, *extra)
    lines = stderr.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error:"), stderr
    assert "--activations" in lines[0] and fragment in lines[0]


def test_measured_activations_run_the_tasks_dev_examples(tmp_path) -> None:
    code, stderr, document = simulate_json(
        tmp_path, "--activations", "measured", "--activations-task", "SST-2",
        "--activations-examples", "4",
    )  # fmt: skip
    assert code == 0, stderr
    record = document["activations"]
    assert record["mode"] == "measured" and record["task"] == "SST-2" and record["examples"] == 4
    assert QUERY in record["densities"]
    assert record["mean_density"] > 0.99  # GELU BERT: its linear inputs are dense
