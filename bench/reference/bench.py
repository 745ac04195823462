"""PyTorch side of the end-to-end benchmark (`moefusion bench`, src/bench/e2e.ts): the reference network with the
engine's weights on the same machine, one case run at a time so that the engine and PyTorch can take turns.

Protocol: started with the weights and the cases, it prints one JSON line {"ready": device}; then for every line
"CASE NAME" on stdin it runs that case once and prints {"ms": milliseconds, "peakBytes": CUDA peak or null}.
`--inputs FILE` takes the inference pairs from a safetensors file (tensors `ir.WxH`, `vis.WxH`, shape (1,1,H,W)),
so that other peers can fuse the same pair; the line "save CASE NAME\tPATH" then writes that case's fused image to
PATH (tensor `fused`) and prints {"saved": PATH}, for checking the outputs against each other.
Every case also exists as "CASE NAME channels_last": the same network and inputs in PyTorch's channels_last memory
format (a copy of the model with its own optimizer), the fastest layout of its CPU convolutions; the reference
code's NCHW path stays the ratio of record. Float32 throughout: TF32 is turned off so that both sides compute in
float32. Needs only torch (and numpy).
"""
import copy
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
from moe_fusion import load_model, load_safetensors, losses, save_safetensors  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--weights', required=True)
    ap.add_argument('--sizes', default='640x480', help='inference sizes WIDTHxHEIGHT, comma-separated')
    ap.add_argument('--train', default='4x128x128', help='training steps BATCHxWIDTHxHEIGHT, comma-separated')
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    ap.add_argument('--inputs', help='safetensors file with the inference pairs (ir.WxH, vis.WxH)')
    a = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_num_threads(os.cpu_count() or 1)
    cuda = a.device.startswith('cuda')
    nchw = load_model(a.weights).to(a.device)
    layouts = {'': (nchw, torch.contiguous_format), ' channels_last': (copy.deepcopy(nchw).to(memory_format=torch.channels_last), torch.channels_last)}
    g = torch.Generator().manual_seed(0)
    cases = {}
    given = load_safetensors(a.inputs)[0] if a.inputs else {}

    for size in filter(None, a.sizes.split(',')):
        w, h = (int(v) for v in size.split('x'))
        inputs = [given[f'{name}.{size}'].float().to(a.device) if given else torch.rand(1, 1, h, w, generator=g).to(a.device)
                  for name in ('ir', 'vis')]
        for suffix, (model, fmt) in layouts.items():
            ir, vis = (t.contiguous(memory_format=fmt) for t in inputs)

            def infer(model=model, ir=ir, vis=vis):
                with torch.no_grad():
                    return model(ir, vis, torch.full_like(ir, 0.5), train=False)[0]

            cases[f'inference 1×{w}×{h}{suffix}'] = infer

    optimizers = {suffix: torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=1e-4) for suffix, (model, _) in layouts.items()}
    for spec in filter(None, a.train.split(',')):
        b, w, h = (int(v) for v in spec.split('x'))
        inputs = [torch.rand(b, 1, h, w, generator=g).to(a.device) for _ in range(2)]
        for suffix, (model, fmt) in layouts.items():
            ir, vis = (t.contiguous(memory_format=fmt) for t in inputs)

            def step(model=model, opt=optimizers[suffix], ir=ir, vis=vis):
                opt.zero_grad(set_to_none=True)
                fused, aux = model(ir, vis, torch.full_like(ir, 0.5), train=True)
                losses(fused, vis, ir, torch.zeros_like(ir), aux, model.cfg)['total'].backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 35)
                opt.step()

            cases[f'train step {b}×{w}×{h}{suffix}'] = step

    print(json.dumps({'ready': torch.cuda.get_device_name() if cuda else 'cpu'}), flush=True)
    for line in sys.stdin:
        name = line.strip()
        if not name:
            continue
        if name.startswith('save '):
            name, path = name[5:].split('\t')
            if not name.startswith('inference') or name not in cases:
                print(json.dumps({'error': f'cannot save case {name!r}'}), flush=True)
                continue
            save_safetensors(path, {'fused': cases[name]().float()})
            print(json.dumps({'saved': path}), flush=True)
            continue
        if name not in cases:
            print(json.dumps({'error': f'unknown case {name!r}'}), flush=True)
            continue
        if cuda:
            torch.cuda.reset_peak_memory_stats()
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        cases[name]()
        if cuda:
            torch.cuda.synchronize()
        ms = (time.perf_counter() - t0) * 1000
        print(json.dumps({'ms': ms, 'peakBytes': torch.cuda.max_memory_allocated() if cuda else None}), flush=True)


if __name__ == '__main__':
    main()
