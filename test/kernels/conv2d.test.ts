/**
 * The (routed) convolution kernel (src/kernels/conv2d.ts): the catalogue's forward cases (src/check/cases/conv2d.ts:
 * k 1 and 3, bias, relu, padding, routed, split into channel slabs) against float64 on every path (subgroups with and
 * without shared input rows, the portable kernels; vec4 rows when the width is a multiple of 4 and not), and the
 * input gradient against finite differences. The gradients against float64: conv2d-grad.test.ts; the slab plan:
 * conv2d-slabs.test.ts.
 */
import { suite } from 'uvu';
import { gpu } from '../helpers/gpu.ts';
import { Rng } from '../../src/util/rng.ts';
import { familyTest } from '../helpers/compare.ts';
import { checkConvFiniteDifferences, checkRoutedFiniteDifferences } from '../helpers/conv.ts';
import { convForwardFamily } from '../../src/check/cases/conv2d.ts';

const t = suite('conv2d');

familyTest(t, 'conv2d and routedConv2d match float64 on awkward shapes (k 1 and 3, bias, relu, padding, repeated inputs, an expert never chosen, channel slabs), on every kernel path', convForwardFamily);

t('conv2d input gradient passes the finite-difference check (with and without relu)', async () => {
  await gpu();
  await checkConvFiniteDifferences(new Rng(11), [0]);
});

t('routedConv2d input gradient: scatter-add over shared inputs passes the finite-difference check', async () => {
  await gpu();
  const { table } = await checkRoutedFiniteDifferences([0]);
  table.dispose();
});

t.run();
