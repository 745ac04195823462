"""PyTorch reference of the MoE-Fusion fusion network (no detector), laid out like the authors' code.

See docs/moe-fusion.md sections 2-5 and 9. `MoEFusion().state_dict()` keys are the reference's names without the
`fusion_head.` prefix. Two things are configurable (defaults equal the reference): the gate grids the gate inputs
are resized to, and the noise samples ε of the training-mode gates (so a training step is reproducible).

CLI (quick fuse):  python bench/reference/moe_fusion.py --weights W.safetensors --ir a.png --vi b.png --out f.png
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.distributions.normal import Normal

# The reference replaces exact zeros of the combined mixture by float64's machine epsilon before the log.
COMBINE_EPS = float(np.finfo(float).eps)
GATES = ('moe_fg', 'moe_bg', 'DecoderMoE')


@dataclass
class FusionConfig:
    local_grid: tuple[int, int] = (120, 160)  # (h, w) the 32-channel MoLE gate input is resized to
    global_grid: tuple[int, int] = (60, 80)  # (h, w) the 160-channel MoGE gate input is resized to
    num_experts: int = 4
    k: int = 2
    local_coef: float = 0.01  # aux-loss coefficient of each MoLE gate
    global_coef: float = 0.02  # aux-loss coefficient of the MoGE gate
    grad_weight: float = 10.0
    pixel_weight: float = 1.0
    noise_epsilon: float = 1e-2  # added to softplus(x·W_noise)


def conv3(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, 1, 1)


class SparseDispatcher:
    """Routes each image to the experts whose gate is non-zero and mixes their outputs as log(Σ g·exp(E))."""

    def __init__(self, gates: torch.Tensor):
        self.gates = gates
        nonzero = torch.nonzero(gates)  # (n, 2): [batch, expert], row-major
        sorted_experts, order = nonzero.sort(0)
        self.expert_index = sorted_experts[:, 1:2]
        self.batch_index = nonzero[order[:, 1], 0]  # batch index of each (expert-sorted) pair
        self.part_sizes = (gates > 0).sum(0).tolist()
        self.nonzero_gates = torch.gather(gates[self.batch_index], 1, self.expert_index)

    def dispatch(self, inp: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return torch.split(inp[self.batch_index], self.part_sizes, dim=0)

    def combine(self, expert_out: list[torch.Tensor]) -> torch.Tensor:
        stitched = torch.cat(expert_out, 0).exp() * self.nonzero_gates.view(-1, 1, 1, 1)
        zeros = stitched.new_zeros((self.gates.shape[0],) + tuple(stitched.shape[1:]))
        combined = zeros.index_add(0, self.batch_index, stitched)
        combined = torch.where(combined == 0, torch.full_like(combined, COMBINE_EPS), combined)
        return combined.log()


class NoisyTopKGate(nn.Module):
    """Shazeer et al.'s noisy top-k gate as davidmrau's code (used by MoE-Fusion) writes it: one decision per image."""

    def __init__(self, gate_inputs: int, num_experts: int, k: int, noise_epsilon: float):
        super().__init__()
        self.num_experts, self.k, self.noise_epsilon = num_experts, k, noise_epsilon
        self.w_gate = nn.Parameter(torch.zeros(gate_inputs, num_experts))
        self.w_noise = nn.Parameter(torch.zeros(gate_inputs, num_experts))
        self.register_buffer('mean', torch.tensor([0.0]))
        self.register_buffer('std', torch.tensor([1.0]))
        self.last: dict[str, torch.Tensor] = {}  # routing of the last call, for fixtures and inspection

    @staticmethod
    def cv_squared(x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] == 1:
            return x.new_zeros(())
        return x.var() / (x.mean() ** 2 + 1e-10)

    def prob_in_top_k(self, clean, noisy, stddev, top_values):
        threshold_if_in = top_values[:, self.k:self.k + 1]  # (k+1)-th largest noisy logit
        threshold_if_out = top_values[:, self.k - 1:self.k]  # k-th largest
        is_in = noisy > threshold_if_in
        normal = Normal(self.mean.to(clean.dtype), self.std.to(clean.dtype))
        prob_if_in = normal.cdf((clean - threshold_if_in) / stddev)
        prob_if_out = normal.cdf((clean - threshold_if_out) / stddev)
        return torch.where(is_in, prob_if_in, prob_if_out)

    def route(self, x: torch.Tensor, train: bool, eps: torch.Tensor | None, coef: float):
        """x: (B, gate_inputs). Returns gates (B, E) and the aux loss; eps: the N(0,1) sample (B, E) or None to draw."""
        clean = x @ self.w_gate
        if train:
            stddev = F.softplus(x @ self.w_noise) + self.noise_epsilon
            if eps is None:
                eps = torch.randn_like(clean)
            noisy = clean + eps.to(clean.dtype) * stddev
            logits = noisy
        else:
            logits = clean
        top_logits, top_indices = logits.topk(min(self.k + 1, self.num_experts), dim=1)
        top_k_gates = torch.softmax(top_logits[:, :self.k], dim=1)
        gates = torch.zeros_like(logits).scatter(1, top_indices[:, :self.k], top_k_gates)
        if train and self.k < self.num_experts:
            load = self.prob_in_top_k(clean, noisy, stddev, top_logits).sum(0)
        else:
            load = (gates > 0).sum(0).to(gates.dtype)
        importance = gates.sum(0)
        loss = coef * (self.cv_squared(importance) + self.cv_squared(load))
        self.last = dict(gate_input=x.detach(), clean_logits=clean.detach(), logits=logits.detach(),
                         gates=gates.detach(), top_indices=top_indices[:, :self.k].detach(), load=load.detach(),
                         importance=importance.detach())
        return gates, loss


class ConvBlock(nn.Module):
    """One conv per stream: conv_r (visible) and conv_i (infrared)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv_r = conv3(cin, cout)
        self.conv_i = conv3(cin, cout)

    def forward(self, x_r, x_i):
        return self.conv_r(x_r), self.conv_i(x_i)


class LocalExpert(nn.Module):
    def __init__(self, channels: int = 16, hidden: int = 8):
        super().__init__()
        self.conv1 = conv3(channels, hidden)
        self.conv2 = conv3(hidden, channels)

    def forward(self, x):
        return self.conv2(F.relu(self.conv1(x)))


class GlobalExpert(nn.Module):
    def __init__(self, cin: int = 160, hidden: int = 16, cout: int = 1):
        super().__init__()
        self.decoder_Conv2 = conv3(cin, 64)
        self.decoder_Conv3 = conv3(64, 32)
        self.decoder_Conv4 = conv3(32, hidden)
        self.decoder_Conv5 = conv3(hidden, cout)

    def forward(self, x):
        x = F.relu(self.decoder_Conv2(x))
        x = F.relu(self.decoder_Conv3(x))
        x = F.relu(self.decoder_Conv4(x))
        return self.decoder_Conv5(x)


class MoELocal(NoisyTopKGate):
    """MoLE: experts 0..E/2-1 see the visible features, E/2..E-1 the infrared ones."""

    def __init__(self, cfg: FusionConfig, channels: int = 16):
        gh, gw = cfg.local_grid
        super().__init__(2 * channels * gh * gw, cfg.num_experts, cfg.k, cfg.noise_epsilon)
        self.experts = nn.ModuleList([LocalExpert(channels) for _ in range(cfg.num_experts)])

    def forward(self, x_gate, x_vis, x_ir, train, eps, coef):
        gates, loss = self.route(x_gate, train, eps, coef)
        d = SparseDispatcher(gates)
        half = len(self.experts) // 2
        vis_in, ir_in = d.dispatch(x_vis), d.dispatch(x_ir)
        outs = [self.experts[e](vis_in[e] if e < half else ir_in[e]) for e in range(len(self.experts))]
        return d.combine(outs), loss


class DecMoE(NoisyTopKGate):
    """MoGE: every expert is a decoder fed the 160-channel features."""

    def __init__(self, cfg: FusionConfig, channels: int = 160):
        gh, gw = cfg.global_grid
        super().__init__(channels * gh * gw, cfg.num_experts, cfg.k, cfg.noise_epsilon)
        self.experts = nn.ModuleList([GlobalExpert(channels) for _ in range(cfg.num_experts)])

    def forward(self, x_gate, x, train, eps, coef):
        gates, loss = self.route(x_gate, train, eps, coef)
        d = SparseDispatcher(gates)
        inputs = d.dispatch(x)
        return d.combine([self.experts[e](inputs[e]) for e in range(len(self.experts))]), loss


def gate_input(x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize (align_corners=True) to the gate grid, flattened in (C, H, W) order."""
    return F.interpolate(x, size=grid, mode='bilinear', align_corners=True).flatten(1)


class Encoder(nn.Module):
    def __init__(self, cfg: FusionConfig):
        super().__init__()
        self.cfg = cfg
        self.Conv1 = ConvBlock(1, 16)
        self.moe_fg = MoELocal(cfg)
        self.moe_bg = MoELocal(cfg)
        self.DenseConv1 = ConvBlock(16, 16)
        self.DenseConv2 = ConvBlock(32, 16)
        self.DenseConv3 = ConvBlock(48, 16)

    def forward(self, vis, ir, att, train, noise):
        x0_r, x0_i = (F.relu(t) for t in self.Conv1(vis, ir))
        x1_r, x1_i = self.DenseConv1(x0_r, x0_i)
        d1_r, d1_i = torch.cat([x0_r, x1_r], 1), torch.cat([x0_i, x1_i], 1)
        x2_r, x2_i = self.DenseConv2(d1_r, d1_i)
        d2_r, d2_i = torch.cat([d1_r, x2_r], 1), torch.cat([d1_i, x2_i], 1)
        enc_r, enc_i = self.DenseConv3(d2_r, d2_i)

        grid, coef = self.cfg.local_grid, self.cfg.local_coef
        v_fg, i_fg, v_bg, i_bg = enc_r * att, enc_i * att, enc_r * (1 - att), enc_i * (1 - att)
        y_fg, loss_fg = self.moe_fg(gate_input(torch.cat([v_fg, i_fg], 1), grid), v_fg, i_fg, train,
                                    noise.get('moe_fg'), coef)
        y_bg, loss_bg = self.moe_bg(gate_input(torch.cat([v_bg, i_bg], 1), grid), v_bg, i_bg, train,
                                    noise.get('moe_bg'), coef)
        dense_r, dense_i = torch.cat([d2_r, enc_r], 1), torch.cat([d2_i, enc_i], 1)
        x_f = torch.cat([dense_r, dense_i, y_fg, y_bg], 1)
        return x_f, {'moe_fg': loss_fg, 'moe_bg': loss_bg}


class MoEFusion(nn.Module):
    def __init__(self, cfg: FusionConfig | None = None):
        super().__init__()
        self.cfg = cfg or FusionConfig()
        self.encoder = Encoder(self.cfg)
        self.DecoderMoE = DecMoE(self.cfg)

    def gates(self) -> dict[str, NoisyTopKGate]:
        return {'moe_fg': self.encoder.moe_fg, 'moe_bg': self.encoder.moe_bg, 'DecoderMoE': self.DecoderMoE}

    def forward(self, ir, vis, att, train: bool = False, noise: dict[str, torch.Tensor] | None = None):
        """ir, vis, att: (B,1,H,W). noise: optional ε (B, E) per gate name (GATES), used in training mode.
        Returns the fused image (B,1,H,W), unclamped, and the aux loss of each gate."""
        noise = noise or {}
        x_f, aux = self.encoder(vis, ir, att, train, noise)
        fused, aux['DecoderMoE'] = self.DecoderMoE(gate_input(x_f, self.cfg.global_grid), x_f, train,
                                                   noise.get('DecoderMoE'), self.cfg.global_coef)
        return fused, aux


def sobel_magnitude(x: torch.Tensor) -> torch.Tensor:
    kx = x.new_tensor([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]).view(1, 1, 3, 3)
    ky = x.new_tensor([[1, 2, 1], [0, 0, 0], [-1, -2, -1]]).view(1, 1, 3, 3)
    return F.conv2d(x, kx, padding=1).abs() + F.conv2d(x, ky, padding=1).abs()


def losses(fused, vis, ir, mask, aux: dict[str, torch.Tensor] | None = None, cfg: FusionConfig | None = None):
    """Section 5: weighted gradient loss, box-masked pixel loss, and the total with the gates' aux losses."""
    cfg = cfg or FusionConfig()
    grad = (sobel_magnitude(fused) - torch.max(sobel_magnitude(vis), sobel_magnitude(ir))).abs().mean()
    fg = (mask * fused - mask * torch.max(vis, ir)).abs().mean()
    bg = ((1 - mask) * fused - (1 - mask) * (vis + ir) / 2).abs().mean()
    out = {'grad': cfg.grad_weight * grad, 'pixel': cfg.pixel_weight * (fg + bg)}
    out['total'] = out['grad'] + out['pixel'] + sum((aux or {}).values(), fused.new_zeros(()))
    return out


SAFETENSORS_DTYPES = {torch.float64: 'F64', torch.float32: 'F32', torch.float16: 'F16', torch.bfloat16: 'BF16'}


def save_safetensors(path: str, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None):
    """Byte-deterministic safetensors writer (the package orders metadata differently from run to run):
    tensors in the given order, header padded with spaces to a multiple of 8 bytes."""
    header: dict[str, object] = {'__metadata__': dict(metadata)} if metadata else {}
    blobs, offset = [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        blob = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b''
        header[name] = {'dtype': SAFETENSORS_DTYPES[t.dtype], 'shape': list(t.shape),
                        'data_offsets': [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(',', ':')).encode()
    text += b' ' * (-len(text) % 8)
    with open(path, 'wb') as f:
        f.write(len(text).to_bytes(8, 'little'))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def load_safetensors(path: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Reads a safetensors file without the `safetensors` package (absent on some machines): an 8-byte little-endian
    header length, a JSON header of names, dtypes, shapes and byte ranges, then the data."""
    dtypes = {v: k for k, v in SAFETENSORS_DTYPES.items()}
    with open(path, 'rb') as f:
        blob = f.read()
    n = int.from_bytes(blob[:8], 'little')
    header = json.loads(blob[8:8 + n])
    metadata = header.pop('__metadata__', None) or {}
    data = memoryview(blob)[8 + n:]
    tensors = {}
    for name, info in header.items():
        if info['dtype'] not in dtypes:
            raise ValueError(f'{path}: {name} has dtype {info["dtype"]}, which this reader does not handle')
        start, end = info['data_offsets']
        dtype = dtypes[info['dtype']]
        flat = torch.frombuffer(bytearray(data[start:end]), dtype=dtype) if end > start else torch.empty(0, dtype=dtype)
        tensors[name] = flat.reshape(info['shape'])
    return tensors, metadata


def load_model(path: str, cfg: FusionConfig | None = None) -> MoEFusion:
    """Loads a weights file (names with or without `fusion_head.`) into a float32 model; F16 files are upcast."""
    tensors, _ = load_safetensors(path)
    state = {k.removeprefix('fusion_head.'): v.float() for k, v in tensors.items()}
    model = MoEFusion(cfg)
    model.load_state_dict(state, strict=True)
    return model.eval()


def timing(model: MoEFusion, batch: int = 1, size: tuple[int, int] = (480, 640), repeats: int = 3,
           device: str = 'cpu') -> dict[str, float]:
    """Median seconds of one inference forward and one training step (forward, losses, backward, Adam)."""
    model = model.to(device)
    h, w = size
    g = torch.Generator(device='cpu').manual_seed(0)
    ir, vis, att = (torch.rand(batch, 1, h, w, generator=g).to(device) for _ in range(3))
    mask = torch.zeros(batch, 1, h, w, device=device)
    mask[:, :, h // 4:h // 2, w // 4:w // 2] = 1
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=1e-4)

    def infer():
        with torch.no_grad():
            model(ir, vis, att, train=False)

    def train_step():
        opt.zero_grad(set_to_none=True)
        fused, aux = model(ir, vis, att, train=True)
        losses(fused, vis, ir, mask, aux, model.cfg)['total'].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 35)
        opt.step()

    return {name: timed(fn, repeats, 1, device)['median'] / 1000
            for name, fn in (('inference_s', infer), ('train_step_s', train_step))}


def timed(fn, runs: int, warmup: int, device: str) -> dict[str, float]:
    """Median, min and max milliseconds of fn over `runs` runs after `warmup` untimed ones (synchronised on CUDA)."""
    def sync():
        if device.startswith('cuda'):
            torch.cuda.synchronize()

    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return {'median': times[len(times) // 2], 'min': times[0], 'max': times[-1]}


def read_gray(path: str, size: tuple[int, int], first_channel: bool) -> torch.Tensor:
    """(1,1,H,W) in [0,1]: BT.601 luma for the visible image, the first channel for the infrared one."""
    from PIL import Image
    img = Image.open(path)
    img = img.convert('RGB')
    if first_channel:
        img = img.getchannel(0)
    else:
        img = img.convert('L')  # ITU-R 601-2 luma
    img = img.resize((size[1], size[0]), Image.BILINEAR)
    return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0)[None, None]


def main():
    p = argparse.ArgumentParser(description='Fuse one infrared/visible pair with the PyTorch reference.')
    p.add_argument('--weights', required=True)
    p.add_argument('--ir', required=True)
    p.add_argument('--vi', required=True)
    p.add_argument('--out', required=True)
    p.add_argument('--att', type=float, default=0.5, help='constant attention map value (no detector here)')
    p.add_argument('--size', default='480x640', help='HxW working size')
    p.add_argument('--time', action='store_true', help='also print inference/training-step timings (JSON)')
    a = p.parse_args()
    h, w = (int(s) for s in a.size.split('x'))
    model = load_model(a.weights)
    ir, vis = read_gray(a.ir, (h, w), True), read_gray(a.vi, (h, w), False)
    with torch.no_grad():
        fused, _ = model(ir, vis, torch.full_like(ir, a.att), train=False)
    from PIL import Image
    Image.fromarray((fused[0, 0].clamp(0, 1).numpy() * 255).round().astype(np.uint8)).save(a.out)
    if a.time:
        print(json.dumps({'config': asdict(model.cfg), **timing(model, size=(h, w))}))


if __name__ == '__main__':
    main()
