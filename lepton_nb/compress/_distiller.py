"""The student+teacher wrapper trained by ``distill`` (module level so it pickles to workers)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class Distiller(nn.Module):
    """Training forward returns ``(student, teacher)`` logits; eval forward is the student."""

    def __init__(self, student: nn.Module, teacher: nn.Module) -> None:
        super().__init__()
        self.student = student
        self.teacher = teacher
        for p in self.teacher.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> Distiller:
        super().train(mode)
        self.teacher.eval()  # the teacher's dropout/BN must not change while teaching
        return self

    def forward(self, x: torch.Tensor) -> Any:
        s = self.student(x)
        if not self.training:
            return s
        with torch.no_grad():
            return s, self.teacher(x)


__all__ = ["Distiller"]
