export * from './specs.js';
export { specToSvg, svgToPng, pngSize, type PngOptions } from './render.js';
