/**
 * `moefusion selftest`: passes on the engine as it is (JSON report), and fails, naming the check, when one kernel is
 * broken on purpose (test/helpers/break-kernel.ts rewrites the bilinear resize's WGSL to scale its output by 1.001).
 * The full run of every check is in test/bundle.test.ts (from the bundle) and here with 16-lane subgroups (lavapipe
 * at 512 bits: the subgroup kernels at another size than the 8 lanes they were tuned for).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import type { SelftestReport } from '../src/check/selftest.ts';

const root = resolve(import.meta.dirname, '..');

function selftest(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--import', './test/helpers/break-kernel.ts', join(root, 'src/cli/main.ts'), 'selftest', ...args], {
    encoding: 'utf8',
    cwd: root,
    env: { ...process.env, ...env },
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr.replace(/^Warning: .*\n/gm, '') };
}

const t = suite('selftest');

t('passes on the engine as it is; --json gives every check with its worst error', () => {
  const r = selftest(['--json', '--only', 'conv2d forward,resize,network inference']);
  assert.is(r.code, 0, r.stderr + r.stdout);
  const report = JSON.parse(r.stdout) as SelftestReport;
  assert.ok(report.pass);
  assert.equal(report.checks.map((c) => c.name), ['conv2d forward', 'bilinear resize', 'network inference (PyTorch fixture)']);
  for (const c of report.checks) {
    assert.ok(c.pass && c.error !== null && c.tolerance !== null && c.error <= c.tolerance, `${c.name}: ${c.error} ≤ ${c.tolerance}`);
    assert.ok(c.comparisons.length > 0);
  }
  assert.match(report.fixture ?? '', /fixtures\/moe-fusion-small\.safetensors$/);
});

t('a deliberately broken kernel (resize × 1.001) fails its check and the network, exit 1, named on stderr', () => {
  const broken = JSON.stringify({ label: 'resize_bilinear', find: 'O[p.oBase + i] = ', replace: 'O[p.oBase + i] = 1.001 * ' });
  const r = selftest(['--only', 'matmul,resize,network inference'], { MOEFUSION_TEST_BREAK_KERNEL: broken });
  assert.is(r.code, 1, r.stderr + r.stdout);
  assert.not.match(r.stderr, /break-kernel: no kernel/, 'the kernel was rewritten');
  const verdict = (name: string) => r.stdout.split('\n').find((l) => l.includes(name))?.slice(0, 4);
  assert.is(verdict('matmul'), 'pass', r.stdout);
  assert.is(verdict('bilinear resize'), 'FAIL', r.stdout);
  assert.is(verdict('network inference'), 'FAIL', r.stdout);
  assert.match(r.stdout, /relative error 1\.00e-3 > 2e-5/);
  const lines = r.stderr.trim().split('\n');
  assert.is(lines.length, 1, r.stderr);
  assert.match(lines[0], /^moefusion: selftest: 2 of 3 checks failed: bilinear resize; network inference/);
});

t('every check passes with 16-lane subgroups (lavapipe at 512 bits), not only with the 8 lanes of its default', () => {
  const probe = selftest(['--json', '--only', 'matmul']);
  const adapter = (JSON.parse(probe.stdout) as SelftestReport).adapter;
  if (!/llvmpipe/.test(adapter.name)) {
    console.log(`  (skipped: ${adapter.name} is not lavapipe, whose vector width can be set)`);
    return;
  }
  const r = selftest(['--json'], { LP_NATIVE_VECTOR_WIDTH: '512' });
  assert.is(r.code, 0, r.stderr + r.stdout);
  const report = JSON.parse(r.stdout) as SelftestReport;
  if (!/512/.test(report.adapter.name)) {
    console.log(`  (skipped: this lavapipe did not take the 512-bit width: ${report.adapter.name})`);
    return;
  }
  assert.is(report.adapter.subgroupLanes, 16, 'the kernels were built for 16 lanes');
  assert.ok(report.checks.length >= 12 && report.pass, report.checks.filter((c) => !c.pass).map((c) => c.name).join(', '));
});

t('usage and input errors: an unknown check (2), a missing fixture (1)', () => {
  const none = selftest(['--only', 'no-such-check']);
  assert.is(none.code, 2);
  assert.match(none.stderr, /^moefusion: --only no-such-check: no check's name contains it/);
  const missing = selftest(['--fixture', join(root, 'no/such.safetensors')]);
  assert.is(missing.code, 1);
  assert.match(missing.stderr, /^moefusion: --fixture .*no\/such\.safetensors: no such file/);
});

t.run();
