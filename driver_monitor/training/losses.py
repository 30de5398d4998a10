"""The training losses of the emotion + AU network.

Loss = ``emo_weight`` x soft-label cross-entropy (class re-weighted) + ``au_weight`` x masked BCE
against the AU pseudo-labels (``tools/label_aus.py``); with a teacher, + ``distill_weight`` x KL on
the emotion distribution + ``distill_au_weight`` x binary KL on the AU intensities; for the
region-attention network, + ``visibility_weight`` x BCE of the region visibility against the
regions the occluder left uncovered.
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

from .options import TrainOptions


def soft_ce(logits: torch.Tensor, target: torch.Tensor, sample_w: torch.Tensor) -> torch.Tensor:
    logp = F.log_softmax(logits, dim=1)
    return (-(target * logp).sum(1) * sample_w).mean()


def masked_bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    mask = ~torch.isnan(target)
    if not mask.any():
        return logits.sum() * 0.0
    t = torch.nan_to_num(target, nan=0.0)
    loss = F.binary_cross_entropy_with_logits(logits, t, reduction="none")
    return (loss * mask).sum() / mask.sum()


def distill_loss(emo_logits: torch.Tensor, au_logits: torch.Tensor, t_probs: torch.Tensor,
                 t_au: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Distillation towards a teacher's outputs (``--teacher``): (KL(teacher || student) over the
    emotion distribution, mean binary KL between the teacher's AU intensities and the student's).
    Both are 0 when the student matches the teacher and have the gradients of the cross-entropy /
    BCE against the teacher's soft targets (the teacher's entropy is a constant)."""
    logp = F.log_softmax(emo_logits, dim=1)
    kl_emo = (t_probs * (torch.log(t_probs.clamp_min(1e-8)) - logp)).sum(1).mean()
    t = t_au.clamp(1e-6, 1.0 - 1e-6)
    entropy = -(t * torch.log(t) + (1.0 - t) * torch.log1p(-t)).mean()
    kl_au = F.binary_cross_entropy_with_logits(au_logits, t_au) - entropy
    return kl_emo, kl_au


def visibility_loss(vis_logits: torch.Tensor, coverage: torch.Tensor) -> torch.Tensor:
    """BCE of the region-visibility logits against ``1 - covered fraction`` of each region."""
    return F.binary_cross_entropy_with_logits(vis_logits, 1.0 - coverage.clamp(0.0, 1.0))


@torch.no_grad()
def teacher_outputs(teacher: torch.nn.Module, x: torch.Tensor,
                    amp_dtype: torch.dtype | None) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.autocast(x.device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
        p, a = teacher(x.contiguous(memory_format=torch.channels_last))
    return p.float(), a.float()


def batch_loss(model: torch.nn.Module, teacher: torch.nn.Module | None, x: torch.Tensor, clean: torch.Tensor,
               cover: torch.Tensor | None, tgt: torch.Tensor, sw: torch.Tensor, aus: torch.Tensor,
               opts: TrainOptions,
               amp_dtype: torch.dtype | None) -> tuple[torch.Tensor, list[float], torch.Tensor]:
    """-> (total loss, [emotion, AU, emotion distillation, AU distillation, visibility] terms,
    emotion logits). Terms that do not apply are 0."""
    with torch.autocast(x.device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
        emo_logits, au_logits, _, vis_logits = model.forward_logits_all(x.contiguous(memory_format=torch.channels_last))
    emo_logits, au_logits = emo_logits.float(), au_logits.float()
    l_emo = soft_ce(emo_logits, tgt, sw)
    l_au = masked_bce(au_logits, aus)
    loss = opts.emo_weight * l_emo + opts.au_weight * l_au
    zero = emo_logits.new_zeros(())
    kd_emo = kd_au = l_vis = zero
    if teacher is not None:
        t_probs, t_au = teacher_outputs(teacher, clean, amp_dtype)
        kd_emo, kd_au = distill_loss(emo_logits, au_logits, t_probs, t_au)
        loss = loss + opts.distill_weight * kd_emo + opts.distill_au_weight * kd_au
    if vis_logits is not None and opts.visibility_weight > 0:
        l_vis = visibility_loss(vis_logits.float(), cover if cover is not None else torch.zeros_like(vis_logits))
        loss = loss + opts.visibility_weight * l_vis
    return loss, [t.item() for t in (l_emo, l_au, kd_emo, kd_au, l_vis)], emo_logits
