"""PyTorch side of `npm run bench`: times the reference network with the engine's weights on the same machine.

Prints one JSON line mapping each case name (as bench/run.ts names it) to median/min/max milliseconds, the device
and, on CUDA, the peak memory. Float32 throughout: TF32 is turned off so both sides compute in float32.
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from moe_fusion import load_model, losses, timed  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--weights', required=True)
    ap.add_argument('--sizes', default='640x480')
    ap.add_argument('--train', default='4x128x128')
    ap.add_argument('--runs', type=int, default=3)
    ap.add_argument('--warmup', type=int, default=1)
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    a = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_num_threads(os.cpu_count() or 1)
    model = load_model(a.weights).to(a.device)
    g = torch.Generator().manual_seed(0)
    out = {}

    def peak():
        return torch.cuda.max_memory_allocated() if a.device.startswith('cuda') else None

    for size in a.sizes.split(','):
        w, h = (int(v) for v in size.split('x'))
        ir, vis = (torch.rand(1, 1, h, w, generator=g).to(a.device) for _ in range(2))
        att = torch.full_like(ir, 0.5)
        if a.device.startswith('cuda'):
            torch.cuda.reset_peak_memory_stats()

        def infer():
            with torch.no_grad():
                model(ir, vis, att, train=False)

        out[f'inference 1×{w}×{h}'] = {**timed(infer, a.runs, a.warmup, a.device), 'peakBytes': peak(), 'device': a.device}

    opt = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=1e-4)
    for spec in filter(None, a.train.split(',')):
        b, h, w = (int(v) for v in spec.split('x'))
        ir, vis = (torch.rand(b, 1, h, w, generator=g).to(a.device) for _ in range(2))
        att = torch.full_like(ir, 0.5)
        mask = torch.zeros_like(ir)
        if a.device.startswith('cuda'):
            torch.cuda.reset_peak_memory_stats()

        def step():
            opt.zero_grad(set_to_none=True)
            fused, aux = model(ir, vis, att, train=True)
            losses(fused, vis, ir, mask, aux, model.cfg)['total'].backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 35)
            opt.step()

        out[f'train step {b}×{w}×{h}'] = {**timed(step, a.runs, a.warmup, a.device), 'peakBytes': peak(), 'device': a.device}
    print(json.dumps(out))


if __name__ == '__main__':
    main()
