"""A pruning job: what to prune, how, on which data - validated before any work starts.

The CLI (``cosim prune``) and scripts build a :class:`PruneJob`; bad values raise
:class:`PruneJobError` naming the field and the expected form.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from pruning.admm import DEFAULT_RHO, DEFAULT_RHO_GROWTH, DEFAULT_RHO_MAX
from pruning.group_lasso import DEFAULT_EPS, DEFAULT_LAMBDA
from pruning.learnable_topk import THETA_INIT
from pruning.mlpruning import DEFAULT_FINAL_LAMBDA, DEFAULT_MASK_LR, MAX_THETA_INIT
from pruning.models import REAL_MODEL
from pruning.movement import DEFAULT_LAMBDA as MOVEMENT_LAMBDA
from pruning.movement import (
    DEFAULT_SCORE_LR,
    DEFAULT_THRESHOLD,
    DEFAULT_WARMUP,
    check_movement_pattern,
)
from pruning.patterns import (
    EXPECTED_FORMS,
    NM,
    Block,
    Pattern,
    PatternError,
    check_sparsity,
    parse_pattern,
)
from pruning.posttraining import (
    DEFAULT_BLOCKSIZE,
    DEFAULT_CALIBRATION_EXAMPLES,
    DEFAULT_DAMPING,
    POST_TRAINING_METHODS,
    check_post_training_pattern,
)
from pruning.quantize import MAX_CELL_BITS, MAX_WEIGHT_BITS
from safeio.errors import format_validation_error
from safeio.limits import BoundedError

__all__ = [
    "CALIBRATED_METHODS",
    "MAX_CALIBRATION_EXAMPLES",
    "METHODS",
    "OPTIMIZER_PRESETS",
    "STRUCTURED_METHODS",
    "TRAINED_METHODS",
    "PruneJob",
    "PruneJobError",
    "prune_job",
]

METHODS: tuple[str, ...] = (
    "magnitude", "gradual", "group-lasso", "admm", "distill", "movement", "mlpruning",
    *POST_TRAINING_METHODS, "fisher-mask",
)  # fmt: skip
# Methods that train while pruning, so they need a task's training data.
TRAINED_METHODS = frozenset(
    {"gradual", "group-lasso", "admm", "distill", "movement", "mlpruning"}
)
# Post-training methods: no training, but calibration inputs from the task's train split.
CALIBRATED_METHODS = frozenset({*POST_TRAINING_METHODS, "fisher-mask"})
# Methods that prune whole heads and FFN neurons to a FLOPs budget (flops_fraction), and
# so take no weight pattern or sparsity.
STRUCTURED_METHODS = frozenset({"fisher-mask"})
# More calibration examples than this is a mistake, not a setting: SparseGPT's statistics
# saturate long before (the paper's ablation: 128 to 256 segments), and each one costs a
# forward pass per layer group on the CPU.
MAX_CALIBRATION_EXAMPLES = 4096
# Methods whose training state checkpoints capture completely (so --resume is exact); a new
# method joins once its hooks' state_dict holds everything it carries between steps.
RESUMABLE_METHODS = frozenset(
    {"magnitude", "gradual", "group-lasso", "admm", "distill", "movement"}
)
# Movement pruning's settings: None unless given (so giving one to another method is refused
# and the records of other methods stay as they were); defaults in pruning.movement.
MOVEMENT_FIELDS = (
    "movement_variant", "score_lr", "movement_lambda", "movement_threshold", "movement_warmup"
)  # fmt: skip

QUANTIZATION_FIELDS = ("weight_bits", "cell_bits", "on_off_ratio")
# MLPruning's settings (pruning.mlpruning_run): None unless given, as movement's. The paper's
# targets: 0.5 of the weights after heads and rows, 0.3 after blocks (MLPruning README).
MLPRUNING_FIELDS = (
    "head_row_target", "block_target", "mlp_lambda", "block_epochs", "theta_init"
)  # fmt: skip
DEFAULT_HEAD_ROW_TARGET = 0.5
DEFAULT_BLOCK_TARGET = 0.3


# Optimiser settings of SparseBERT's task_distill_prune_simultaneously.py (BertAdam, lr 3e-5,
# batch 32, max_seq_length 128, weight decay 0.01 except biases and LayerNorm, schedule
# 'none' = constant, so no warm-up); pruning-algorithms.md section 1. BertAdam also skips
# Adam's bias correction, which torch's AdamW applies: the one difference left.
OPTIMIZER_PRESETS: dict[str, dict[str, Any]] = {
    "sparsebert": {
        "lr": 3e-5,
        "batch_size": 32,
        "max_seq_len": 128,
        "lr_schedule": "constant",
        "warmup_ratio": 0.0,
        "weight_decay": 0.01,
        "decay_bias_and_norm": False,
    },
}


class PruneJobError(BoundedError):  # a ValueError, message bounded
    """A prune job with a missing, malformed or inconsistent field."""


class PruneJob(BaseModel):
    """Every setting of one pruning run; defaults are the recommendations of
    ``../shared/reference/pruning-algorithms.md`` scaled for a CPU."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = REAL_MODEL
    head: Literal["cls", "mean", "bi-encoder"] | None = None  # None: pruning.models' default
    pattern: str | None = None  # required except for the structured methods
    sparsity: float | None = None
    method: Literal[
        "magnitude", "gradual", "group-lasso", "admm", "distill", "movement", "mlpruning",
        "wanda", "sparsegpt", "fisher-mask"
    ] = "magnitude"  # fmt: skip
    # fisher-mask: the share of the encoder's FLOPs (heads and FFN neurons) to keep.
    flops_fraction: float | None = Field(default=None, gt=0, le=1, allow_inf_nan=False)
    scope: Literal["per-matrix", "global"] = "per-matrix"
    include: tuple[Literal["encoder", "pooler", "classifier"], ...] = ("encoder",)

    task: str | None = None
    data_dir: Path | None = None
    max_train_examples: int | None = Field(default=None, gt=0)
    max_eval_examples: int | None = Field(default=None, gt=0)
    max_seq_len: int = Field(default=128, gt=2, le=512)

    epochs: float = Field(default=3.0, gt=0, allow_inf_nan=False)
    retrain_epochs: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    dense_epochs: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    batch_size: int = Field(default=32, gt=0)
    lr: float = Field(default=2e-5, gt=0, allow_inf_nan=False)
    optimizer_preset: Literal["sparsebert"] | None = None
    warmup_ratio: float = Field(default=0.1, ge=0, lt=1, allow_inf_nan=False)
    lr_schedule: Literal["linear", "constant"] = "linear"
    weight_decay: float = Field(default=0.01, ge=0, allow_inf_nan=False)
    decay_bias_and_norm: bool = False
    group_by_length: bool = True
    seed: int = 0

    ramp_fraction: float = Field(default=0.7, gt=0, le=1)
    update_every: int | None = Field(default=None, gt=0)
    schedule_shape: Literal["cubic", "geometric"] = "cubic"
    regrow: bool = False
    cycles: int = Field(default=1, gt=0)
    cycle_targets: tuple[float, ...] | None = None

    teacher: Path | None = None
    student_init: Literal["pre-trained", "fine-tuned"] = "pre-trained"
    kd_mode: Literal["full", "logits"] = "full"
    kd_temperature: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    kd_attention_weight: float = Field(default=1.0, ge=0, allow_inf_nan=False)
    kd_hidden_weight: float = Field(default=1.0, ge=0, allow_inf_nan=False)
    kd_logit_weight: float = Field(default=1.0, ge=0, allow_inf_nan=False)
    kd_alpha: float = Field(default=0.9, ge=0, le=1, allow_inf_nan=False)
    kd_cache: Literal["off", "logits", "hidden"] = "logits"
    teacher_cache: Path | None = None
    mixkd_weight: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    mixkd_alpha: float = Field(default=0.4, gt=0, allow_inf_nan=False)

    checkpoint_every: int | None = Field(default=None, gt=0)
    checkpoint_dir: Path | None = None
    resume: bool = False

    lasso_lambda: float = Field(default=DEFAULT_LAMBDA, gt=0, allow_inf_nan=False)
    lasso_eps: float = Field(default=DEFAULT_EPS, gt=0, allow_inf_nan=False)
    reweight_every: int | None = Field(default=None, gt=0)

    admm_rho: float = Field(default=DEFAULT_RHO, gt=0, allow_inf_nan=False)
    admm_rho_growth: float = Field(default=DEFAULT_RHO_GROWTH, ge=1, allow_inf_nan=False)
    admm_rho_max: float = Field(default=DEFAULT_RHO_MAX, gt=0, allow_inf_nan=False)
    admm_update_every: int | None = Field(default=None, gt=0)
    admm_granularity: Literal["tile", "tile-row", "tile-column"] = "tile"
    # Quantization-aware crossbar ADMM (pruning.quantize): weight_bits turns it on; None
    # otherwise, so the records of other jobs stay as they were.
    weight_bits: int | None = Field(default=None, ge=2, le=MAX_WEIGHT_BITS)
    cell_bits: int | None = Field(default=None, ge=1, le=MAX_CELL_BITS)
    on_off_ratio: float | None = Field(default=None, gt=1, le=1e6, allow_inf_nan=False)

    movement_variant: Literal["hard", "soft"] | None = None
    score_lr: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    movement_lambda: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    movement_threshold: float | None = Field(default=None, gt=0, lt=1, allow_inf_nan=False)
    movement_warmup: float | None = Field(default=None, ge=0, lt=1, allow_inf_nan=False)

    head_row_target: float | None = Field(default=None, gt=0, le=1, allow_inf_nan=False)
    block_target: float | None = Field(default=None, gt=0, le=1, allow_inf_nan=False)
    mlp_lambda: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    block_epochs: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    theta_init: float | None = Field(
        default=None, ge=-MAX_THETA_INIT, le=MAX_THETA_INIT, allow_inf_nan=False
    )

    calibration_examples: int = Field(
        default=DEFAULT_CALIBRATION_EXAMPLES, gt=0, le=MAX_CALIBRATION_EXAMPLES
    )
    calibration_text: Path | None = None  # None: the task's train split
    damping: float = Field(default=DEFAULT_DAMPING, gt=0, le=1, allow_inf_nan=False)
    blocksize: int = Field(default=DEFAULT_BLOCKSIZE, gt=0, le=4096)

    # Remove the heads and FFN neurons the final masks leave without effect
    # (pruning.shrink_masks), so the artifact is smaller, not only sparser.
    shrink: bool = False

    progress: bool = True

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, data: Any) -> Any:
        """``optimizer_preset`` fills the settings it names that were not given explicitly."""
        if isinstance(data, dict) and data.get("optimizer_preset") in OPTIMIZER_PRESETS:
            return {**OPTIMIZER_PRESETS[data["optimizer_preset"]], **data}
        return data

    @field_validator("pattern")
    @classmethod
    def _pattern_parses(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return str(parse_pattern(value))
        except PatternError as error:
            raise ValueError(str(error)) from None

    @field_validator("sparsity")
    @classmethod
    def _sparsity_in_range(cls, value: float | None) -> float | None:
        return None if value is None else check_sparsity(value)

    @model_validator(mode="after")
    def _consistent(self) -> PruneJob:
        self._check_structured()
        pattern = self.parsed_pattern
        self._check_movement()
        self._check_mlpruning()
        if isinstance(pattern, NM):
            pattern.check_sparsity(self.sparsity)
        elif self.sparsity is None and not (
            self.soft_movement or self.structured or self.method == "mlpruning"
        ):
            raise ValueError(f"sparsity is required for pattern {pattern}: a number in [0, 1)")
        if self.method in TRAINED_METHODS and self.task is None:
            raise ValueError(
                f"method {self.method!r} trains while it prunes: give a GLUE task "
                "(--task MRPC|RTE|CoLA|SST-2|STS-B|QNLI)"
            )
        if self.method in CALIBRATED_METHODS:
            if self.task is None:
                raise ValueError(
                    f"method {self.method!r} calibrates on examples of a task's train split: "
                    "give a GLUE task (--task MRPC|RTE|CoLA|SST-2|STS-B|QNLI)"
                )
            if self.method not in STRUCTURED_METHODS:
                check_post_training_pattern(self.method, pattern)
            elif self.calibration_text is not None:
                raise ValueError(
                    f"method {self.method!r} takes its Fisher information from the task loss, "
                    "so it calibrates on labelled train examples: drop calibration_text"
                )
            if self.scope != "per-matrix":
                raise ValueError(f"method {self.method!r} prunes per matrix: use scope per-matrix")
        else:
            if self.calibration_examples != DEFAULT_CALIBRATION_EXAMPLES:
                raise ValueError(
                    "calibration_examples applies only to methods wanda, sparsegpt and "
                    "fisher-mask"
                )
            if self.calibration_text is not None:
                raise ValueError("calibration_text applies only to methods wanda and sparsegpt")
        if self.method != "sparsegpt":
            for name, default in (("damping", DEFAULT_DAMPING), ("blocksize", DEFAULT_BLOCKSIZE)):
                if getattr(self, name) != default:
                    raise ValueError(f"{name} applies only to method 'sparsegpt'")
        if self.cycles > 1 and self.method not in {"gradual", "distill"}:
            raise ValueError("cycles applies only to methods 'gradual' and 'distill'")
        if self.cycles > 1 and self.regrow:
            raise ValueError("cyclic pruning keeps masks nested: drop regrow or use cycles 1")
        if self.cycle_targets is not None:
            targets = list(self.cycle_targets)
            if len(targets) != self.cycles or targets != sorted(targets):
                raise ValueError(
                    f"cycle_targets must be {self.cycles} rising sparsities, got {targets}"
                )
            if abs(targets[-1] - self.target_sparsity) > 1e-9:
                raise ValueError(
                    f"the last cycle target ({targets[-1]}) must be the sparsity "
                    f"({self.target_sparsity})"
                )
        if self.method in {"distill", "mlpruning"}:
            if self.teacher is None and self.dense_epochs <= 0:
                raise ValueError(
                    f"method {self.method!r} needs a teacher: --teacher DIR (a fine-tuned "
                    "checkpoint) or --dense-epochs E to fine-tune one first"
                )
            if self.teacher is not None and self.dense_epochs > 0:
                raise ValueError(
                    f"give either teacher or dense_epochs for {self.method!r}, not both"
                )
        elif self.teacher is not None:
            raise ValueError("teacher applies only to methods 'distill' and 'mlpruning'")
        if self.method != "distill":
            for name, default in (
                ("student_init", "pre-trained"), ("mixkd_weight", 0.0), ("teacher_cache", None)
            ):  # fmt: skip
                if getattr(self, name) != default:
                    raise ValueError(f"{name} applies only to method 'distill'")
        if self.kd_cache == "hidden" and self.kd_mode != "full":
            raise ValueError(
                "kd_cache 'hidden' caches hidden states for kd_mode 'full'; logits mode uses "
                "none: use kd_cache logits"
            )
        if self.head in {"mean", "bi-encoder"} and "pooler" in self.include:
            raise ValueError(f"head {self.head!r} has no pooler layer: drop include pooler")
        if self.schedule_shape != "cubic" and self.method not in {"gradual", "distill"}:
            raise ValueError("schedule_shape applies only to methods 'gradual' and 'distill'")
        if (self.checkpoint_every or self.resume) and self.method not in RESUMABLE_METHODS:
            raise ValueError(
                f"checkpoints and resume support methods {sorted(RESUMABLE_METHODS)}, "
                f"not {self.method!r}"
            )
        self._check_quantization()
        if self.shrink and self.weight_bits is not None:
            raise ValueError(
                "shrink removes whole heads and neurons after pruning; quantized ADMM "
                "(weight_bits) records per-matrix level scales: drop one of them"
            )
        if self.admm_granularity != "tile" and self.method != "admm":
            raise ValueError("admm_granularity applies only to method 'admm'")
        if self.scope == "global" and self.method in {"group-lasso", "admm"}:
            raise ValueError(f"method {self.method!r} prunes per matrix: use scope per-matrix")
        return self

    def _check_structured(self) -> None:
        """fisher-mask takes flops_fraction and no pattern or sparsity; every other method a
        pattern and no flops_fraction."""
        if self.method in STRUCTURED_METHODS:
            if self.flops_fraction is None:
                raise ValueError(
                    f"method {self.method!r} keeps a share of the FLOPs: give flops_fraction, "
                    "a number in (0, 1] (--flops-fraction 0.5)"
                )
            for name in ("pattern", "sparsity"):
                if getattr(self, name) is not None:
                    raise ValueError(
                        f"method {self.method!r} prunes whole heads and FFN neurons to "
                        f"flops_fraction: drop {name}"
                    )
            if self.shrink:
                raise ValueError(
                    f"method {self.method!r} already removes the heads and neurons it prunes: "
                    "drop shrink"
                )
            return
        if self.flops_fraction is not None:
            raise ValueError("flops_fraction applies only to method 'fisher-mask'")
        if self.pattern is None:
            raise ValueError(f"pattern is required: {EXPECTED_FORMS}")

    def _check_quantization(self) -> None:
        """Quantization goes with method admm, and cell_bits / on_off_ratio with weight_bits."""
        if self.weight_bits is None:
            for name in ("cell_bits", "on_off_ratio"):
                if getattr(self, name) is not None:
                    raise ValueError(
                        f"{name} applies only to quantized ADMM: give weight_bits too "
                        "(--method admm --weight-bits B)"
                    )
            return
        if self.method != "admm":
            raise ValueError(
                f"weight_bits (quantization onto crossbar levels) applies only to method "
                f"'admm', not {self.method!r}"
            )
        cell_bits = self.quantization_settings["cell_bits"]
        if cell_bits > self.weight_bits:
            raise ValueError(
                f"cell_bits ({cell_bits}) must not exceed weight_bits ({self.weight_bits})"
            )

    @property
    def quantization_settings(self) -> dict[str, Any]:
        """weight_bits, cell_bits and on_off_ratio with the defaults filled in (empty: none)."""
        from pruning.quantize import DEFAULT_CELL_BITS, DEFAULT_ON_OFF_RATIO

        if self.weight_bits is None:
            return {}
        return {
            "weight_bits": self.weight_bits,
            "cell_bits": DEFAULT_CELL_BITS if self.cell_bits is None else self.cell_bits,
            "on_off_ratio": DEFAULT_ON_OFF_RATIO
            if self.on_off_ratio is None
            else self.on_off_ratio,
        }

    def _check_mlpruning(self) -> None:
        """MLPruning settings go with method mlpruning; its pattern is the step-2 block."""
        if self.method != "mlpruning":
            for name in MLPRUNING_FIELDS:
                if getattr(self, name) is not None:
                    raise ValueError(f"{name} applies only to method 'mlpruning'")
            return
        if type(self.parsed_pattern) is not Block:
            raise ValueError(
                f"method 'mlpruning' takes its second step's block shape from pattern: use "
                f"block:RxC (the paper's README: block:16x16 or block:32x32), not {self.pattern}"
            )
        if self.sparsity is not None:
            raise ValueError(
                "method 'mlpruning' prunes to remaining fractions, not a sparsity: drop sparsity "
                "and give head_row_target and block_target (each in (0, 1])"
            )
        if tuple(self.include) != ("encoder",):
            raise ValueError("method 'mlpruning' prunes the encoder only: use include encoder")
        for name, default in (("update_every", None), ("regrow", False), ("cycle_targets", None)):
            if getattr(self, name) != default:
                raise ValueError(
                    f"{name} does not apply to method 'mlpruning' (its masks follow the scores "
                    "at every step)"
                )
        if self.retrain_epochs:
            raise ValueError(
                "retrain_epochs does not apply to method 'mlpruning': its block step already "
                "trains the masked model (set block_epochs)"
            )

    @property
    def mlpruning_settings(self) -> dict[str, Any]:
        """MLPruning's settings with the defaults filled in."""
        shape = self.parsed_pattern
        return {
            "head_row_target": DEFAULT_HEAD_ROW_TARGET
            if self.head_row_target is None
            else self.head_row_target,
            "block_target": DEFAULT_BLOCK_TARGET
            if self.block_target is None
            else self.block_target,
            "final_lambda": DEFAULT_FINAL_LAMBDA if self.mlp_lambda is None else self.mlp_lambda,
            "mask_lr": DEFAULT_MASK_LR if self.score_lr is None else self.score_lr,
            "block_epochs": self.epochs if self.block_epochs is None else self.block_epochs,
            "theta_init": THETA_INIT if self.theta_init is None else self.theta_init,
            "block": (shape.rows, shape.cols) if isinstance(shape, Block) else None,
        }

    def _check_movement(self) -> None:
        """Movement settings go with method movement; its own restrictions."""
        if self.method != "movement":
            for name in MOVEMENT_FIELDS:
                if name == "score_lr" and self.method == "mlpruning":
                    continue  # MLPruning's mask learning rate
                if getattr(self, name) is not None:
                    raise ValueError(f"{name} applies only to method 'movement'")
            return
        try:
            check_movement_pattern(self.parsed_pattern)
        except PatternError as error:
            raise ValueError(str(error)) from None
        if self.scope != "per-matrix":
            raise ValueError("method 'movement' ranks scores per matrix: use scope per-matrix")
        for name, default in (("update_every", None), ("regrow", False), ("cycle_targets", None)):
            if getattr(self, name) != default:
                raise ValueError(
                    f"{name} does not apply to method 'movement' (its masks follow the scores "
                    "at every step)"
                )
        if self.soft_movement:
            if self.sparsity is not None:
                raise ValueError(
                    "soft movement pruning's sparsity follows from movement_lambda and "
                    "movement_threshold: drop sparsity (movement_variant hard takes one)"
                )
        elif self.movement_lambda is not None or self.movement_threshold is not None:
            raise ValueError(
                "movement_lambda and movement_threshold apply only to movement_variant soft"
            )
        if self.movement_settings["warmup"] >= self.ramp_fraction:
            raise ValueError(
                f"movement_warmup ({self.movement_settings['warmup']}) must end before the "
                f"ramp does (ramp_fraction {self.ramp_fraction})"
            )

    @property
    def structured(self) -> bool:
        """Whether the method prunes whole heads and neurons to a FLOPs budget."""
        return self.method in STRUCTURED_METHODS

    @property
    def soft_movement(self) -> bool:
        return self.method == "movement" and self.movement_variant == "soft"

    @property
    def movement_settings(self) -> dict[str, Any]:
        """Movement pruning's settings with the defaults filled in."""
        given = {
            "variant": self.movement_variant,
            "score_lr": self.score_lr,
            "lam": self.movement_lambda,
            "threshold": self.movement_threshold,
            "warmup": self.movement_warmup,
        }
        defaults = {
            "variant": "hard",
            "score_lr": DEFAULT_SCORE_LR,
            "lam": MOVEMENT_LAMBDA,
            "threshold": DEFAULT_THRESHOLD,
            "warmup": DEFAULT_WARMUP,
        }
        return {k: defaults[k] if v is None else v for k, v in given.items()}

    @property
    def parsed_pattern(self) -> Pattern:
        """The weight pattern; a structured method's shrunk weights are dense (unstructured,
        nothing pruned within them)."""
        return parse_pattern(self.pattern if self.pattern is not None else "unstructured")

    @property
    def target_sparsity(self) -> float:
        if self.method in STRUCTURED_METHODS:
            return 0.0
        pattern = self.parsed_pattern
        return pattern.sparsity if isinstance(pattern, NM) else float(self.sparsity)

    def checkpoint_root(self, out_dir: str | Path) -> Path:
        """Where checkpoints go: ``checkpoint_dir``, else ``<out_dir>.ckpt``."""
        if self.checkpoint_dir is not None:
            return Path(self.checkpoint_dir)
        out = Path(out_dir)
        return out.with_name(out.name + ".ckpt")

    @property
    def checkpointing(self) -> bool:
        return self.checkpoint_every is not None or self.resume

    @property
    def retraining_epochs(self) -> float:
        """Fixed-mask epochs after the prune: ``retrain_epochs`` when given, else ``epochs``
        for magnitude, group-lasso and admm and 0 for gradual, distill and movement (the run
        already ends with fixed-mask steps after the ramp) and for wanda and sparsegpt
        (post-training: no retraining unless asked); always 0 without a task."""
        if self.task is None:
            return 0.0
        if self.method in CALIBRATED_METHODS:
            return 0.0 if self.retrain_epochs is None else self.retrain_epochs
        if self.method == "magnitude":
            return self.epochs if self.retrain_epochs is None else self.retrain_epochs
        if self.method in {"gradual", "distill", "movement", "mlpruning"}:
            return 0.0 if self.retrain_epochs is None else self.retrain_epochs
        return self.epochs if self.retrain_epochs is None else self.retrain_epochs

    def record(self) -> dict[str, Any]:
        """The job as JSON-ready settings for the manifest (where the teacher cache file lives
        is left out: it changes nothing the job computes)."""
        settings = self.model_dump(
            mode="json",
            exclude={"progress", "resume", "checkpoint_dir", "checkpoint_every", "teacher_cache"},
        )
        settings["retraining_epochs"] = self.retraining_epochs
        if not self.shrink:
            settings.pop("shrink")  # records of jobs without it stay as they were
        for name in (*MOVEMENT_FIELDS, *QUANTIZATION_FIELDS, *MLPRUNING_FIELDS):
            settings.pop(name)
        if self.flops_fraction is None:
            settings.pop("flops_fraction")
        if self.weight_bits is not None:
            settings["quantization"] = self.quantization_settings
        if self.method == "movement":
            settings["movement"] = self.movement_settings
        if self.method == "mlpruning":
            mlpruning = self.mlpruning_settings
            mlpruning["block"] = list(mlpruning["block"])
            settings["mlpruning"] = mlpruning
        if self.calibration_text is None:
            settings.pop("calibration_text")  # the records of train-split jobs stay as they were
        return settings


def prune_job(source: str = "<arguments>", **fields: Any) -> PruneJob:
    """Validate ``fields`` into a :class:`PruneJob`, or raise :class:`PruneJobError`."""
    try:
        return PruneJob(**fields)
    except ValidationError as error:
        raise PruneJobError(
            format_validation_error(error, "prune job", source, "see cosim prune --help", PruneJob)
        ) from None
