"""Start a bi-encoder classifier from the cosine its encoder was trained for.

all-MiniLM-L6-v2 was trained with a cosine objective on L2-normalised mean-pooled
embeddings (its sentence-transformers pipeline ends in a ``Normalize`` module). On RTE the
untrained checkpoint's cosine with one threshold fitted on train gives 0.628 dev accuracy,
while SBERT's classifier on ``(u, v, |u - v|, u * v)`` starting from random weights stays at
the majority class after three epochs at lr 2e-5 (``results/accuracy-pairs-bi-encoder``):
the signal is in the cosine, and a freshly initialised 4h-input layer does not find it in a
few hundred steps.

So a new bi-encoder classifier reads normalised ``u`` and ``v`` (the checkpoint's own
embeddings), where the sum of the ``u * v`` block is exactly ``cosine(u, v)``, and starts as
the cosine rule fitted on train: multinomial logistic regression of the label on the cosine
(one weight and one bias per class), written into the ``u * v`` block and the bias, every
other weight zero. Fine-tuning then starts from that rule instead of from chance.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pruning.train import EncodedData, n_examples, predict

__all__ = ["MAX_FIT_EXAMPLES", "cosines", "fit_cosine_rule", "init_from_cosine"]

# The rule has two numbers per class; a couple of thousand pairs pin them down, and each
# costs two encoder forwards on the CPU (MNLI's 393k would take hours for nothing).
MAX_FIT_EXAMPLES = 2048


def _classifier(model: nn.Module) -> nn.Linear:
    classifier = getattr(model, "classifier", None)
    hidden = model.config.hidden_size
    if not isinstance(classifier, nn.Linear) or classifier.in_features != 4 * hidden:
        raise ValueError("the cosine start needs a bi-encoder classifier on (u, v, |u-v|, u*v)")
    if not getattr(model, "normalized", False):
        raise ValueError("the cosine start needs a bi-encoder that normalises u and v")
    return classifier


def _write_rule(classifier: nn.Linear, weight: torch.Tensor, bias: torch.Tensor) -> None:
    """Make ``classifier`` compute ``weight * cosine + bias`` per class (``[labels]`` each)."""
    hidden = classifier.in_features // 4
    with torch.no_grad():
        classifier.weight.zero_()
        classifier.weight[:, 3 * hidden :] = weight.to(classifier.weight.dtype).unsqueeze(1)
        classifier.bias.copy_(bias.to(classifier.bias.dtype))


def _subset(data: EncodedData, seed: int) -> EncodedData:
    total = n_examples(data)
    if total <= MAX_FIT_EXAMPLES:
        return data
    generator = torch.Generator().manual_seed(seed)
    rows = torch.randperm(total, generator=generator)[:MAX_FIT_EXAMPLES].sort().values
    return {key: value[rows] for key, value in data.items()}


def cosines(model: nn.Module, data: EncodedData) -> np.ndarray:
    """``cosine(u, v)`` of every pair in ``data`` under ``model``'s encoder (eval mode); the
    classifier is left computing the cosine in every class."""
    classifier = _classifier(model)
    labels = classifier.out_features
    _write_rule(classifier, torch.ones(labels), torch.zeros(labels))
    return predict(model, data)[:, 0].astype(np.float64)


def fit_cosine_rule(
    cosine: np.ndarray, labels: np.ndarray, num_labels: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Multinomial logistic regression of ``labels`` on ``cosine``: a weight and a bias per
    class (the first class's held at zero, so the fit is unique up to the data)."""
    x = torch.as_tensor(cosine, dtype=torch.float64).unsqueeze(1)
    y = torch.as_tensor(labels, dtype=torch.long)
    free = torch.zeros(2, num_labels - 1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([free], max_iter=200, line_search_fn="strong_wolfe")

    def logits() -> torch.Tensor:
        zero = torch.zeros(1, 1, dtype=torch.float64)
        weight = torch.cat([zero, free[:1]], dim=1)
        bias = torch.cat([zero, free[1:]], dim=1)
        return x * weight + bias

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(logits(), y)
        loss.backward()
        return loss

    optimizer.step(closure)
    fitted = free.detach()
    zero = torch.zeros(1, dtype=torch.float64)
    return torch.cat([zero, fitted[0]]), torch.cat([zero, fitted[1]])


def init_from_cosine(model: nn.Module, train: EncodedData, seed: int = 0) -> dict[str, Any]:
    """Set ``model``'s bi-encoder classifier to the cosine rule fitted on (up to
    :data:`MAX_FIT_EXAMPLES` of) ``train``; returns what was fitted, for the record."""
    classifier = _classifier(model)
    fit = _subset(train, seed)
    cosine = cosines(model, fit)
    labels = fit["labels"].cpu().numpy()
    weight, bias = fit_cosine_rule(cosine, labels, classifier.out_features)
    _write_rule(classifier, weight, bias)
    predicted = (cosine[:, None] * weight.numpy() + bias.numpy()).argmax(axis=1)
    record: dict[str, Any] = {
        "kind": "cosine rule fitted on train",
        "examples": len(labels),
        "weight": [round(float(w), 6) for w in weight],
        "bias": [round(float(b), 6) for b in bias],
        "train_accuracy": round(float((predicted == labels).mean()), 4),
    }
    if classifier.out_features == 2 and float(weight[1]) != 0.0:
        # class 1 wins where weight[1] * cosine + bias[1] > 0
        record["threshold"] = round(-float(bias[1]) / float(weight[1]), 6)
    return record
