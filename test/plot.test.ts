// Plots: each vega-lite spec renders to valid SVG holding the expected series and marks, the PNG
// decodes with the expected size, text is drawn (a font was found), and renders are deterministic.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Resvg } from '@resvg/resvg-js';
import {
  lossVsComputeSpec, isoFlopSpec, lawVsPointsSpec, optimalSparsitySpec, computeMultiplierSpec, paramsLabel,
  specToSvg, svgToPng, pngSize,
} from '../src/index.js';

/** A minimal well-formedness check: every tag closes in order (no external XML parser in the deps). */
function assertWellFormedXml(svg: string): void {
  assert.ok(svg.startsWith('<svg'), 'starts with <svg');
  const stack: string[] = [];
  const re = /<(\/?)([a-zA-Z][\w:-]*)((?:\s+[\w:-]+="[^"]*")*)\s*(\/?)>/g;
  let last = 0, m: RegExpExecArray | null;
  while ((m = re.exec(svg))) {
    const between = svg.slice(last, m.index);
    assert.ok(!between.includes('<'), `stray '<' near ${JSON.stringify(svg.slice(last, last + 60))}`);
    last = re.lastIndex;
    if (m[4]) continue;
    if (m[1]) assert.equal(stack.pop(), m[2], `closing </${m[2]}>`);
    else stack.push(m[2]);
  }
  assert.equal(stack.length, 0, `unclosed: ${stack.join(', ')}`);
  assert.ok(!svg.slice(last).includes('<'));
}

/** Data marks of one type (vega writes each as <g class="mark-TYPE role-mark ...">, its items as <path>s). */
function marks(svg: string, type: string): { groups: number; items: number } {
  const parts = svg.split(`class="mark-${type} role-mark`).slice(1);
  return { groups: parts.length, items: parts.reduce((n, p) => n + (p.split('</g>')[0].match(/<(path|line)\b/g) ?? []).length, 0) };
}

test('loss vs compute: one line per family, one point per run, legend and log axes', async () => {
  const rows = ['dense', 'moe-8x2'].flatMap((family, f) => [1e15, 1e16, 1e17].map((compute) => ({ family, compute, loss: (5 - f / 2) * compute ** -0.02 })));
  const svg = await specToSvg(lossVsComputeSpec(rows));
  assertWellFormedXml(svg);
  assert.deepEqual(marks(svg, 'line'), { groups: 2, items: 2 }, 'one line per family');
  assert.equal(marks(svg, 'symbol').items, 6, 'one point per run');
  assert.ok(svg.includes('>dense<') && svg.includes('>moe-8x2<'), 'legend names the families');
  assert.ok(svg.includes('training compute (FLOPs)') && svg.includes('validation loss'));
});

test('loss vs compute of an isoFLOP sweep: one line per model (family and size), sizes as shapes, the dense frontier dashed', async () => {
  // two sizes per family at three budgets: lines must join a model's budgets, never two sizes of one budget
  const rows = [['dense', 1e5], ['dense', 4e5], ['moe', 3e5], ['moe', 1.2e6]].flatMap(([family, params], i) =>
    [1e12, 3e12, 9e12].map((compute) => ({ family: family as string, params: params as number, compute, loss: 3 - i / 10 - Math.log10(compute) / 20 })));
  const frontier = [{ compute: 1e12, loss: 2.3 }, { compute: 9e12, loss: 2.2 }];
  const svg = await specToSvg(lossVsComputeSpec(rows, 'iso', frontier));
  assertWellFormedXml(svg);
  assert.equal(marks(svg, 'line').items, 5, 'four model lines and the frontier');
  assert.equal(marks(svg, 'symbol').items, 12, 'one point per run');
  for (const label of ['100k', '400k', '300k', '1.2M', 'total parameters', 'dense frontier']) assert.ok(svg.includes(`>${label}<`), label);
  assert.equal(paramsLabel(124_736), '125k');
  assert.equal(paramsLabel(1_369_088), '1.37M');
  assert.equal(paramsLabel(2.15e9), '2.15B');
});

test('isoFLOP curves with fitted minima; fitted law vs points; optimal sparsity; compute multiplier', async () => {
  const iso = await specToSvg(isoFlopSpec(
    [1e15, 1e16].flatMap((budget) => [1e5, 1e6, 1e7].map((params, i) => ({ budget, params, loss: 4 - Math.log10(budget) / 10 + (i - 1) ** 2 / 10 }))),
    [{ budget: 1e15, params: 1e6, loss: 2.5 }, { budget: 1e16, params: 1e6, loss: 2.4 }],
  ));
  assertWellFormedXml(iso);
  assert.ok(iso.includes('1.0e+15 FLOPs') && iso.includes('1.0e+16 FLOPs'));
  assert.equal(marks(iso, 'line').items, 2, 'one curve per budget');
  assert.equal(marks(iso, 'symbol').items, 8, 'six runs and two minima');
  assert.ok(iso.includes('diamond') || /M[^"]*-[^"]*Z/.test(iso));
  const law = await specToSvg(lawVsPointsSpec(
    [{ series: 'N=1e6', x: 1e15, loss: 3 }, { series: 'N=1e6', x: 1e16, loss: 2.8 }],
    [{ series: 'N=1e6', x: 1e15, loss: 3.01 }, { series: 'N=1e6', x: 3e15, loss: 2.9 }, { series: 'N=1e6', x: 1e16, loss: 2.79 }], 'training compute (FLOPs)',
  ));
  assertWellFormedXml(law);
  assert.equal(marks(law, 'line').items, 1, 'one fitted curve');
  assert.equal(marks(law, 'symbol').items, 2, 'two observed points');
  assert.ok(law.includes('Fitted law vs points'));
  const sp = await specToSvg(optimalSparsitySpec([{ compute: 1e15, sparsity: 0.5, series: 'S*(C)' }, { compute: 1e17, sparsity: 0.8, series: 'S*(C)' }]));
  assertWellFormedXml(sp);
  assert.ok(sp.includes('optimal sparsity S*'));
  assert.equal(marks(sp, 'symbol').items, 2);
  const cm = await specToSvg(computeMultiplierSpec([{ family: 'moe', compute: 1e15, multiplier: 0.5 }, { family: 'moe', compute: 1e16, multiplier: 2 }]));
  assertWellFormedXml(cm);
  assert.equal(marks(cm, 'rule').items, 1, 'the rule at multiplier 1');
  assert.equal(marks(cm, 'symbol').items, 2);
  // The rule spans the plot at multiplier 1, which lies inside the y range (not clamped to an edge).
  const y = Number(/mark-rule role-mark[^>]*><line[^>]*translate\(\d+,(\d+(?:\.\d+)?)\)/.exec(cm)![1]);
  assert.ok(Math.abs(y - 170) < 1, `rule at y=${y}: 1 is midway between 0.5 and 2 on a log axis`);
});

test('PNG: signature and IHDR size at scale 2, decodes, draws text, and is byte-identical on repeat', async () => {
  const spec = lossVsComputeSpec([{ family: 'dense', compute: 1e15, loss: 3 }, { family: 'dense', compute: 1e16, loss: 2.7 }]);
  const svg = await specToSvg(spec);
  const w = Number(/width="(\d+)"/.exec(svg)![1]), h = Number(/height="(\d+)"/.exec(svg)![1]);
  const png = svgToPng(svg);
  assert.deepEqual(pngSize(png), { width: 2 * w, height: 2 * h });
  assert.deepEqual(png, svgToPng(await specToSvg(spec)), 'same spec, same bytes');
  // Decode: resvg reads PNGs embedded as images; drawing it back must give the same size and dark pixels.
  const back = new Resvg(`<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="${2 * w}" height="${2 * h}"><image width="${2 * w}" height="${2 * h}" xlink:href="data:image/png;base64,${png.toString('base64')}"/></svg>`).render();
  assert.equal(back.width, 2 * w);
  assert.ok(back.pixels.some((v, i) => i % 4 !== 3 && v < 64), 'the decoded image has dark (axis, text) pixels');
  // Text only: with no font found the PNG would be blank.
  const text = svgToPng('<svg xmlns="http://www.w3.org/2000/svg" width="120" height="40"><text x="5" y="28" font-family="DejaVu Sans" font-size="20">loss 3.2</text></svg>');
  const px = new Resvg(`<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="240" height="80"><image width="240" height="80" xlink:href="data:image/png;base64,${text.toString('base64')}"/></svg>`).render().pixels;
  let dark = 0;
  for (let i = 0; i < px.length; i += 4) if (px[i] < 128) dark++;
  assert.ok(dark > 50, `text rendered (${dark} dark pixels); install a font such as fonts-dejavu-core`);
  assert.throws(() => pngSize(new Uint8Array(30)), /not a PNG/);
});
