"""Mask tuning by layer-wise least squares (Kwon et al., NeurIPS 2022, section 4.3), and
folding the tuned mask values into the weights.

The pruned model (the student) keeps the heads and neurons the search chose; their mask
values become real numbers fitted, layer by layer, so that the layer's output before its
LayerNorm (projection + bias + residual) reproduces that of a less pruned model (the teacher:
the masks searched at ``sqrt`` of the FLOPs fraction, as the paper code's ``main.py``). As
``prune/rescale.py`` of github.com/WoosukKwon/retraining-free-pruning does:

- each layer is tuned from the inputs the already-tuned earlier layers give it (the student)
  and those the teacher's earlier layers give it, both collected by running the layers;
- first the heads (``get_mha_lstsq``; layer 0's heads are left as they are, as there), then,
  with the tuned heads in place, the FFN neurons (``get_ffn_lstsq``); for a ``cls`` head the
  last layer's FFN is fitted on the [CLS] token only, which is all that head reads (the
  ``mean`` and bi-encoder heads read every token, so every kept token counts);
- the normal equations ``A^T A x = A^T b`` of ``min ||A s - b||`` (one column of ``A`` per
  kept head or neuron: its contribution to the output) are solved for ``x = s - 1`` by LSMR
  with ``damp = 1`` (``utils/linalg.py`` ``lsmr_cupy_solver``; SciPy's LSMR here); tuning
  stops at the first layer whose solve does not converge or gives a value outside
  ``[-10, 10]``, leaving that layer and the later ones at 0/1.

One difference: their head problem carries an extra all-ones column (a free offset) whose
fitted value is then dropped; here the problem has exactly the columns whose values are used,
so the fitted error is the error of the tuned model. The damped solve then never increases
it: with ``M = A^T A`` and ``c = A^T b - M 1``, ``x = (M^2 + I)^-1 M c`` changes the squared
error by ``sum_i c_i^2 lambda_i (lambda_i^2 / (lambda_i^2 + 1) - 2) / (lambda_i^2 + 1) <= 0``
over M's eigenpairs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from scipy.sparse.linalg import lsmr
from torch import Tensor, nn

from pruning.fisher import StructuredShape, encoder_layers, mask_hooks

__all__ = [
    "MAX_SCALE",
    "ffn_normal_equations",
    "fold_masks",
    "head_normal_equations",
    "lstsq_error",
    "solve_scales",
    "tune_masks",
]

MAX_SCALE = 10.0  # prune/rescale.py: stop when a fitted value leaves [-10, 10]


class _Stop(Exception):
    """Raised by a hook once the values it needs are captured."""


def head_normal_equations(
    context: Tensor, residual: Tensor, target: Tensor, weight: Tensor, bias: Tensor,
    kept: Tensor, head_size: int,
) -> tuple[Tensor, Tensor, Tensor]:  # fmt: skip
    """``(A^T A, A^T b, b^T b)`` for the kept heads of one attention output projection:
    ``context`` ``[tokens, d]`` (already multiplied by the current mask), ``residual``
    ``[tokens, d]``, ``target`` the teacher's pre-LayerNorm output ``[tokens, d]``;
    column ``k`` of ``A`` is head ``kept[k]``'s share of the projection."""
    per_head = torch.stack(
        [
            context[:, h * head_size : (h + 1) * head_size]
            @ weight[:, h * head_size : (h + 1) * head_size].T
            for h in kept.tolist()
        ]
    )  # [kept, tokens, d]
    b = target - bias - residual
    flat = per_head.reshape(per_head.shape[0], -1)
    return flat @ flat.T, flat @ b.reshape(-1), (b * b).sum()


def ffn_normal_equations(
    inner: Tensor, residual: Tensor, target: Tensor, weight: Tensor, bias: Tensor, kept: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """``(A^T A, A^T b, b^T b)`` for the kept neurons of one FFN output projection ``weight``
    ``[d, intermediate]``: ``inner`` ``[tokens, intermediate]`` (masked), column ``k`` of ``A``
    is ``inner[:, n] outer weight[:, n]`` for ``n = kept[k]`` (``get_ffn_lstsq``'s product
    form, without building ``A``)."""
    h = inner[:, kept]
    w = weight[:, kept]
    b = target - bias - residual
    return (w.T @ w) * (h.T @ h), (h * (b @ w)).sum(dim=0), (b * b).sum()


def lstsq_error(ata: Tensor, atb: Tensor, btb: Tensor, scales: Tensor) -> float:
    """``||A s - b||^2`` from the normal equations."""
    s = scales.to(ata.dtype)
    return float(s @ ata @ s - 2 * s @ atb + btb)


def solve_scales(ata: Tensor, atb: Tensor) -> tuple[Tensor, str | None]:
    """The fitted values ``s = 1 + x`` (``lsmr_cupy_solver``: LSMR on ``A^T A x = A^T b -
    A^T A 1`` with ``damp = 1`` and SciPy's default tolerances and iteration limit, as
    CuPy's; one column solved directly) and why not to use them (None: converged and within
    ``[-MAX_SCALE, MAX_SCALE]``)."""
    rhs = atb - ata.sum(dim=1)
    if rhs.numel() == 1:
        if float(ata[0, 0]) == 0:
            return torch.ones(1, dtype=ata.dtype), "the kept unit never contributes"
        x = rhs / ata[0, 0]
        problem = None
    else:
        solution = lsmr(ata.numpy(), rhs.numpy(), damp=1.0)
        x = torch.from_numpy(np.asarray(solution[0])).to(ata.dtype)
        problem = None if solution[1] < 3 else f"LSMR did not converge (istop {solution[1]})"
    scales = x + 1
    if problem is None and not (
        bool(torch.isfinite(scales).all()) and float(scales.abs().max()) <= MAX_SCALE
    ):
        problem = f"a fitted value ({float(scales.abs().max()):.3g}) is outside [-10, 10]"
    return scales, problem


def _layer_inputs(model: nn.Module, batches: Sequence[dict[str, Tensor]]) -> list[tuple]:
    """Per batch, the ``(args, kwargs)`` the first encoder layer is called with."""
    first = encoder_layers(model)[0]
    seen: list[tuple] = []

    def hook(_module: nn.Module, args: tuple, kwargs: dict) -> None:
        seen.append((args, kwargs))
        raise _Stop

    handle = first.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        with torch.no_grad():
            for batch in batches:
                inputs = {k: v for k, v in batch.items() if k != "labels"}
                with contextlib.suppress(_Stop):
                    model(**inputs)
    finally:
        handle.remove()
    return seen


def _run_layer(layer: nn.Module, call: tuple) -> Tensor:
    out = layer(*call[0], **call[1])
    return out[0] if isinstance(out, tuple) else out


def _next_call(layer: nn.Module, call: tuple) -> tuple:
    """The next layer's ``(args, kwargs)``: this layer's output in place of its input."""
    args, kwargs = call
    return (_run_layer(layer, call), *args[1:]), kwargs


def _capture(layer: nn.Module, module: nn.Module, call: tuple) -> tuple[Tensor, Tensor]:
    """The ``(input, residual)`` ``module`` (a layer's attention or FFN output block) gets
    when ``layer`` runs on ``call``; the layer stops there."""
    seen: list[tuple] = []

    def hook(_module: nn.Module, args: tuple) -> None:
        seen.append(args)
        raise _Stop

    handle = module.register_forward_pre_hook(hook)
    try:
        with contextlib.suppress(_Stop):
            _run_layer(layer, call)
    finally:
        handle.remove()
    return seen[0][0], seen[0][1]


def _tokens(x: Tensor, keep: Tensor) -> Tensor:
    return x[keep].to(torch.float64)


def _keep_tokens(model: nn.Module, batch: dict[str, Tensor], cls_only: bool) -> Tensor:
    from pruning.heads import encoder_attention_mask

    mask = encoder_attention_mask(model, batch)
    if mask is None:
        mask = torch.ones_like(batch["input_ids"])
    keep = mask.to(torch.bool)
    if cls_only:
        keep = torch.zeros_like(keep)
        keep[:, 0] = True
    return keep


def tune_masks(
    model: nn.Module,
    batches: Sequence[dict[str, Tensor]],
    teacher: tuple[Tensor, Tensor],
    student: tuple[Tensor, Tensor],
    cls_head: bool,
) -> tuple[Tensor, Tensor, dict[str, Any]]:
    """The student's ``(head_mask, neuron_mask)`` with tuned values (see the module doc) and a
    record of each layer's squared reconstruction error before and after; ``teacher`` is the
    pair of masks whose layer outputs are reconstructed."""
    shape = StructuredShape.of(model.config)
    heads, neurons = student[0].clone().float(), student[1].clone().float()
    teacher_heads, teacher_neurons = teacher[0].float(), teacher[1].float()
    layers = encoder_layers(model)
    was_training = model.training
    model.eval()
    records: list[dict[str, Any]] = []
    stopped_at = None
    try:
        with torch.no_grad():
            teacher_calls = _layer_inputs(model, batches)
            student_calls = list(teacher_calls)
            for index, layer in enumerate(layers):
                last = index == len(layers) - 1
                record: dict[str, Any] = {"layer": index}
                for part in ("heads", "neurons"):
                    mask = heads if part == "heads" else neurons
                    kept = torch.nonzero(mask[index]).flatten()
                    if kept.numel() == 0 or (part == "heads" and index == 0):
                        continue
                    block = layer.attention.output if part == "heads" else layer.output
                    cls_only = cls_head and last and part == "neurons"
                    keeps = [_keep_tokens(model, b, cls_only) for b in batches]
                    scales, problem, before, after = _fit(
                        model, layer, block, (teacher_heads, teacher_neurons),
                        (heads, neurons), teacher_calls, student_calls, keeps, kept,
                        shape.head_size if part == "heads" else None,
                    )  # fmt: skip
                    record[part] = {
                        "error_before": before,
                        "error_after": after,
                        "used": problem is None,
                        **({} if problem is None else {"rejected": problem}),
                    }
                    if problem is not None:
                        stopped_at = index
                        break
                    mask[index, kept] = mask[index, kept] * scales.float()
                records.append(record)
                if stopped_at is not None:
                    break
                with mask_hooks(model, teacher_heads, teacher_neurons):
                    teacher_calls = [_next_call(layer, call) for call in teacher_calls]
                with mask_hooks(model, heads, neurons):
                    student_calls = [_next_call(layer, call) for call in student_calls]
    finally:
        model.train(was_training)
    summary = {
        "solver": "scipy.sparse.linalg.lsmr, damp 1, on the normal equations (x = s - 1)",
        "teacher": "masks searched at sqrt of the FLOPs fraction",
        "layers": records,
        "stopped_at_layer": stopped_at,
        "cls_token_only_last_ffn": bool(cls_head),
    }
    return heads, neurons, summary


def _fit(
    model: nn.Module, layer: nn.Module, block: nn.Module, teacher: tuple[Tensor, Tensor],
    student: tuple[Tensor, Tensor], teacher_calls: list, student_calls: list, keeps: list,
    kept: Tensor, head_size: int | None,
) -> tuple[Tensor, str | None, float, float]:  # fmt: skip
    """Fit the kept values of ``block`` (attention output or FFN output) of ``layer``, each
    side's inputs captured under its own masks; returns the values, why not to use them
    (None: use them), and the squared error at 1 and at the values used."""
    weight = block.dense.weight.detach().to(torch.float64)
    bias = block.dense.bias.detach().to(torch.float64)
    ata = atb = btb = None
    for teacher_call, student_call, keep in zip(teacher_calls, student_calls, keeps, strict=True):
        with mask_hooks(model, *teacher):
            t_in, t_res = _capture(layer, block, teacher_call)
        target = _tokens(t_in, keep) @ weight.T + bias + _tokens(t_res, keep)
        with mask_hooks(model, *student):
            s_in, s_res = _capture(layer, block, student_call)
        args = (_tokens(s_in, keep), _tokens(s_res, keep), target, weight, bias, kept)
        if head_size is None:
            terms = ffn_normal_equations(*args)
        else:
            terms = head_normal_equations(*args, head_size)
        ata, atb, btb = terms if ata is None else (ata + terms[0], atb + terms[1], btb + terms[2])
    scales, problem = solve_scales(ata, atb)
    before = lstsq_error(ata, atb, btb, torch.ones_like(atb))
    after = before if problem is not None else lstsq_error(ata, atb, btb, scales)
    return scales, problem, before, after


def fold_masks(model: nn.Module, head_mask: Tensor, neuron_mask: Tensor) -> None:
    """Fold mask values into the weights in place, so the plain model computes what the
    hooked one did: each head's columns of the attention output projection and each neuron's
    column of the FFN output projection are multiplied by its value; a pruned head's Q/K/V
    rows and biases and a pruned neuron's FFN input row and bias are zeroed too, so the
    weights show the structure."""
    shape = StructuredShape.of(model.config)
    size = shape.head_size
    with torch.no_grad():
        for index, layer in enumerate(encoder_layers(model)):
            heads = head_mask[index].to(torch.float32)
            columns = heads.repeat_interleave(size)
            layer.attention.output.dense.weight.mul_(columns.unsqueeze(0))
            rows = (columns != 0).to(torch.float32)
            for name in ("query", "key", "value"):
                linear = getattr(layer.attention.self, name)
                linear.weight.mul_(rows.unsqueeze(1))
                linear.bias.mul_(rows)
            neurons = neuron_mask[index].to(torch.float32)
            layer.output.dense.weight.mul_(neurons.unsqueeze(0))
            alive = (neurons != 0).to(torch.float32)
            layer.intermediate.dense.weight.mul_(alive.unsqueeze(1))
            layer.intermediate.dense.bias.mul_(alive)
