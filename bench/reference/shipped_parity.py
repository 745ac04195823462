"""Writes fixtures/shipped-parity.safetensors: the PyTorch reference's inference, in float64, of the shipped weights
(weights/moefusion.safetensors, float16 upcast exactly) on two seeded 160×120 image pairs with attention maps, so that
test/shipped-weights.test.ts can check that the engine computes the same fused images and gate decisions with the
file we ship. The fixture names the weights' SHA-256: a new weights file needs a new fixture (run this again).

Inputs are smooth random images (low-resolution noise upsampled, plus fine noise), so the network sees edges at
several scales; the seed is the first whose gate logits are separated by at least MIN_GAP at every top-k boundary,
so that float32 rounding cannot flip an expert choice.

Run: python bench/reference/shipped_parity.py [--weights weights/moefusion.safetensors] [--out fixtures/shipped-parity.safetensors]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from dataclasses import asdict

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from moe_fusion import FusionConfig, MoEFusion, load_safetensors, save_safetensors  # noqa: E402

BATCH, HEIGHT, WIDTH = 2, 120, 160
MIN_GAP = 1e-3
ROOT = os.path.join(os.path.dirname(__file__), '..', '..')


def smooth_images(gen: torch.Generator) -> torch.Tensor:
    coarse = torch.rand(BATCH, 1, HEIGHT // 8, WIDTH // 8, generator=gen, dtype=torch.float64)
    x = F.interpolate(coarse, size=(HEIGHT, WIDTH), mode='bilinear', align_corners=False)
    x = 0.85 * x + 0.15 * torch.rand(BATCH, 1, HEIGHT, WIDTH, generator=gen, dtype=torch.float64)
    return x.float().double()  # float32 values, so both sides start from the same inputs


def boundary_gap(logits: torch.Tensor, k: int) -> float:
    s = logits.sort(dim=1, descending=True).values
    return float((s[:, k - 1] - s[:, k]).min())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--weights', default=os.path.join(ROOT, 'weights', 'moefusion.safetensors'))
    ap.add_argument('--out', default=os.path.join(ROOT, 'fixtures', 'shipped-parity.safetensors'))
    a = ap.parse_args()
    with open(a.weights, 'rb') as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    tensors, _ = load_safetensors(a.weights)
    cfg = FusionConfig()
    model = MoEFusion(cfg)
    missing, unexpected = model.load_state_dict({k.removeprefix('fusion_head.'): v.float() for k, v in tensors.items()}, strict=False)
    if unexpected or any(not k.endswith('w_noise') for k in missing):
        raise SystemExit(f'{a.weights}: not MoE-Fusion weights (missing {missing}, unexpected {unexpected})')
    model.double().eval()
    for seed in range(20):
        gen = torch.Generator().manual_seed(seed)
        ir, vis, att = smooth_images(gen), smooth_images(gen), smooth_images(gen)
        with torch.no_grad():
            fused, _ = model(ir, vis, att, train=False)
        gates = model.gates()
        if min(boundary_gap(g.last['clean_logits'], g.k) for g in gates.values()) < MIN_GAP:
            continue
        t = {'input.ir': ir, 'input.vis': vis, 'input.att': att, 'expected.infer.fused': fused}
        # Not the inference load (the count of non-zero gates): trained gates can be so sure that the second expert's
        # gate lies among float32's subnormal numbers, which some GPUs flush to zero. Its gate value is compared.
        for name, g in gates.items():
            for key in ('gates', 'top_indices', 'importance'):
                t[f'expected.infer.{name}.{key}'] = g.last[key]
        t = {k: v.detach().to(torch.float32).contiguous() for k, v in t.items()}
        fixture = dict(batch=BATCH, height=HEIGHT, width=WIDTH, seed=seed, computed_in='float64', min_logit_gap=MIN_GAP,
                       weights=os.path.basename(a.weights), weights_sha256=sha)
        meta = {'format': 'pt', 'moefusion.config': json.dumps(asdict(cfg)), 'moefusion.fixture': json.dumps(fixture)}
        save_safetensors(a.out, t, meta)
        print(f'wrote {os.path.normpath(a.out)} (seed {seed}, weights sha256 {sha[:16]}…)')
        return
    raise SystemExit('no seed below 20 separates the gate logits by MIN_GAP')


if __name__ == '__main__':
    main()
