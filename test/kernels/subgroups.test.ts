/**
 * The subgroup switch (src/kernels/subgroups.ts): the lanes the subgroup kernels use on this adapter, 0 when they
 * are turned off (the portable kernels' tests rely on it), and the fixed size only when every subgroup has it.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { gpu } from '../helpers/gpu.ts';
import { fixedSubgroupSize, setSubgroupsAllowed, subgroupSize } from '../../src/kernels/subgroups.ts';

const t = suite('subgroups');

t('subgroupSize: the adapter\'s lanes (at least 8) when allowed and supported, else 0; fixedSubgroupSize only when min = max', async () => {
  const e = await gpu();
  const info = (e.rt.handle.device as GPUDevice & { adapterInfo?: { subgroupMinSize?: number; subgroupMaxSize?: number } }).adapterInfo;
  const supported = e.rt.handle.features.has('subgroups') && (info?.subgroupMinSize ?? 0) >= 8;
  try {
    setSubgroupsAllowed(true);
    const lanes = subgroupSize();
    assert.is(lanes, supported ? Math.max(8, info?.subgroupMaxSize ?? 8) : 0, 'allowed');
    if (lanes) assert.ok(lanes >= 8 && (lanes & (lanes - 1)) === 0, `${lanes} lanes: a power of two ≥ 8`);
    assert.is(fixedSubgroupSize(), info?.subgroupMinSize === info?.subgroupMaxSize ? lanes : 0, 'fixed size');
    setSubgroupsAllowed(false);
    assert.is(subgroupSize(), 0, 'turned off');
    assert.is(fixedSubgroupSize(), 0, 'turned off: no fixed size either');
    setSubgroupsAllowed(true);
    assert.is(subgroupSize(), lanes, 'turned on again');
  } finally {
    setSubgroupsAllowed(true);
  }
});

t.run();
