"""What stays on chip between ops: activations from their producer to their last reader, and
the weights across inferences.

A tensor is kept on chip for its whole life (from the op that writes it to the last op that
reads it) or not at all: kept tensors never touch DRAM, the others are written by their
producer and read from DRAM by every reader. Tensors are considered in the order they are
produced and kept when, at every op of their life, they fit beside the tensors already kept
(``capacity_bytes``: the global buffer when the chip has one, else the smaller of a core's
ifmap and ofmap buffers, which hand a tensor from producer to consumer). A tensor nothing
reads (the logits) leaves the chip.

Weights stay resident across inferences when the spec asks for it and all compressed weights
fit the weight buffers; steady-state inferences then load none of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from workloads.ops import GemmOp, Op, Workload

__all__ = ["OpResidency", "activation_capacity_bytes", "plan_residency", "tensor_bytes"]


@dataclass(frozen=True)
class OpResidency:
    """Which of an op's tensors are on chip when it runs."""

    on_chip_reads: frozenset[str] = frozenset()
    output_on_chip: bool = False
    weights_on_chip: bool = False


NONE = OpResidency()


def tensor_bytes(op: Op, word_bytes: int) -> int:
    """Bytes of the tensor ``op`` writes."""
    if isinstance(op, GemmOp):
        return op.m * op.n * op.count * word_bytes
    return op.elements * word_bytes


def activation_capacity_bytes(hw) -> int:
    if hw.global_buffer is not None:
        return hw.global_buffer.size_bytes
    return min(hw.sram.ifmap.size_bytes, hw.sram.ofmap.size_bytes)


def plan_residency(
    workload: Workload, capacity_bytes: int, word_bytes: int, weights_on_chip: bool = False
) -> list[OpResidency]:
    """Per op of ``workload``, what it finds on chip (module docstring)."""
    ops = list(workload.ops)
    producer: dict[str, int] = {}
    last_read: dict[str, int] = {}
    for index, op in enumerate(ops):
        for tensor in op.reads:
            if tensor in producer:
                last_read[tensor] = index
        if op.writes is not None:
            producer[op.writes] = index
    load = [0] * len(ops)  # bytes of kept tensors live at each op
    kept: set[str] = set()
    for tensor, start in sorted(producer.items(), key=lambda item: item[1]):
        end = last_read.get(tensor)
        if end is None or end <= start:
            continue
        size = tensor_bytes(ops[start], word_bytes)
        if all(load[i] + size <= capacity_bytes for i in range(start, end + 1)):
            kept.add(tensor)
            for i in range(start, end + 1):
                load[i] += size
    plans = []
    for op in ops:
        reads = frozenset(t for t in op.reads if t in kept)
        output = op.writes is not None and op.writes in kept
        weights = weights_on_chip and isinstance(op, GemmOp) and op.weight_name is not None
        plans.append(OpResidency(reads, output, weights) if reads or output or weights else NONE)
    return plans
