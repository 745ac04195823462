"""Writes the parity fixtures (see bench/reference/README.md for every key).

- fixtures/moe-fusion-small.safetensors (shipped; read by `moefusion selftest` and test/model-parity.test.ts):
  a small MoE-Fusion (B=2, 24×32 images, gate grids 6×8 and 3×4) with non-zero,
  well-separated gates, its inputs, fixed gate noise, and the expected inference and training-mode results,
  including the gradient of the total loss w.r.t. every parameter. Computed in float64 from float32 parameters and
  inputs, then cast to float32: the stored outputs are the correctly rounded exact answers.
- test/fixtures/safetensors-dtypes.safetensors: the same values stored as F32, F64, F16 and BF16 by the Python
  safetensors package, for the TypeScript reader/writer tests.

Run: python bench/reference/make_fixtures.py [--out DIR]   (DIR: both files there instead)
"""
from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict

import numpy as np
import torch
from safetensors.torch import save_file

from moe_fusion import COMBINE_EPS, GATES, FusionConfig, MoEFusion, SparseDispatcher, losses, save_safetensors

BATCH, HEIGHT, WIDTH = 2, 24, 32
SMALL = FusionConfig(local_grid=(HEIGHT // 4, WIDTH // 4), global_grid=(HEIGHT // 8, WIDTH // 8))
BOX = (5, 15, 8, 22)  # image 0: rows [5, 15), columns [8, 22); image 1 has no box
CLEAN_LOGITS = (2.0, 0.8, -0.4, -1.6)  # each image's clean logits are a permutation of these
MIN_GAP = 0.3  # sorted logits (clean and noisy) of one image differ by at least this


def float32_exact(t: torch.Tensor) -> torch.Tensor:
    """A float32 value, so the float64 computation starts from exactly what the float32 engine will load."""
    return t.float().double()


def min_gap(logits: torch.Tensor) -> float:
    s = logits.sort(dim=1, descending=True).values
    return float((s[:, :-1] - s[:, 1:]).min())


def top_sets(logits: torch.Tensor, k: int) -> torch.Tensor:
    return logits.topk(k, dim=1).indices.sort(dim=1).values


def differ(logits: torch.Tensor, k: int) -> bool:
    top = top_sets(logits, k)
    return not torch.equal(top[0], top[1])


def covers_all(logits: torch.Tensor, k: int) -> bool:
    """The images' top-k sets together use every expert (so every expert gets a gradient in training mode)."""
    return len(set(logits.topk(k, dim=1).indices.flatten().tolist())) == logits.shape[1]


def design_routing(cfg: FusionConfig, eps: torch.Tensor, gen: torch.Generator):
    """Clean logits and raw noise logits (B, E) for one gate such that, with its noise sample eps, the clean and the
    noisy logits are well separated, the two images choose different experts in both modes, and in training mode
    every expert is chosen by one of them, and the noise changes some image's choice."""
    while True:
        clean = torch.stack([torch.tensor(CLEAN_LOGITS, dtype=torch.float64)[torch.randperm(cfg.num_experts, generator=gen)]
                             for _ in range(BATCH)])
        raw_noise = torch.rand(clean.shape, generator=gen, dtype=torch.float64) * 2 - 1
        noisy = clean + eps * (torch.nn.functional.softplus(raw_noise) + cfg.noise_epsilon)
        noise_matters = not torch.equal(top_sets(clean, cfg.k), top_sets(noisy, cfg.k))
        if differ(clean, cfg.k) and covers_all(noisy, cfg.k) and noise_matters and min_gap(noisy) >= MIN_GAP:
            return clean, raw_noise


def matrix_for(x: torch.Tensor, target: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """A random-looking float32 W (n, E) with x @ W = target: the least-norm solution plus a random part orthogonal
    to the rows of x, of about the same size."""
    pinv = torch.linalg.pinv(x)  # (n, B)
    least = pinv @ target
    r = torch.randn(least.shape, generator=gen, dtype=torch.float64) * float(least.norm() / least.numel() ** 0.5)
    return float32_exact(least + r - pinv @ (x @ r))


def set_gates(model: MoEFusion, inputs, noise: dict[str, torch.Tensor], gen: torch.Generator) -> None:
    """Gates in order, each from its designed logits. The MoGE gate input depends on the MoLE routing, which differs
    between inference and training, so W_gate gives the designed clean logits for both modes' gate inputs."""
    for name, g in model.gates().items():
        gate_inputs = []
        for train in (False, True):
            with torch.no_grad():
                model(*inputs, train=train, noise=noise)
            gate_inputs.append(g.last['gate_input'])
        clean, raw_noise = design_routing(model.cfg, noise[name], gen)
        g.w_gate.data = matrix_for(torch.cat(gate_inputs), torch.cat([clean, clean]), gen)
        g.w_noise.data = matrix_for(gate_inputs[1], raw_noise, gen)


def routing_ok(model: MoEFusion, train: bool) -> bool:
    """Every gate got its designed routing (checked on the logits actually computed)."""
    return all(min_gap(g.last['logits']) >= MIN_GAP - 1e-6 and differ(g.last['logits'], g.k)
               and (covers_all(g.last['logits'], g.k) or not train) for g in model.gates().values())


def routing(model: MoEFusion) -> dict[str, dict[str, torch.Tensor]]:
    return {name: {k: v.clone() for k, v in g.last.items()} for name, g in model.gates().items()}


def check_combine() -> None:
    """The dispatcher's exp/index_add/log path equals log Σ_e g_e exp(E_e) computed densely."""
    gen = torch.Generator().manual_seed(1)
    gates = torch.tensor([[0.3, 0.0, 0.7, 0.0], [0.0, 0.6, 0.0, 0.4]], dtype=torch.float64)
    outs = torch.randn(4, 2, 3, 5, 5, generator=gen, dtype=torch.float64)  # (expert, batch, C, H, W)
    d = SparseDispatcher(gates)
    parts = [outs[e][d.batch_index[sum(d.part_sizes[:e]):sum(d.part_sizes[:e + 1])]] for e in range(4)]
    dense = torch.log((gates.T[:, :, None, None, None] * outs.exp()).sum(0))
    assert torch.allclose(d.combine(parts), dense, rtol=1e-12, atol=1e-12)


def build_small(seed: int):
    torch.manual_seed(seed)
    model = MoEFusion(SMALL)  # default-initialised convs, float32
    model.double()
    gen = torch.Generator().manual_seed(seed)
    shape = (BATCH, 1, HEIGHT, WIDTH)
    ir, vis, att = (float32_exact(torch.rand(shape, generator=gen)) for _ in range(3))
    mask = torch.zeros(shape, dtype=torch.float64)
    r0, r1, c0, c1 = BOX
    mask[0, 0, r0:r1, c0:c1] = 1
    noise = {name: float32_exact(torch.randn(BATCH, SMALL.num_experts, generator=gen)) for name in GATES}
    set_gates(model, (ir, vis, att), noise, gen)
    return model, dict(ir=ir, vis=vis, att=att, mask=mask), noise


def small_fixture(max_tries: int = 5):
    for seed in range(max_tries):
        model, inp, noise = build_small(seed)
        with torch.no_grad():
            fused_inf, aux_inf = model(inp['ir'], inp['vis'], inp['att'], train=False)
        if not routing_ok(model, train=False):
            continue
        infer = routing(model)
        model.zero_grad(set_to_none=True)
        fused_tr, aux_tr = model(inp['ir'], inp['vis'], inp['att'], train=True, noise=noise)
        if not routing_ok(model, train=True):
            continue
        train = routing(model)
        loss = losses(fused_tr, inp['vis'], inp['ir'], inp['mask'], aux_tr, SMALL)
        loss['total'].backward()
        return seed, model, inp, noise, (fused_inf, aux_inf, infer), (fused_tr, aux_tr, train, loss)
    raise RuntimeError(f'no seed below {max_tries} gives the designed routing')


def write_small(out_dir: str) -> str:
    check_combine()
    seed, model, inp, noise, (fused_inf, aux_inf, infer), (fused_tr, aux_tr, train, loss) = small_fixture()
    t: dict[str, torch.Tensor] = {}
    for k, v in inp.items():
        t[f'input.{k}'] = v
    for k, v in noise.items():
        t[f'input.noise.{k}'] = v
    for k, v in model.state_dict().items():
        t[k] = v
    t['expected.infer.fused'] = fused_inf
    for mode, aux, rout in (('infer', aux_inf, infer), ('train', aux_tr, train)):
        for name in GATES:
            r = rout[name]
            for key in ('clean_logits', 'logits', 'gates', 'top_indices', 'load', 'importance'):
                t[f'expected.{mode}.{name}.{key}'] = r[key]
            t[f'expected.{mode}.{name}.aux_loss'] = aux[name].reshape(1)
    t['expected.train.fused'] = fused_tr
    for k, v in loss.items():
        t[f'expected.train.loss.{k}'] = v.reshape(1)
    for k, p in model.named_parameters():
        t[f'grad.{k}'] = p.grad
    t = {k: v.detach().to(torch.float32).contiguous() for k, v in t.items()}

    fixture = dict(batch=BATCH, height=HEIGHT, width=WIDTH, seed=seed, gates=list(GATES), box_image0=list(BOX),
                   box_format='[row0, row1, col0, col1), image 1 has none', computed_in='float64',
                   combine_eps=COMBINE_EPS, min_logit_gap=MIN_GAP)
    meta = {'format': 'pt', 'moefusion.config': json.dumps(asdict(SMALL)), 'moefusion.fixture': json.dumps(fixture)}
    path = os.path.join(out_dir, 'moe-fusion-small.safetensors')
    save_safetensors(path, t, meta)
    return path


def write_dtypes(out_dir: str) -> str:
    """Values that exercise rounding: normal, subnormal in F16, overflowing F16, signed zeros, ties."""
    special = [0.0, -0.0, 1.0, -2.5, 65504.0, 65520.0, 1e5, -1e5, 6e-8, 3e-8, 1e-9, 2 ** -24, 2 ** -25,
               1 + 2 ** -11, 1 + 3 * 2 ** -11, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 3.4e38, float('inf'), float('-inf')]
    rng = np.random.default_rng(7)
    values = np.concatenate([np.array(special, np.float32),
                             (rng.standard_normal(200) * 10.0 ** rng.integers(-6, 5, 200)).astype(np.float32)])
    x = torch.from_numpy(values.reshape(11, 20))
    t = {'f32': x, 'f64': x.double(), 'f16': x.half(), 'bf16': x.bfloat16(),
         'f16_as_f32': x.half().float(), 'bf16_as_f32': x.bfloat16().float(),  # PyTorch's rounding, as float32
         'scalar': torch.tensor(3.25), 'empty': torch.zeros(0, 3)}
    path = os.path.join(out_dir, 'safetensors-dtypes.safetensors')
    # written by the safetensors package itself, as an implementation independent of ours
    save_file(t, path, metadata={'source': 'make_fixtures.py: same values in four dtypes'})
    os.chmod(path, 0o644)  # the package creates the file private to its owner
    return path


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--out', help='write both fixtures into this folder (default: fixtures/ and test/fixtures/ of the repository)')
    out = p.parse_args().out
    root = os.path.join(here, '..', '..')
    shipped = out or os.path.join(root, 'fixtures')
    tests = out or os.path.join(root, 'test', 'fixtures')
    for d in (shipped, tests):
        os.makedirs(d, exist_ok=True)
    for path in (write_small(shipped), write_dtypes(tests)):
        print(f'{os.path.relpath(path)}: {os.path.getsize(path) / 1e6:.2f} MB')


if __name__ == '__main__':
    main()
