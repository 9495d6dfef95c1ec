/**
 * Renders a vega-lite spec to SVG in Node (vega View with renderer 'none', toSVG: no canvas, no
 * browser) and SVG to PNG with resvg. Text in the PNG needs a font: resvg loads the system fonts
 * and falls back to DejaVu Sans. Output is deterministic for a given spec, vega version and font set:
 * nothing random or time-dependent enters either step (test/plot_render.test.ts checks repeat renders).
 */
// vega, vega-lite and resvg load on first use: they are large, and training must not carry them.
import { createRequire } from 'node:module';
import type { TopLevelSpec } from 'vega-lite';

export async function specToSvg(spec: TopLevelSpec): Promise<string> {
  const vega = await import('vega');
  const { compile } = await import('vega-lite');
  // A library prints nothing: vega-lite's and vega's warnings are silenced.
  const quiet = vega.logger(vega.None);
  const view = new vega.View(vega.parse(compile(spec, { logger: quiet }).spec), { renderer: 'none', logLevel: vega.None });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

export interface PngOptions {
  /** Pixel scale (default 2, for readable text). */
  scale?: number;
}

export function svgToPng(svg: string, o: PngOptions = {}): Buffer {
  const { Resvg } = createRequire(import.meta.url)('@resvg/resvg-js') as typeof import('@resvg/resvg-js');
  const r = new Resvg(svg, {
    background: 'white',
    fitTo: { mode: 'zoom', value: o.scale ?? 2 },
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans', sansSerifFamily: 'DejaVu Sans' },
  });
  return r.render().asPng();
}

/** Width and height from a PNG's IHDR chunk; throws when the bytes are not a PNG. */
export function pngSize(png: Uint8Array): { width: number; height: number } {
  const sig = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (png.length < 24 || !sig.every((b, i) => png[i] === b)) throw new Error('not a PNG (bad signature)');
  if (String.fromCharCode(...png.subarray(12, 16)) !== 'IHDR') throw new Error('not a PNG (first chunk is not IHDR)');
  const dv = new DataView(png.buffer, png.byteOffset, png.byteLength);
  return { width: dv.getUint32(16), height: dv.getUint32(20) };
}
