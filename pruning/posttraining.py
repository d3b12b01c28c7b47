"""Post-training pruning from calibration data: Wanda and SparseGPT, no retraining.

Both prune a trained model linear layer by linear layer from the inputs ``X`` (``[in,
tokens]``, the kept tokens of a few calibration examples, padding left out) that each layer
sees:

- **Wanda** (Sun, Liu, Bair and Kolter, "A Simple and Effective Pruning Approach for Large
  Language Models", ICLR 2024): score ``S_ij = |W_ij| * ||X_j||_2`` and prune the lowest
  scores of every output row (unstructured: exactly ``floor(sparsity * in)`` per row), or
  within every group of ``M`` consecutive inputs (N:M). The weights that stay are unchanged.
- **SparseGPT** (Frantar and Alistarh, "SparseGPT: Massive Language Models Can Be
  Accurately Pruned in One-Shot", ICML 2023): with ``H = X X^T / tokens + lambda I``
  (``lambda = damping * mean(diag H)``, 0.01 as in the paper), take the upper Cholesky
  factor ``U`` of ``H^-1`` and walk the columns in blocks of ``blocksize`` (128). In each
  block the mask is chosen from the OBS saliency ``w^2 / U_jj^2``; then every column ``j``
  in turn is pruned and its error ``(w_j - q_j) / U_jj`` is spread over the columns not yet
  processed through row ``j`` of ``U`` (the OBS update). Patterns:

  - unstructured: the ``floor(sparsity * n)`` lowest saliencies of each ``[out, blocksize]``
    block, so the sparsity is exact per column block;
  - N:M: the ``N`` largest saliencies of every group of ``M`` columns, chosen when the walk
    reaches the group (after the updates of the columns before it), as the paper's code does;
  - ``block:RxC`` (and crossbar tiles): whole ``R x C`` tiles, scored by the sum of their
    entries' saliencies, the lowest ``floor(sparsity * tiles)`` of each column block pruned
    (the column block is rounded down to a multiple of ``C``). This extension is ours: the
    paper treats unstructured and N:M only.

Calibration is sequential, as both papers do: layers are pruned in forward order, and each
layer's inputs are collected by a forward pass of the model whose earlier layers are already
pruned (and, for SparseGPT, updated). Layers that read the same input (query, key and value)
are pruned together from one pass. Statistics accumulate in float64 on the CPU.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from pruning.patterns import NM, Block, Pattern, Unstructured, check_sparsity, n_pruned

__all__ = [
    "DEFAULT_BLOCKSIZE",
    "DEFAULT_CALIBRATION_EXAMPLES",
    "DEFAULT_DAMPING",
    "POST_TRAINING_METHODS",
    "calibration_batches",
    "check_post_training_pattern",
    "post_training_prune",
    "sparsegpt_prune_weight",
    "wanda_mask",
]

POST_TRAINING_METHODS = ("wanda", "sparsegpt")
DEFAULT_CALIBRATION_EXAMPLES = 128  # both papers: 128 segments of C4
DEFAULT_DAMPING = 0.01  # SparseGPT: lambda = 1% of the mean diagonal of H
DEFAULT_BLOCKSIZE = 128  # SparseGPT: lazy-update column blocks of 128


def check_post_training_pattern(method: str, pattern: Pattern) -> None:
    """Refuse a pattern the method does not support (ValueError naming the supported ones)."""
    if method == "wanda":
        supported: tuple[type, ...] = (Unstructured, NM)
        forms = "unstructured or nm:N:M"
    elif method == "sparsegpt":
        supported = (Unstructured, NM, Block)
        forms = "unstructured, nm:N:M or block:RxC"
    else:
        raise ValueError(f"unknown post-training method {method!r}: expected wanda or sparsegpt")
    if not isinstance(pattern, supported):
        raise ValueError(f"method {method!r} supports patterns {forms}, not {pattern}")


# ----------------------------------------------------------------------------- Wanda


def wanda_mask(
    weight: Tensor, input_sq_norms: Tensor, pattern: Pattern, sparsity: float | None
) -> Tensor:
    """Wanda's keep-mask of ``weight`` ``[out, in]`` from ``input_sq_norms`` ``[in]`` (the
    squared L2 norm of every input feature over the calibration tokens).

    Unstructured: the ``floor(sparsity * in)`` lowest ``|W_ij| * ||X_j||`` of every row are
    pruned (ties to the lower column). N:M: the ``N`` largest scores of every ``M`` kept.
    """
    check_post_training_pattern("wanda", pattern)
    if input_sq_norms.shape != (weight.shape[1],):
        raise ValueError(
            f"input norms have shape {tuple(input_sq_norms.shape)}, expected ({weight.shape[1]},)"
        )
    scores = weight.detach().to(torch.float64).abs() * input_sq_norms.to(torch.float64).sqrt()
    if isinstance(pattern, NM):
        return pattern.compute_mask(scores, None).to(weight.device)
    assert sparsity is not None
    k = n_pruned(check_sparsity(sparsity), weight.shape[1])
    order = torch.argsort(scores, dim=1, stable=True)
    mask = torch.ones_like(scores, dtype=torch.bool)
    mask.scatter_(1, order[:, :k], False)
    return mask.to(weight.device)


# ----------------------------------------------------------------------------- SparseGPT


def _prune_lowest(saliency: Tensor, k: int) -> Tensor:
    """Bool ``True`` at the ``k`` lowest entries of ``saliency`` (stable: ties to the lower
    flat index)."""
    pruned = torch.zeros(saliency.numel(), dtype=torch.bool)
    pruned[torch.argsort(saliency.flatten(), stable=True)[:k]] = True
    return pruned.reshape(saliency.shape)


def _block_pruned(saliency: Tensor, rows: int, cols: int, sparsity: float) -> Tensor:
    """Bool ``True`` on whole ``rows x cols`` tiles of ``saliency`` whose summed saliency is
    among the ``floor(sparsity * tiles)`` lowest (edge tiles partial)."""
    out, width = saliency.shape
    grid_r, grid_c = -(-out // rows), -(-width // cols)
    padded = saliency.new_zeros(grid_r * rows, grid_c * cols)
    padded[:out, :width] = saliency
    tiles = padded.reshape(grid_r, rows, grid_c, cols).sum(dim=(1, 3))
    gone = _prune_lowest(tiles, n_pruned(sparsity, tiles.numel()))
    expanded = gone.repeat_interleave(rows, 0).repeat_interleave(cols, 1)
    return expanded[:out, :width]


def _column_block(pattern: Pattern, blocksize: int) -> int:
    """The column block width: ``blocksize`` rounded down to a multiple of N:M's ``M`` or the
    block pattern's ``C`` (at least one of them)."""
    unit = (
        pattern.m if isinstance(pattern, NM) else pattern.cols if isinstance(pattern, Block) else 1
    )
    return max(unit, blocksize // unit * unit)


def _inverse_cholesky(hessian: Tensor, damping: float) -> Tensor:
    """Upper Cholesky factor of ``(H + lambda I)^-1``, ``lambda = damping * mean(diag H)``."""
    h = hessian.clone()
    lam = damping * torch.mean(torch.diag(h))
    if not math.isfinite(float(lam)) or float(lam) <= 0:
        lam = torch.tensor(damping, dtype=h.dtype)
    h.diagonal().add_(lam)
    lower = torch.linalg.cholesky(h)
    inverse = torch.cholesky_inverse(lower)
    return torch.linalg.cholesky(inverse, upper=True)


def sparsegpt_prune_weight(
    weight: Tensor,
    hessian: Tensor,
    pattern: Pattern,
    sparsity: float | None,
    damping: float = DEFAULT_DAMPING,
    blocksize: int = DEFAULT_BLOCKSIZE,
) -> tuple[Tensor, Tensor]:
    """SparseGPT on one ``weight`` ``[out, in]`` with ``hessian`` ``X X^T`` ``[in, in]``:
    returns ``(new_weight, keep_mask)``; ``new_weight`` is zero wherever the mask is False and
    has ``weight``'s dtype. An input never active (zero diagonal of ``H``) cannot change the
    output, so its weights are zeroed and its diagonal set to 1 first, as the paper's code
    does; the mask then treats its column like any other."""
    check_post_training_pattern("sparsegpt", pattern)
    if blocksize < 1:
        raise ValueError(f"blocksize must be a positive integer, got {blocksize!r}")
    if not (math.isfinite(damping) and damping > 0):
        raise ValueError(f"damping must be a positive number, got {damping!r}")
    columns = weight.shape[1]
    if hessian.shape != (columns, columns):
        raise ValueError(
            f"hessian has shape {tuple(hessian.shape)}, expected ({columns}, {columns})"
        )
    if not isinstance(pattern, NM):
        assert sparsity is not None
        sparsity = check_sparsity(sparsity)
    w = weight.detach().to(device="cpu", dtype=torch.float64).clone()
    h = hessian.detach().to(device="cpu", dtype=torch.float64).clone()
    dead = torch.diag(h) == 0
    h[dead, dead] = 1.0
    w[:, dead] = 0.0
    u = _inverse_cholesky(h, damping)
    pruned = torch.zeros_like(w, dtype=torch.bool)
    width = _column_block(pattern, blocksize)
    for start in range(0, columns, width):
        stop = min(start + width, columns)
        count = stop - start
        w1 = w[:, start:stop].clone()
        q1 = torch.zeros_like(w1)
        err1 = torch.zeros_like(w1)
        u1 = u[start:stop, start:stop]
        diag1 = torch.diag(u1)
        if isinstance(pattern, NM):
            gone = torch.zeros_like(w1, dtype=torch.bool)
        else:
            saliency = w1**2 / diag1.reshape(1, -1) ** 2
            if isinstance(pattern, Block):
                gone = _block_pruned(saliency, pattern.rows, pattern.cols, sparsity)
            else:
                gone = _prune_lowest(saliency, n_pruned(sparsity, saliency.numel()))
        for i in range(count):
            if isinstance(pattern, NM) and i % pattern.m == 0:
                group = w1[:, i : i + pattern.m] ** 2 / diag1[i : i + pattern.m].reshape(1, -1) ** 2
                lowest = torch.argsort(group, dim=1, stable=True)[:, : pattern.m - pattern.n]
                gone.scatter_(1, i + lowest, True)
            column = w1[:, i]
            q = column.clone()
            q[gone[:, i]] = 0.0
            q1[:, i] = q
            err = (column - q) / u1[i, i]
            w1[:, i:] -= err.unsqueeze(1) @ u1[i, i:].unsqueeze(0)
            err1[:, i] = err
        w[:, start:stop] = q1
        pruned[:, start:stop] = gone
        w[:, stop:] -= err1 @ u[start:stop, stop:]
    keep = ~pruned
    w[pruned] = 0.0
    return w.to(dtype=weight.dtype, device=weight.device), keep.to(weight.device)


# ----------------------------------------------------------------------------- calibration


def calibration_batches(
    data: Mapping[str, Tensor],
    examples: int,
    model: nn.Module,
    batch_size: int = 32,
    seed: int = 0,
    with_labels: bool = False,
) -> tuple[list[dict[str, Tensor]], list[int]]:
    """``examples`` rows of ``data`` (a seeded choice, all rows when it holds fewer) as
    model-ready batches, each padded only to its longest member, rows of similar length
    batched together; returns ``(batches, chosen row indices)``. ``with_labels`` keeps the
    labels in each batch (for methods that take gradients of the task loss)."""
    from pruning.train import _batch, _forward_keys, example_lengths, n_examples

    if isinstance(examples, bool) or not isinstance(examples, int) or examples < 1:
        raise ValueError(f"calibration examples must be a positive integer, got {examples!r}")
    total = n_examples(data)
    if total == 0:
        raise ValueError("no calibration examples: the training split is empty")
    generator = torch.Generator().manual_seed(seed)
    chosen = torch.sort(torch.randperm(total, generator=generator)[: min(examples, total)]).values
    lengths = example_lengths(data)[chosen]
    ordered = chosen[torch.argsort(lengths, stable=True)]
    keys = _forward_keys(model) | ({"labels"} if with_labels else set())
    batches = [
        _batch(data, ordered[start : start + batch_size], keys)
        for start in range(0, len(ordered), batch_size)
    ]
    return batches, chosen.tolist()


class _Stop(Exception):
    """Raised by the last hook of a group: the rest of the forward pass is not needed."""


def _module_of(model: nn.Module, weight_name: str) -> nn.Linear:
    module = model.get_submodule(weight_name.removesuffix(".weight"))
    if not isinstance(module, nn.Linear):
        raise TypeError(f"{weight_name!r} is not the weight of an nn.Linear")
    return module


def _input_groups(
    model: nn.Module, names: Sequence[str], batch: dict[str, Tensor]
) -> list[list[str]]:
    """``names`` in forward order, consecutive layers that read the very same input tensor
    (query, key and value) grouped: one dense probe forward on ``batch``."""
    seen: dict[str, int] = {}
    handles = []
    for name in names:

        def hook(_module: nn.Module, args: tuple, _name: str = name) -> None:
            seen.setdefault(_name, id(args[0]))

        handles.append(_module_of(model, name).register_forward_pre_hook(hook))
    try:
        with torch.no_grad():
            model(**batch)
    finally:
        for handle in handles:
            handle.remove()
    groups: list[list[str]] = []
    for name in names:
        if name not in seen:
            raise ValueError(f"layer {name!r} is never reached by the forward pass")
        if groups and seen[groups[-1][-1]] == seen[name]:
            groups[-1].append(name)
        else:
            groups.append([name])
    return groups


def _tokens(x: Tensor, token_mask: Tensor | None) -> Tensor:
    """``x`` ``[..., in]`` as ``[tokens, in]`` float64, padding tokens left out."""
    if token_mask is not None and x.dim() == 3 and tuple(x.shape[:2]) == tuple(token_mask.shape):
        x = x[token_mask.to(torch.bool)]
    return x.reshape(-1, x.shape[-1]).to(torch.float64)


def _collect(
    model: nn.Module,
    names: Sequence[str],
    batches: Sequence[dict[str, Tensor]],
    full_hessian: bool,
) -> tuple[dict[str, Tensor], int]:
    """Per layer in ``names`` (all reading one input): ``X X^T`` (``full_hessian``) or the
    squared input norms ``diag(X X^T)``, summed over the kept tokens of ``batches``; and the
    token count. The forward stops after the group's last layer."""
    from pruning.heads import encoder_attention_mask

    first = _module_of(model, names[0])
    last = _module_of(model, names[-1])
    columns = first.in_features
    stat = torch.zeros((columns, columns) if full_hessian else (columns,), dtype=torch.float64)
    state: dict[str, Any] = {"tokens": 0, "mask": None}

    def hook(_module: nn.Module, args: tuple) -> None:
        x = _tokens(args[0].detach(), state["mask"])
        state["tokens"] += x.shape[0]
        if full_hessian:
            stat.add_(x.T @ x)
        else:
            stat.add_((x * x).sum(dim=0))
        if _module is last:
            raise _Stop

    def stop(_module: nn.Module, _args: tuple) -> None:
        raise _Stop

    handle = first.register_forward_pre_hook(hook)
    stopper = last.register_forward_pre_hook(stop) if last is not first else None
    try:
        with torch.no_grad():
            for batch in batches:
                state["mask"] = encoder_attention_mask(model, batch)
                with contextlib.suppress(_Stop):
                    model(**batch)
    finally:
        handle.remove()
        if stopper is not None:
            stopper.remove()
    tokens = state["tokens"]
    if tokens == 0:
        raise ValueError(f"no calibration tokens reached layer {names[0]!r}")
    return {name: stat for name in names}, tokens


def post_training_prune(
    model: nn.Module,
    weights: Mapping[str, Tensor],
    batches: Sequence[dict[str, Tensor]],
    method: str,
    pattern: Pattern,
    sparsity: float | None,
    damping: float = DEFAULT_DAMPING,
    blocksize: int = DEFAULT_BLOCKSIZE,
    report: Callable[[str], None] | None = None,
) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Prune ``weights`` (name -> the model's own weight parameters, in forward order) of
    ``model`` in place by ``method`` from the calibration ``batches``, layer group by layer
    group (see the module docstring); returns the keep-masks and a record (groups, tokens,
    seconds, and for SparseGPT the damping and block size)."""
    check_post_training_pattern(method, pattern)
    if not batches:
        raise ValueError("no calibration batches")
    started = time.perf_counter()
    was_training = model.training
    model.eval()
    names = list(weights)
    groups = _input_groups(model, names, batches[0])
    masks: dict[str, Tensor] = {}
    tokens = 0
    try:
        for group in groups:
            stats, tokens = _collect(model, group, batches, full_hessian=method == "sparsegpt")
            for name in group:
                param = weights[name]
                if method == "wanda":
                    mask = wanda_mask(param, stats[name], pattern, sparsity)
                    with torch.no_grad():
                        param.mul_(mask.to(param.dtype))
                else:
                    new, mask = sparsegpt_prune_weight(
                        param, stats[name] / tokens, pattern, sparsity, damping, blocksize
                    )
                    with torch.no_grad():
                        param.copy_(new)
                masks[name] = mask
            if report is not None:
                report(f"{method}: pruned {', '.join(group)}")
    finally:
        model.train(was_training)
    record: dict[str, Any] = {
        "kind": "post-training",
        "calibration_tokens_per_layer": tokens,
        "layer_groups": [list(g) for g in groups],
        "sequential": "each layer group's inputs from the model with earlier layers pruned",
        "statistics": "float64, CPU, kept tokens only (no padding)",
        "method_seconds": round(time.perf_counter() - started, 3),
    }
    if method == "sparsegpt":
        record |= {"damping": damping, "blocksize": blocksize}
    return {name: masks[name] for name in names}, record
