/**
 * The Sobel gradient magnitude kernel (src/kernels/sobel.ts): forward and backward against float64
 * (src/check/reference/sobel.ts) on odd and tiny planes, and finite differences.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { gpu } from '../helpers/gpu.ts';
import { Rng } from '../../src/util/rng.ts';
import { assertClose } from '../helpers/compare.ts';
import { gradcheck } from '../helpers/gradcheck.ts';
import { size } from '../../src/check/reference/elementwise.ts';
import { refSobel, refSobelGrad, refSobelParts } from '../../src/check/reference/sobel.ts';
import { Tensor } from '../../src/tensor/tensor.ts';
import { backward } from '../../src/autograd/tape.ts';
import { tidy } from '../../src/tensor/engine.ts';
import { sobelGradient } from '../../src/ops/index.ts';

const t = suite('sobel');
const rng = new Rng(23);

/** Values of `shape` whose Sobel responses are all at least `gap` from 0. */
function awayFromKinks(shape: number[], gap: number): Float32Array {
  for (let attempt = 0; attempt < 1000; attempt++) {
    const x = rng.uniform(size(shape));
    const { gx, gy } = refSobelParts(x, shape);
    if (Math.min(...gx.map(Math.abs), ...gy.map(Math.abs)) >= gap) return x;
  }
  throw new Error('could not draw inputs away from the kinks');
}

t('sobelGradient matches float64 (zero padding, odd and tiny planes, several channels)', async () => {
  await gpu();
  for (const shape of [[1, 1, 1, 1], [2, 1, 7, 5], [1, 3, 13, 1], [3, 1, 17, 23], [1, 1, 2, 2], [1, 1, 480, 640]]) {
    const x = rng.uniform(size(shape));
    const out = tidy(() => sobelGradient(Tensor.fromArray(x, shape)));
    assert.equal([...out.shape], shape);
    assertClose(await out.data(), refSobel(x, shape), { what: `sobel [${shape}]` });
    out.dispose();
  }
  // A vertical step 0|1, worked by hand: |Sobel_x| = (3, 4, 3 by row)·|c(j+1) − c(j−1)| with the zero padding
  // as a step down on the right, |Sobel_y| = (0, 1, 3, 3 by column) on the top and bottom rows only.
  const step = [0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1];
  const s = tidy(() => sobelGradient(Tensor.fromArray(step, [1, 1, 3, 4])));
  assert.equal([...(await s.data())], [0, 4, 6, 6, 0, 4, 4, 4, 0, 4, 6, 6]);
  s.dispose();
});

t('sobelGradient backward matches float64 (the adjoint correlations of the signed responses)', async () => {
  await gpu();
  // Responses at least 1e-4 from 0, so that float32 rounding cannot flip a sign.
  for (const shape of [[2, 1, 7, 5], [1, 3, 13, 2], [3, 1, 17, 23], [1, 1, 48, 64]]) {
    const x = awayFromKinks(shape, 1e-4);
    const xt = Tensor.fromArray(x, shape);
    xt.requiresGrad = true;
    const out = sobelGradient(xt);
    const g = rng.uniform(size(shape));
    const seed = Tensor.fromArray(g, shape);
    backward(out, seed);
    assertClose(await xt.grad!.data(), refSobelGrad(x, g, shape), { what: `sobel gradient [${shape}]` });
    for (const v of [xt, out, seed]) v.dispose();
  }
});

t('sobelGradient backward passes the finite-difference check', async () => {
  await gpu();
  // H, W ≥ 2: on a one-pixel-high plane Sobel_y is identically 0 (a kink no draw can avoid, and no gradient).
  for (const shape of [[1, 1, 5, 6], [2, 1, 3, 4], [1, 2, 2, 7]]) {
    const x = awayFromKinks(shape, 0.02);
    const r = await gradcheck(([v]) => sobelGradient(v), [x], [shape], { h: 1e-3 });
    assert.ok(r.ok, `sobel [${shape}]: ${r.message}`);
  }
});

t.run();
