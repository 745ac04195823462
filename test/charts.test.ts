import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { barChartSvg, lineChartSvg, logTicks, niceTicks, tickLabel, writeSvgImage } from '../src/io/charts.ts';
import { readImage } from '../src/io/image.ts';
import { SERIES_COLORS } from '../src/io/plot.ts';

const t = suite('charts');

t('ticks are round steps covering the range; labels are short', () => {
  assert.equal(niceTicks(0, 94715), [0, 20000, 40000, 60000, 80000]);
  assert.equal(niceTicks(0.013, 0.047), [0.02, 0.03, 0.04]);
  assert.equal(niceTicks(3, 3), [3]);
  assert.equal(logTicks(-1.3, 0.8), [0.1, 0.2, 0.5, 1, 2, 5]);
  assert.equal(logTicks(-3, 1), [0.001, 0.01, 0.1, 1, 10]);
  assert.equal([0, 0.5, 1234.5678, 250000, 0.00012].map(tickLabel), ['0', '0.5', '1230', '2.5e5', '1.2e-4']);
});

t('the loss chart and the bar chart carry their text and draw every series', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'charts-'));
  try {
    const loss = lineChartSvg(
      [
        { name: 'training loss', points: Array.from({ length: 50 }, (_, i) => [i + 1, 5 / (i + 1)] as [number, number]) },
        { name: 'validation <loss>', points: [[10, 0.6], [20, 0.4], [50, 0.2]] },
      ],
      { title: 'MoE-Fusion training', xLabel: 'step', yLabel: 'loss' },
    );
    for (const text of ['MoE-Fusion training', '>step<', '>loss<', 'training loss', 'validation &lt;loss&gt;']) assert.ok(loss.includes(text), `line chart has ${text}`);
    const bars = barChartSvg([{ label: 'inference', values: [6880, 1602] }, { label: 'train', values: [5990, NaN] }], ['engine', 'PyTorch'], { title: 'end to end' });
    assert.is(bars.match(/<rect [^>]*fill="rgb/g)!.length, 3 + 2, 'three bars (the missing value drawn as none) and two legend keys');
    // Rasterised: the picture is the chart's size and both series' colours appear in it.
    const file = join(dir, 'loss.png');
    await writeSvgImage(file, loss);
    const img = await readImage(file);
    assert.equal([img.width, img.height], [800, 420]);
    for (const [k, rgb] of SERIES_COLORS.slice(0, 2).entries()) {
      let found = false;
      for (let i = 0; i < img.width * img.height && !found; i++)
        found = [0, 1, 2].every((c) => Math.abs(img.data[i * img.channels + c] - rgb[c]) <= 2);
      assert.ok(found, `series ${k} is drawn`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

t.run();
