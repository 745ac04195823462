/**
 * Output ranges and the training-free methods, through the library and `moefusion fuse`: stretched output is the
 * clamped plane mapped onto the full range (gray and colour), `fuseClassic` and `fuse --method` give the classic
 * fusions of the decoded pair without weights, and bad values are usage errors.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gpu } from './helpers/gpu.ts';
import { cli } from './helpers/cli.ts';
import { assertRejects } from './helpers/throws.ts';
import { SMALL_GATES } from './helpers/weights.ts';
import { Rng } from '../src/util/rng.ts';
import { Fuser, fuseClassic } from '../src/model/fuser.ts';
import { FusionNet } from '../src/model/fusion-net.ts';
import { saveWeights } from '../src/model/weights-file.ts';
import { readImage, writeImage } from '../src/io/image.ts';
import { recolor, toGray01, to8bit } from '../src/io/color.ts';
import { applyRange } from '../src/io/output-range.ts';
import { maxFusion, multiscaleFusion } from '../src/model/classic-fusion.ts';

const dir = mkdtempSync(join(tmpdir(), 'moefusion-methods-'));
const [W, H] = [36, 28];
const [irPath, viPath] = [join(dir, 'ir.png'), join(dir, 'vi.png')];

const t = suite('fuse-methods');

t.before(async () => {
  const r = new Rng(8);
  // A dim pair (values 40..160) so that stretching changes it.
  await writeImage(irPath, Uint8Array.from(r.uniform(W * H, 40, 160)), W, H, 1);
  await writeImage(viPath, Uint8Array.from(r.uniform(W * H * 3, 40, 160)), W, H, 3);
});

t.after(() => rmSync(dir, { recursive: true, force: true }));

t('library: range stretch maps the clamped output onto 0..1, in gray and colour; stretch is the default', async () => {
  await gpu();
  const net = FusionNet.init(SMALL_GATES, 4);
  const weights = join(dir, 'w.safetensors');
  await saveWeights(weights, net);
  net.dispose();
  const fuser = await Fuser.create({ weights });
  const [plain, stretched] = [await fuser.fuse(irPath, viPath, { range: 'clamp' }), await fuser.fuse(irPath, viPath)];
  assert.equal([...plain.data], [...stretched.data], 'the network output itself is the same');
  assert.is(plain.range, 'clamp');
  assert.is(stretched.range, 'stretch');
  assert.equal([...stretched.gray()], [...applyRange(plain.data, 'stretch')]);
  const g = stretched.gray();
  assert.equal([Math.min(...g), Math.max(...g)], [0, 1]);
  assert.equal([...stretched.pixels(8)], [...to8bit(g)]);
  const color = await fuser.fuse(irPath, viPath, { range: 'stretch', color: true });
  assert.equal([...color.pixels(8)], [...recolor(g, await readImage(viPath))], 'colour output carries the stretched luma');
  await assertRejects(() => fuser.fuse(irPath, viPath, { range: 'wide' as never }), /range must be one of clamp, stretch/);
  fuser.dispose();
});

t('library: fuseClassic gives the classic fusions of the decoded pair, with no weights and no GPU work', async () => {
  const [ir, vi] = [await readImage(irPath), await readImage(viPath)];
  const [a, b] = [toGray01(ir, 'first'), toGray01(vi, 'luma')];
  assert.equal([...(await fuseClassic(irPath, viPath, { method: 'max' })).data], [...maxFusion(a, b)]);
  const ms = await fuseClassic(irPath, viPath, { method: 'multiscale', range: 'stretch' });
  assert.equal([...ms.data], [...multiscaleFusion(a, b, W, H)]);
  assert.equal([...ms.gray()], [...applyRange(multiscaleFusion(a, b, W, H), 'stretch')]);
  await assertRejects(() => fuseClassic(irPath, viPath, { method: 'mean' as never }), /method must be one of max, multiscale/);
});

t('cli: fuse --method multiscale --range stretch writes the stretched classic fusion without weights; bad values exit 2', async () => {
  const out = join(dir, 'ms.png');
  const r = cli('fuse', '--ir', irPath, '--vi', viPath, '--out', out, '--method', 'multiscale', '--range', 'stretch', '--weights', join(dir, 'absent.safetensors'));
  assert.is(r.code, 0, r.stderr);
  const [a, b] = [toGray01(await readImage(irPath), 'first'), toGray01(await readImage(viPath), 'luma')];
  assert.equal([...(await readImage(out)).data], [...to8bit(applyRange(multiscaleFusion(a, b, W, H), 'stretch'))]);
  const bad = cli('fuse', '--ir', irPath, '--vi', viPath, '--out', join(dir, 'x.png'), '--range', 'wide');
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /--range.*wide.*clamp, stretch/);
  assert.is(cli('fuse', '--ir', irPath, '--vi', viPath, '--out', join(dir, 'y.png'), '--method', 'mean').code, 2);
  assert.not.ok(existsSync(join(dir, 'x.png')) || existsSync(join(dir, 'y.png')), 'nothing written');
});

t.run();
