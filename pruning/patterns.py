"""Pruning patterns: which weights may be zeroed together, and how to pick them.

Weights are ``weight[out, in]`` (torch ``nn.Linear`` orientation); a mask is a bool tensor of
the same shape, ``True`` where the weight is kept. Every function here is pure: it reads a
tensor and returns a new one.

Two families:

- **Ranked patterns** (:class:`Unstructured`, :class:`Block`, :class:`Crossbar`, :class:`Row`,
  :class:`Column`, :class:`Head`) tile the matrix into groups (single weights for
  unstructured, ``r x c`` blocks otherwise), score each group by its L2 (Frobenius) norm -
  which for a single weight is ``|w|`` - and prune the lowest-scoring groups.
- **N:M** (:class:`NM`) keeps the ``N`` largest ``|w|`` in every group of ``M`` consecutive
  weights along ``in``; its sparsity is fixed at ``1 - N/M``.

Sparsity rule for ranked patterns: with ``n_groups`` groups, exactly
``k = floor(sparsity * n_groups)`` groups are pruned (the largest ``k`` with
``k / n_groups <= sparsity``, evaluated so that e.g. ``0.29 * 100`` counts as 29), so the
pruned fraction of groups is the largest achievable that does not exceed the target. Groups
are ordered by a stable sort on score, so ties go to the lower flat (row-major) group index:
among equal scores the earlier group is pruned first. Because the pruned set is a prefix of
one fixed order, masks are nested: a higher sparsity prunes a superset.

CLI forms (``str(pattern)`` gives them back, :func:`parse_pattern` reads them):
``unstructured``, ``block:RxC``, ``nm:N:M``, ``row``, ``column``, ``head:H``,
``crossbar:RxC``.
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Real

import numpy as np
import torch
from torch import Tensor

from pruning.groups import any_in_groups, expand_groups, group_norms
from pruning.lowest import keep_above_lowest
from pruning.top_n import keep_top_n
from safeio import limits

EXPECTED_FORMS = "unstructured, block:RxC, nm:N:M, row, column, head:H or crossbar:RxC"
NM_SPARSITY_TOL = 1e-9


class PatternError(limits.BoundedError):  # a ValueError, message bounded
    """A pattern string or pattern parameter is invalid."""


def check_sparsity(sparsity: float) -> float:
    """Return ``sparsity`` as a float if it is a real number in [0, 1), else raise ValueError."""
    if isinstance(sparsity, bool) or not isinstance(sparsity, Real):
        raise ValueError(f"sparsity must be a number in [0, 1), got {sparsity!r}")
    value = float(sparsity)
    if not (0.0 <= value < 1.0):  # also rejects NaN
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity!r}")
    return value


def n_pruned(sparsity: float, n_groups: int) -> int:
    """Number of groups to prune: the largest ``k`` with ``k / n_groups <= sparsity``.

    This is ``floor(sparsity * n_groups)``, corrected for float rounding of the product
    (``0.29 * 100 == 28.999...`` still gives 29 because ``29 / 100 == 0.29``).
    """
    sparsity = check_sparsity(sparsity)
    if n_groups <= 0:
        return 0
    k = math.floor(sparsity * n_groups)
    while k + 1 <= n_groups and (k + 1) / n_groups <= sparsity:
        k += 1
    while k > 0 and k / n_groups > sparsity:
        k -= 1
    return k


def _check_weight(weight: Tensor) -> None:
    if not isinstance(weight, Tensor):
        raise TypeError(f"weight must be a torch.Tensor, got {type(weight).__name__}")
    if weight.dim() != 2:
        raise ValueError(f"weight must be 2-D [out, in], got shape {tuple(weight.shape)}")


def _score_dtype(weight: Tensor) -> torch.dtype:
    return torch.float64 if weight.dtype == torch.float64 else torch.float32


def _scores(weight: Tensor) -> np.ndarray:
    """``weight`` as a CPU float32 (float64 stays float64) array to rank; not a copy when it
    already is one. Masks are computed on the CPU whatever the weight's device."""
    _check_weight(weight)
    return weight.detach().to(device="cpu", dtype=_score_dtype(weight)).numpy()


def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise PatternError(f"{name} must be a positive integer, got {value!r}")
    return value


def _mask_tensor(mask: np.ndarray, like: Tensor) -> Tensor:
    return torch.from_numpy(mask).to(device=like.device)


class Pattern(ABC):
    """A sparsity pattern: computes a keep-mask for one ``[out, in]`` weight."""

    @abstractmethod
    def compute_mask(
        self, weight: Tensor, sparsity: float | None = None, within: Tensor | None = None
    ) -> Tensor:
        """Bool keep-mask with ``weight``'s shape; ``weight`` may be any importance tensor
        (magnitudes are taken). With ``within`` (a previous keep-mask) the result is nested
        in it: groups already pruned are pruned first and stay pruned (no regrowth)."""


def _within(within: Tensor | None, weight: Tensor) -> np.ndarray | None:
    """A previous keep-mask as a CPU bool array, checked against ``weight``'s shape."""
    if within is None:
        return None
    if tuple(within.shape) != tuple(weight.shape):
        raise ValueError(
            f"within-mask has shape {tuple(within.shape)}, weight has {tuple(weight.shape)}"
        )
    return within.detach().cpu().numpy() != 0


class RankedPattern(Pattern):
    """Tiles the matrix into groups of ``group_shape`` and prunes the lowest-L2-norm groups.

    Partial groups at the right/bottom edge (when the group size does not divide the matrix)
    are scored by their actual entries (zero padding adds nothing to the norm) and the mask
    is cropped back to the weight's shape.
    """

    @abstractmethod
    def group_shape(self, shape: tuple[int, int]) -> tuple[int, int]:
        """``(r, c)`` size of one group for a weight of ``shape`` ``(out, in)``."""

    def group_scores(self, weight: Tensor) -> Tensor:
        """L2 norm of every group, as a ``[ceil(out/r), ceil(in/c)]`` grid."""
        scores = _scores(weight)
        grid = group_norms(scores, *self.group_shape(scores.shape))
        return torch.from_numpy(grid).to(device=weight.device)

    def nested_scores(self, weight: Tensor, within: Tensor | None) -> np.ndarray:
        """Group scores with groups that ``within`` already pruned forced to ``-inf``, so
        they are the first to go at any sparsity."""
        scores = _scores(weight)
        r, c = self.group_shape(scores.shape)
        grid = group_norms(scores, r, c)
        previous = _within(within, weight)
        if previous is not None:
            grid[~any_in_groups(previous, r, c)] = -np.inf
        return grid

    def compute_masks(
        self,
        weights: Sequence[Tensor],
        sparsity: float | None,
        withins: Sequence[Tensor | None] | None = None,
    ) -> list[Tensor]:
        """Keep-masks of ``weights`` ranked together: ``floor(sparsity * n_groups)`` of all
        their groups pruned, lowest norm first, ties to the earlier weight, then the lower
        group index. One weight gives :meth:`compute_mask`."""
        if sparsity is None:
            raise ValueError(f"sparsity is required for pattern {self}")
        withins = list(withins) if withins is not None else [None] * len(weights)
        shapes = [tuple(w.shape) for w in weights]
        if all(self.group_shape(s) == (1, 1) for s in shapes) and all(p is None for p in withins):
            # one weight per group: rank |w| itself, taken chunk by chunk
            grids, key = [_scores(w) for w in weights], np.abs
        else:
            pairs = zip(weights, withins, strict=True)
            grids, key = [self.nested_scores(w, p) for w, p in pairs], None
        kept = keep_above_lowest(grids, n_pruned(sparsity, sum(g.size for g in grids)), key)
        masks = []
        for keep, weight, within in zip(kept, weights, withins, strict=True):
            shape = tuple(weight.shape)
            mask = expand_groups(keep, *self.group_shape(shape), shape)
            previous = _within(within, weight)
            if previous is not None:
                mask &= previous
            masks.append(_mask_tensor(mask, weight))
        return masks

    def compute_mask(
        self, weight: Tensor, sparsity: float | None = None, within: Tensor | None = None
    ) -> Tensor:
        """Prune ``floor(sparsity * n_groups)`` lowest-norm groups (see the module docstring)."""
        return self.compute_masks([weight], sparsity, [within])[0]


@dataclass(frozen=True)
class Unstructured(RankedPattern):
    """Any weight may be pruned; score ``|w|``."""

    def group_shape(self, shape: tuple[int, int]) -> tuple[int, int]:
        return (1, 1)

    def __str__(self) -> str:
        return "unstructured"


@dataclass(frozen=True)
class Block(RankedPattern):
    """``rows x cols`` blocks (``rows`` along ``out``, ``cols`` along ``in``) kept or pruned
    whole; score the block's Frobenius norm. Any size: edge blocks may be partial."""

    rows: int
    cols: int

    def __post_init__(self) -> None:
        _positive_int(self.rows, "block rows")
        _positive_int(self.cols, "block cols")

    def group_shape(self, shape: tuple[int, int]) -> tuple[int, int]:
        return (self.rows, self.cols)

    def __str__(self) -> str:
        return f"block:{self.rows}x{self.cols}"


@dataclass(frozen=True)
class Crossbar(Block):
    """A block pattern whose blocks are crossbar tiles (``rows x cols`` of the array)."""

    def __str__(self) -> str:
        return f"crossbar:{self.rows}x{self.cols}"


@dataclass(frozen=True)
class Row(RankedPattern):
    """Whole output rows (output neurons) pruned; score the row's L2 norm."""

    def group_shape(self, shape: tuple[int, int]) -> tuple[int, int]:
        return (1, shape[1])

    def __str__(self) -> str:
        return "row"


@dataclass(frozen=True)
class Column(RankedPattern):
    """Whole input columns pruned; score the column's L2 norm."""

    def group_shape(self, shape: tuple[int, int]) -> tuple[int, int]:
        return (shape[0], 1)

    def __str__(self) -> str:
        return "column"


@dataclass(frozen=True)
class Head(RankedPattern):
    """Whole attention heads of a Q/K/V weight: ``heads`` groups of ``out / heads`` output rows
    each; score the L2 norm of the head's rows. ``heads`` must divide ``out``. Over a model's
    weights, :func:`pruning.masks.compute_masks` scores each head jointly over its Q/K/V rows
    and attention-output columns instead (:mod:`pruning.head_groups`)."""

    heads: int

    def __post_init__(self) -> None:
        _positive_int(self.heads, "heads")

    def group_shape(self, shape: tuple[int, int]) -> tuple[int, int]:
        out, cols = shape
        if out % self.heads:
            raise ValueError(f"{self}: {self.heads} heads do not divide out_features={out}")
        return (out // self.heads, cols)

    def __str__(self) -> str:
        return f"head:{self.heads}"


@dataclass(frozen=True)
class NM(Pattern):
    """Keep the ``n`` largest ``|w|`` in every group of ``m`` consecutive weights along ``in``.

    Sparsity is fixed at ``1 - n/m``; ``m`` must divide ``in_features``. Ties go to the lower
    index (stable sort). ``n == m`` is dense.
    """

    n: int
    m: int

    def __post_init__(self) -> None:
        _positive_int(self.n, "N")
        _positive_int(self.m, "M")
        if self.n > self.m:
            raise PatternError(f"nm:{self.n}:{self.m}: N must be <= M")

    @property
    def sparsity(self) -> float:
        return 1.0 - self.n / self.m

    def check_sparsity(self, sparsity: float | None) -> None:
        """Accept ``None`` or the pattern's own sparsity ``1 - N/M`` (within 1e-9)."""
        if sparsity is None:
            return
        check_sparsity(sparsity)
        if abs(float(sparsity) - self.sparsity) > NM_SPARSITY_TOL:
            raise ValueError(
                f"sparsity {sparsity!r} does not match {self}, whose sparsity is fixed at "
                f"1 - N/M = {self.sparsity!r}; pass sparsity=None"
            )

    def compute_mask(
        self, weight: Tensor, sparsity: float | None = None, within: Tensor | None = None
    ) -> Tensor:
        self.check_sparsity(sparsity)
        scores = _scores(weight)
        cols = scores.shape[1]
        if cols % self.m:
            raise ValueError(f"{self}: M={self.m} does not divide in_features={cols}")
        prior = _within(within, weight)
        if prior is None:
            return _mask_tensor(keep_top_n(scores, self.n, self.m, key=np.abs), weight)
        magnitudes = np.abs(scores)
        magnitudes[~prior] = -np.inf  # already pruned: the first to go
        return _mask_tensor(keep_top_n(magnitudes, self.n, self.m) & prior, weight)

    def __str__(self) -> str:
        return f"nm:{self.n}:{self.m}"


def check_fits(
    pattern: Pattern, shapes: Mapping[str, tuple[int, int]], scope: str = "per-matrix"
) -> None:
    """Refuse, before any work, a pattern that cannot act on the weights to prune.

    ``shapes`` maps weight names to ``(out, in)``; ``scope`` is how the groups are ranked
    (see :func:`pruning.masks.compute_masks`). A block (or crossbar tile) at least as large
    as a whole matrix makes it one group, which no sparsity below 1 prunes on its own: such a
    matrix simply stays dense, and is refused only when nothing at all could be pruned -
    per matrix, when every weight is one group; globally (whole matrices ranked against each
    other), when all the weights together are one group. N:M needs M to divide every ``in``;
    ``head:H`` needs H to divide every ``out`` (an attention output projection's ``in``).
    Raises :class:`PatternError` naming the first weight that does not fit and the expected
    form.
    """
    for name, (out, inn) in shapes.items():
        where = f"pattern {pattern} does not fit weight {name!r} of shape [{out}, {inn}]"
        if isinstance(pattern, NM) and inn % pattern.m:
            raise PatternError(f"{where}: expected M={pattern.m} to divide in_features={inn}")
        # an attention output projection's heads are its columns (pruning.head_groups)
        side, size = ("in_features", inn) if _is_attention_output(name) else ("out_features", out)
        if isinstance(pattern, Head) and size % pattern.heads:
            raise PatternError(f"{where}: expected {pattern.heads} heads to divide {side}={size}")
    if not isinstance(pattern, Block) or not shapes:
        return
    groups = {
        name: -(-out // pattern.rows) * -(-inn // pattern.cols)
        for name, (out, inn) in shapes.items()
    }
    whole = [name for name, n in groups.items() if n == 1 and math.prod(shapes[name]) > 1]
    if len(whole) < len(shapes) or (scope == "global" and len(whole) > 1):
        _check_block_extent(pattern, shapes)
        return
    name = whole[0]
    out, inn = shapes[name]
    every = "the only weight" if len(shapes) == 1 else f"every one of the {len(shapes)} weights"
    raise PatternError(
        f"pattern {pattern} does not fit weight {name!r} of shape [{out}, {inn}]: one "
        f"{pattern.rows}x{pattern.cols} block holds the whole matrix, as it does for {every} "
        f"to prune, so no sparsity below 1 prunes anything; expected a block smaller than the "
        f"matrix in rows or cols (rows < {out} or cols < {inn}) for at least one weight"
    )


def _is_attention_output(name: str) -> bool:
    return name.endswith(("attention.output.dense.weight", "attention.out_lin.weight"))


def _check_block_extent(pattern: Block, shapes: Mapping[str, tuple[int, int]]) -> None:
    """Refuse a block whose padding would be huge: each weight is padded to whole blocks
    (``block:10000000x1`` once padded gigabytes). A block larger than a matrix stays
    allowed (whole-matrix blocks, ranked globally) while its padding is small."""
    for name, (out, inn) in shapes.items():
        padded = -(-out // pattern.rows) * pattern.rows * -(-inn // pattern.cols) * pattern.cols
        if padded > limits.MAX_PADDED_ENTRIES:
            raise PatternError(
                f"pattern {pattern} does not fit weight {name!r} of shape [{out}, {inn}]: "
                f"padded to whole blocks it holds {padded:,} entries, over the limit of "
                f"{limits.describe(limits.MAX_PADDED_ENTRIES)}: expected a block of at most "
                f"about the matrix's size"
            )


_SIZE2 = re.compile(r"(block|crossbar):(\d+)x(\d+)")
_NM = re.compile(r"nm:(\d+):(\d+)")
_HEAD = re.compile(r"head:(\d+)")


def parse_pattern(text: str) -> Pattern:
    """Parse a CLI pattern string (see the module docstring for the forms)."""
    if not isinstance(text, str):
        raise PatternError(f"pattern must be a string, got {type(text).__name__}")
    s = text.strip().lower()
    simple = {"unstructured": Unstructured, "row": Row, "column": Column}
    if s in simple:
        return simple[s]()
    if m := _SIZE2.fullmatch(s):
        cls = Block if m[1] == "block" else Crossbar
        return _build(text, cls, int(m[2]), int(m[3]))
    if m := _NM.fullmatch(s):
        return _build(text, NM, int(m[1]), int(m[2]))
    if m := _HEAD.fullmatch(s):
        return _build(text, Head, int(m[1]))
    raise PatternError(f"invalid pattern {text!r}: expected {EXPECTED_FORMS}")


def _build(text: str, cls: type[Pattern], *args: int) -> Pattern:
    try:
        return cls(*args)
    except PatternError as err:
        raise PatternError(f"invalid pattern {text!r}: {err}") from None
