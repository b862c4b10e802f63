"""Accelerator memory a training run needs: model state plus activations, per accelerator.

- state: 16 bytes per parameter with mixed precision and Adam (2 bf16 weights + 2 bf16 grads +
  4 fp32 master weights + 4 + 4 fp32 Adam moments; Rajbhandari et al. 2020, ZeRO, arXiv 1910.02054,
  "16 Psi"), sharded evenly over all accelerators (ZeRO-3 / FSDP);
- activations, per accelerator: with full activation recomputation only each layer's input is kept,
  2sbhL bytes, plus one layer's activations while it is recomputed, sbh(34 + 5as/h) bytes (Korthikanti
  et al. 2022, arXiv 2205.05198), at sequence s = 4096 and micro-batch b = 1;
- shape from the parameter count alone: N ~= 12 L h^2 with L = h / 128 layers and a = h / 128 heads
  (GPT-3 and Llama 2 are close: 7B has h = 4096, L = 32);
- 10 % of each accelerator's memory is left to the framework, allocator and communication buffers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

BYTES_PER_PARAM = 16
USABLE_FRACTION = 0.9
SEQ_LEN = 4096
MICRO_BATCH = 1
HEAD_DIM = 128


@dataclass(frozen=True)
class MemoryModel:
    """Training memory for a dense transformer of ``params`` parameters."""

    params: float
    seq_len: int = SEQ_LEN
    micro_batch: int = MICRO_BATCH

    @property
    def state_gb(self) -> float:
        """Weights, gradients and optimizer state, all accelerators together (GB)."""
        return BYTES_PER_PARAM * self.params / 1e9

    @property
    def hidden(self) -> float:
        """Hidden size h from N = 12 L h^2 with L = h / 128."""
        return float((self.params * HEAD_DIM / 12.0) ** (1.0 / 3.0))

    @property
    def activations_gb(self) -> float:
        """Activation memory per accelerator with full recomputation (GB)."""
        h = self.hidden
        layers = heads = h / HEAD_DIM
        s, b = self.seq_len, self.micro_batch
        kept = 2.0 * s * b * h * layers
        working = s * b * h * (34.0 + 5.0 * heads * s / h)
        return (kept + working) / 1e9

    def per_accelerator_gb(self, accelerators: int) -> float:
        """GB each of ``accelerators`` holds: its shard of the state plus its activations."""
        return self.state_gb / max(1, accelerators) + self.activations_gb

    def fits(self, accelerators: int, memory_gb: float) -> bool:
        """True when ``accelerators`` of ``memory_gb`` each can hold the run."""
        return self.per_accelerator_gb(accelerators) <= USABLE_FRACTION * memory_gb

    def min_accelerators(self, memory_gb: float) -> int | None:
        """Fewest accelerators of ``memory_gb`` that hold the run; None when activations alone overflow."""
        room = USABLE_FRACTION * memory_gb - self.activations_gb
        if room <= 0:
            return None
        return max(1, math.ceil(self.state_gb / room))

    def describe(self) -> str:
        """The assumption line shown under cost tables."""
        return (
            f"memory: {self.state_gb:,.0f} GB of training state (16 bytes/parameter, mixed precision + "
            f"Adam, ZeRO) sharded over all accelerators, plus {self.activations_gb:.1f} GB of activations "
            f"per accelerator (full recomputation, seq {self.seq_len}, micro-batch {self.micro_batch}; "
            "Korthikanti et al. 2022); 90 % of each accelerator's memory usable"
        )
