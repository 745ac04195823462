/**
 * Sobel gradient magnitude |Sobel_x ⋆ x| + |Sobel_y ⋆ x| per plane of (N, C, H, W), zero padding 1, as
 * PyTorch's F.conv2d (cross-correlation) with Sobel_x = [[-1,0,1],[-2,0,2],[-1,0,1]] and
 * Sobel_y = [[1,2,1],[0,0,0],[-1,-2,-1]].
 *
 * Backward in two passes: (1) wx = g·sign(Sobel_x ⋆ x), wy = g·sign(Sobel_y ⋆ x); (2) the adjoint correlation.
 * Both kernels are antisymmetric under a 180° flip, so the adjoint is −(Sobel_x ⋆ wx) − (Sobel_y ⋆ wy).
 */
import { engine } from '../tensor/engine.ts';
import { Tensor, sameShape } from '../tensor/tensor.ts';
import { LimitError } from '../runtime/errors.ts';
import { Program } from './program.ts';

const WG = 256;

/**
 * WGSL: the Sobel correlations of a 3×3 neighbourhood v (v[row][col], row = dy + 1), and `load3x3` reading the
 * zero-padded neighbourhood of pixel (y, x) from buffer `buf`, which holds `stride` interleaved values per pixel.
 */
function helpers(buf: string, stride: number): string {
  return /* wgsl */ `
fn sobelX(v: array<array<f32, 3>, 3>) -> f32 {
  return (v[0][2] + 2.0 * v[1][2] + v[2][2]) - (v[0][0] + 2.0 * v[1][0] + v[2][0]);
}
fn sobelY(v: array<array<f32, 3>, 3>) -> f32 {
  return (v[0][0] + 2.0 * v[0][1] + v[0][2]) - (v[2][0] + 2.0 * v[2][1] + v[2][2]);
}
fn load3x3(base: u32, y: i32, x: i32, lane: u32) -> array<array<f32, 3>, 3> {
  let h = i32(p.h);
  let w = i32(p.w);
  var v: array<array<f32, 3>, 3>;
  for (var dy = -1; dy <= 1; dy++) {
    for (var dx = -1; dx <= 1; dx++) {
      let yy = y + dy;
      let xx = x + dx;
      var val = 0.0;
      if (yy >= 0 && yy < h && xx >= 0 && xx < w) { val = ${buf}[(base + u32(yy * w + xx)) * ${stride}u + lane]; }
      v[dy + 1][dx + 1] = val;
    }
  }
  return v;
}`;
}

/** The pixel of invocation i: its plane's first element `base` and its position (y, x). */
const PIXEL = /* wgsl */ `if (i >= p.n) { return; }
  let plane = i / (p.h * p.w);
  let r = i - plane * p.h * p.w;
  let y = i32(r / p.w);
  let x = i32(r % p.w);
  let base = plane * p.h * p.w;`;

const UNIFORMS = { n: 'u32', h: 'u32', w: 'u32' } as const;

/** A per-pixel program whose 3×3 loads read `grid` (`lanes` values per pixel); `body` follows the pixel's position. */
const pixelProgram = (name: string, inputs: Record<string, 'f32'>, outputs: Record<string, 'f32'>, grid: string, lanes: number, body: string) =>
  new Program({ name, inputs, outputs, uniforms: UNIFORMS, workgroupSize: WG, flat: true, header: helpers(grid, lanes), body: `${PIXEL}\n  ${body}` });

const forwardProgram = pixelProgram('sobel', { X: 'f32' }, { O: 'f32' }, 'X', 1, /* wgsl */ `let v = load3x3(base, y, x, 0u);
  O[i] = abs(sobelX(v)) + abs(sobelY(v));`);

const weightsProgram = pixelProgram('sobel_grad_weights', { X: 'f32', G: 'f32' }, { W: 'f32' }, 'X', 1, /* wgsl */ `let v = load3x3(base, y, x, 0u);
  let g = G[i];
  W[2u * i] = g * sign(sobelX(v));
  W[2u * i + 1u] = g * sign(sobelY(v));`);

const adjointProgram = pixelProgram('sobel_grad', { W: 'f32' }, { D: 'f32' }, 'W', 2, /* wgsl */ `D[i] = -sobelX(load3x3(base, y, x, 0u)) - sobelY(load3x3(base, y, x, 1u));`);

function planeUniforms(x: Tensor, label: string): { n: number; h: number; w: number } {
  if (x.rank < 2) throw new Error(`${label}: expected (..., H, W), got [${x.shape.join(', ')}]`);
  if (2 * x.bytes > engine().rt.maxBinding) throw new LimitError(`${label}: a tensor of ${x.bytes} bytes is too large (needs 2× within one binding)`);
  const [h, w] = x.shape.slice(-2);
  return { n: x.size, h, w };
}

/** |Sobel_x ⋆ x| + |Sobel_y ⋆ x| on every (H, W) plane of x. */
export function sobelKernel(x: Tensor): Tensor {
  const u = planeUniforms(x, 'sobel');
  const out = Tensor.empty(x.shape);
  if (u.n) forwardProgram.dispatchFlat(u.n, { X: x, O: out }, u);
  return out;
}

/** The gradient of sobelKernel at x given the output gradient g. */
export function sobelGradKernel(x: Tensor, g: Tensor): Tensor {
  if (!sameShape(x.shape, g.shape)) throw new Error('sobel backward: gradient shape differs from the input');
  const u = planeUniforms(x, 'sobel_grad');
  const dx = Tensor.empty(x.shape);
  if (!u.n) return dx;
  const weights = Tensor.empty([u.n, 2]);
  weightsProgram.dispatchFlat(u.n, { X: x, G: g, W: weights }, u);
  adjointProgram.dispatchFlat(u.n, { W: weights, D: dx }, u);
  weights.dispose();
  return dx;
}
