"""Task heads on a BERT encoder: [CLS] + pooler, mean pooling, and a bi-encoder.

all-MiniLM-L6-v2 is a sentence-transformers checkpoint: it was trained as encoder, then mean
pooling, then normalisation, on single sentences. Its ``pooler.dense`` was never trained
(bias exactly 0, Gaussian weights of std 0.009), so the Hugging Face classifier head
(``cls``: [CLS] -> pooler dense + tanh -> classifier) starts from an untrained [CLS] through
a random projection, and nothing warns because the pooler key exists. The other two heads
read the encoder the way it was trained:

- ``mean``: masked mean of the last hidden states -> dropout -> ``Linear(h, labels)``;
  single sentences and pairs (a pair is one ``[CLS] a [SEP] b [SEP]`` sequence).
- ``bi-encoder`` (pairs only): each sentence encoded on its own and mean-pooled to ``u`` and
  ``v``; regression is ``cosine(u, v) * score_scale`` (sentence-transformers'
  CosineSimilarityLoss, with the task's top score as scale, 5 for STS-B); classification is
  ``Linear(4h, labels)`` on ``(u, v, |u - v|, u * v)`` (SBERT's SoftmaxLoss head). A new
  classifier reads L2-normalised ``u`` and ``v`` (the checkpoint's own embeddings, recorded
  as ``cosim_pair_features: normalized``) and starts as the cosine rule fitted on train
  (:mod:`pruning.cosine_head`); a checkpoint saved without the key keeps raw ``u`` and ``v``.

The pruned encoder is the same whichever head reads it: its weights keep the names
``bert.encoder.layer.<i>...`` that masks and the simulator's workload use. The head is
recorded in the checkpoint's ``config.json`` (``cosim_head``) so a saved model reloads with
it. Both new heads are BERT-family models (``model_type`` ``bert``, as MiniLM is).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import BertModel, BertPreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

__all__ = [
    "HEADS",
    "HEAD_KEY",
    "PAIR_FEATURES_KEY",
    "SCALE_KEY",
    "BertBiEncoder",
    "BertMeanPooled",
    "encoder_attention_mask",
    "head_class",
    "head_of",
    "mean_pool",
]

HEADS = ("cls", "mean", "bi-encoder")
HEAD_KEY = "cosim_head"  # config.json field naming the head
SCALE_KEY = "cosim_score_scale"  # config.json field: the bi-encoder's cosine scale
# config.json field: "normalized" when a bi-encoder classifier reads L2-normalised u and v
PAIR_FEATURES_KEY = "cosim_pair_features"
NORMALIZED = "normalized"


def head_of(model: nn.Module) -> str:
    """The head a model was built with (``cls`` for plain Hugging Face classifiers)."""
    return str(getattr(model.config, HEAD_KEY, None) or "cls")


def mean_pool(hidden: Tensor, attention_mask: Tensor) -> Tensor:
    """Mean of ``hidden`` ``[batch, seq, h]`` over the tokens ``attention_mask`` keeps."""
    weights = attention_mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)


def _dropout(config: Any) -> nn.Dropout:
    rate = getattr(config, "classifier_dropout", None)
    return nn.Dropout(config.hidden_dropout_prob if rate is None else rate)


def _task_loss(logits: Tensor, labels: Tensor | None, num_labels: int) -> Tensor | None:
    if labels is None:
        return None
    if num_labels == 1:
        return F.mse_loss(logits.squeeze(-1), labels.to(logits.dtype))
    return F.cross_entropy(logits.view(-1, num_labels), labels.view(-1))


class BertMeanPooled(BertPreTrainedModel):
    """BERT encoder, mean pooling, dropout, ``Linear(h, labels)`` (no pooler layer)."""

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self.num_labels = config.num_labels
        self.bert = BertModel(config, add_pooling_layer=False)
        self.dropout = _dropout(config)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(
        self,
        input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        inputs_embeds: Tensor | None = None,
        labels: Tensor | None = None,
        output_hidden_states: bool | None = None,
    ) -> SequenceClassifierOutput:
        out = self.bert(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            inputs_embeds=inputs_embeds,
            output_hidden_states=output_hidden_states,
        )
        if attention_mask is None:
            reference = input_ids if input_ids is not None else inputs_embeds[..., 0]
            attention_mask = torch.ones(reference.shape[:2], dtype=torch.long)
        pooled = mean_pool(out.last_hidden_state, attention_mask)
        logits = self.classifier(self.dropout(pooled))
        return SequenceClassifierOutput(
            loss=_task_loss(logits, labels, self.num_labels),
            logits=logits,
            hidden_states=out.hidden_states,
        )


def _stack(first: Tensor, second: Tensor, pad: float | int = 0) -> Tensor:
    """``first`` and ``second`` (``[batch, len, ...]``) padded to one length and stacked
    along the batch: ``[2 * batch, max(len), ...]``."""
    width = max(first.shape[1], second.shape[1])

    def padded(x: Tensor) -> Tensor:
        if x.shape[1] == width:
            return x
        shape = (x.shape[0], width - x.shape[1], *x.shape[2:])
        return torch.cat([x, x.new_full(shape, pad)], dim=1)

    return torch.cat([padded(first), padded(second)], dim=0)


class BertBiEncoder(BertPreTrainedModel):
    """Two sentences encoded separately by one BERT encoder (one forward over both, stacked
    along the batch), mean-pooled to ``u`` and ``v``; cosine regression or a classifier on
    ``(u, v, |u - v|, u * v)``. Hidden states come back stacked: ``[2 * batch, seq, h]``,
    the first sentences first."""

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self.num_labels = config.num_labels
        self.bert = BertModel(config, add_pooling_layer=False)
        self.normalized = getattr(config, PAIR_FEATURES_KEY, None) == NORMALIZED
        if config.num_labels == 1:
            self.score_scale = float(getattr(config, SCALE_KEY, None) or 1.0)
            self.dropout = None
            self.classifier = None
        else:
            self.dropout = _dropout(config)
            self.classifier = nn.Linear(4 * config.hidden_size, config.num_labels)
        self.post_init()

    @staticmethod
    def stacked_mask(attention_mask: Tensor, attention_mask_b: Tensor) -> Tensor:
        """The encoder's attention mask over both sentences, as the forward stacks them."""
        return _stack(attention_mask, attention_mask_b)

    def forward(
        self,
        input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        input_ids_b: Tensor | None = None,
        attention_mask_b: Tensor | None = None,
        token_type_ids_b: Tensor | None = None,
        inputs_embeds: Tensor | None = None,
        inputs_embeds_b: Tensor | None = None,
        labels: Tensor | None = None,
        output_hidden_states: bool | None = None,
    ) -> SequenceClassifierOutput:
        if attention_mask is None or attention_mask_b is None:
            raise ValueError("a bi-encoder needs attention_mask and attention_mask_b")
        batch = attention_mask.shape[0]
        mask = _stack(attention_mask, attention_mask_b)
        types = None
        if token_type_ids is not None and token_type_ids_b is not None:
            types = _stack(token_type_ids, token_type_ids_b)
        if inputs_embeds is not None and inputs_embeds_b is not None:
            out = self.bert(
                inputs_embeds=_stack(inputs_embeds, inputs_embeds_b, 0.0),
                attention_mask=mask,
                token_type_ids=types,
                output_hidden_states=output_hidden_states,
            )
        else:
            if input_ids is None or input_ids_b is None:
                raise ValueError("a bi-encoder needs input_ids and input_ids_b")
            out = self.bert(
                input_ids=_stack(input_ids, input_ids_b, self.config.pad_token_id or 0),
                attention_mask=mask,
                token_type_ids=types,
                output_hidden_states=output_hidden_states,
            )
        pooled = mean_pool(out.last_hidden_state, mask)
        u, v = pooled[:batch], pooled[batch:]
        if self.classifier is None:
            logits = (F.cosine_similarity(u, v, dim=-1) * self.score_scale).unsqueeze(-1)
        else:
            if self.normalized:
                u, v = F.normalize(u, dim=-1), F.normalize(v, dim=-1)
            features = torch.cat([u, v, (u - v).abs(), u * v], dim=-1)
            logits = self.classifier(self.dropout(features))
        return SequenceClassifierOutput(
            loss=_task_loss(logits, labels, self.num_labels),
            logits=logits,
            hidden_states=out.hidden_states,
        )


def encoder_attention_mask(model: nn.Module, batch: dict[str, Tensor]) -> Tensor | None:
    """The attention mask aligned with ``model``'s hidden states for ``batch`` (a
    bi-encoder stacks its two sentences along the batch)."""
    if isinstance(model, BertBiEncoder) and "attention_mask_b" in batch:
        return model.stacked_mask(batch["attention_mask"], batch["attention_mask_b"])
    return batch.get("attention_mask")


def head_class(head: str) -> type[nn.Module] | None:
    """The model class of ``head``; None for ``cls`` (Hugging Face's own classifier)."""
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}: expected one of {', '.join(HEADS)}")
    return {"mean": BertMeanPooled, "bi-encoder": BertBiEncoder}.get(head)
