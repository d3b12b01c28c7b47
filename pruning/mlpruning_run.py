"""MLPruning's two steps inside a prune job (Yao et al. 2021, arXiv 2105.14636; the
``yaozhewei/MLPruning`` README's ``masked_run_glue.py`` then ``masked_blockwise_run_glue.py``).

1. **Heads and rows** (:class:`~pruning.mlpruning.MLPruningMasks` levels ``heads``,
   ``rows``) towards ``head_row_target`` of the encoder's linear weights, distilled
   (:class:`~pruning.mlpruning_kd.MLPruningDistillation`) from the dense fine-tuned teacher;
   then the pruned heads and FFN neurons are removed (:func:`pruning.shrink.shrink_model`),
   so the model and the saved artifact have the new shapes.
2. **Blocks** (level ``blocks``, the job's ``block:RxC`` pattern) on the shrunk model towards
   ``block_target`` of *its* encoder weights (their blockwise ``regularization`` counts the
   step-1 model's scores), distilled from a frozen copy of the step-1 model. The block masks
   are at the shrunk shapes; the weights left overall are about ``head_row_target x
   block_target`` of the dense encoder's.

The student starts from the fine-tuned teacher (``--teacher DIR`` or ``--dense-epochs``
first), which a CPU-sized run needs; the paper's README starts from the pre-trained model.
"""

from __future__ import annotations

import copy
from typing import Any

from pruning.masking import MaskSet
from pruning.mlpruning import MLPruningMasks, weights_of
from pruning.mlpruning_kd import MLPruningDistillation

__all__ = ["BLOCK_PHASE", "HEAD_ROW_PHASE", "run_mlpruning"]

HEAD_ROW_PHASE = "mlpruning-heads-rows"
BLOCK_PHASE = "mlpruning-blocks"


def _teacher(run: Any) -> tuple[Any, str]:
    """The dense teacher: ``job.teacher`` loaded, else the model fine-tuned in phase 1."""
    from pruning.heads import head_of
    from pruning.models import LoadedModel
    from pruning.pipeline import _load
    from pruning.train import score

    job = run.job
    if job.teacher is None:
        source = f"{run.loaded.source} fine-tuned for {job.dense_epochs} epochs"
        return copy.deepcopy(run.model), source
    teacher = _load(job, job.teacher, run._num_labels(), None).model
    if run.data is not None:
        scores = score(teacher, run.data.dev, run.data.task)
        run.metrics["teacher"] = scores.metrics
        run.predictions["teacher"] = scores.predictions
        run.standard_errors["teacher"] = scores.standard_errors
    run.model = copy.deepcopy(teacher)
    run.loaded = LoadedModel(
        run.model, str(job.teacher), run.loaded.synthetic_weights, run.loaded.weights_dir,
        head_of(run.model),
    )  # fmt: skip
    return teacher, str(job.teacher)


def run_mlpruning(run: Any) -> tuple[MaskSet, dict[str, Any]]:
    """Both steps on ``run`` (a :class:`pruning.pipeline._Run`); ``run.model`` ends shrunk
    with block masks applied. Returns the block masks and the manifest's method record."""
    from pruning.shrink import StructuredKeep, shrink_model
    from pruning.targets import prunable_weights

    job = run.job
    settings = job.mlpruning_settings
    teacher, teacher_source = _teacher(run)
    dense_weights = sum(w.numel() for w in weights_of(run.model).values())
    common = {
        "mask_lr": settings["mask_lr"],
        "final_lambda": settings["final_lambda"],
        "theta_init": settings["theta_init"],
        "lr_schedule": job.lr_schedule,
        "warmup_ratio": job.warmup_ratio,
    }

    step1 = MLPruningMasks(run.model, ("heads", "rows"), settings["head_row_target"], **common)
    distil1 = MLPruningDistillation(teacher)
    run.train(job.epochs, HEAD_ROW_PHASE, [step1], distil1)
    keep = StructuredKeep(step1.kept_indices("heads"), step1.kept_indices("rows"))
    shrink_model(run.model, keep)
    shrunk_weights = sum(w.numel() for w in weights_of(run.model).values())
    run.evaluate("shrunk")

    step2_teacher = copy.deepcopy(run.model)
    step2 = MLPruningMasks(
        run.model, ("blocks",), settings["block_target"], block=settings["block"], **common
    )
    run.train(settings["block_epochs"], BLOCK_PHASE, [step2], MLPruningDistillation(step2_teacher))
    assert step2.masks is not None  # the job has a task and block_epochs > 0
    run.weights = prunable_weights(run.model, job.include)
    kept = sum(int(m.sum()) for m in step2.masks.as_dict().values())
    record = {
        "kind": "mlpruning",
        "source": "Yao et al. 2021, arXiv 2105.14636 (yaozhewei/MLPruning)",
        "teacher": teacher_source,
        "distillation": distil1.describe(),
        "step1": {
            **step1.describe(),
            "kept_heads": [list(h) for h in keep.heads],
            "kept_neurons": [list(n) for n in keep.neurons],
        },
        "step2": step2.describe(),
        "encoder_weights": {
            "dense": dense_weights,
            "after_step1": shrunk_weights,
            "after_step2": kept,
            "remaining_fraction": round(kept / dense_weights, 6),
        },
    }
    return step2.masks, record
