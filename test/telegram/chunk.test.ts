import { describe, expect, it } from 'vitest';
import {
  chunkMarkdown,
  formatForTelegram,
  splitText,
  TELEGRAM_MESSAGE_LIMIT,
} from '../../lib/telegram/chunk';
import { parseTelegramHtml } from '../support/fake-telegram';

const words = (s: string) => s.split(/\s+/).filter(Boolean);

function paragraph(n: number, seed: string): string {
  const out: string[] = [];
  for (let i = 0; out.join(' ').length < n; i++) out.push(`${seed}${i}`);
  return `${out.join(' ')}.`;
}

/**
 * Each visible character but whitespace, with the tags it sits in (`<b><i>x`): what a reader sees, so
 * a tag inside the same tag (bold in bold) counts once.
 */
function styledText(html: string): string[] {
  const open: string[] = [];
  const out: string[] = [];
  for (const [, close, tag, text] of html.matchAll(/<(\/?)(\w+)[^>]*>|([^<]+)/g)) {
    const style = [...new Set(open)].join('');
    if (!tag) out.push(...[...(text ?? '').replace(/\s/g, '')].map((char) => `${style}${char}`));
    else if (close) open.pop();
    else open.push(`<${tag}>`);
  }
  return out;
}

/** The literal `*`, `_`, `~` and backticks shown outside inline code. */
const shownMarkers = (html: string) => html.replace(/<code>[^<]*<\/code>/g, '').replace(/[^*_~`]/g, '');

/** Chunked at `limit`, every message fits, shows no stray marker and reads as the whole answer does. */
function expectRenderedAsWhole(markdown: string, limit: number) {
  const chunks = formatForTelegram(markdown, limit);
  expect(chunks.length).toBeGreaterThan(2);
  for (const chunk of chunks) expect(parseTelegramHtml(chunk.html).length).toBeLessThanOrEqual(limit);
  const whole = formatForTelegram(markdown, 1_000_000);
  expect(whole).toHaveLength(1);
  const html = whole[0]?.html ?? '';
  expect(chunks.map((chunk) => shownMarkers(chunk.html)).join('')).toBe(shownMarkers(html));
  expect(chunks.flatMap((chunk) => styledText(chunk.html))).toEqual(styledText(html));
}

describe('chunkMarkdown', () => {
  it('keeps a short answer whole', () => {
    expect(chunkMarkdown('Hello **there**')).toEqual(['Hello **there**']);
  });

  it('splits a 5,000-character answer in two on a paragraph boundary', () => {
    const first = paragraph(2_500, 'alpha');
    const second = paragraph(2_400, 'beta');
    const chunks = chunkMarkdown(`${first}\n\n${second}`);
    expect(chunks).toEqual([first, second]);
  });

  it('keeps a short lead-in with the long block it introduces, rather than sending it alone', () => {
    const lines = Array.from({ length: 300 }, (_, i) => `const v${i} = ${i};`);
    const code = `\`\`\`ts\n${lines.join('\n')}\n\`\`\``;
    expect(code.length).toBeGreaterThan(TELEGRAM_MESSAGE_LIMIT);
    const chunks = chunkMarkdown(`Here is the code:\n\n${code}`);
    expect(chunks).toHaveLength(2);
    expect(chunks[0]).toMatch(/^Here is the code:\n\n```ts\nconst v0 = 0;/);
    for (const chunk of chunks) expect(chunk.length).toBeLessThanOrEqual(TELEGRAM_MESSAGE_LIMIT);
    // A lead-in so long that keeping it would take an extra message is still sent on its own.
    const long = paragraph(3_000, 'lead');
    const split = chunkMarkdown(`${long}\n\n${code}`);
    expect(split[0]).toBe(long);
    expect(split).toHaveLength(3);
  });

  it('splits a 10,000-character code block into fenced chunks, each balanced and within the limit', () => {
    const lines = Array.from({ length: 400 }, (_, i) => `const v${i} = a < b && c > "${i}";`);
    const code = lines.join('\n');
    expect(code.length).toBeGreaterThan(10_000);
    const chunks = formatForTelegram(`Here:\n\n\`\`\`ts\n${code}\n\`\`\`\n\nDone.`);
    expect(chunks.length).toBeGreaterThanOrEqual(3);
    const seen: string[] = [];
    for (const chunk of chunks) {
      const visible = parseTelegramHtml(chunk.html);
      expect(visible.length).toBeLessThanOrEqual(TELEGRAM_MESSAGE_LIMIT);
      expect(chunk.plain.length).toBeLessThanOrEqual(TELEGRAM_MESSAGE_LIMIT);
      const codeMatch = /<pre><code class="language-ts">([\s\S]*)<\/code><\/pre>/.exec(chunk.html);
      if (codeMatch) seen.push(parseTelegramHtml(codeMatch[1]!));
    }
    expect(seen.join('\n')).toBe(code);
  });

  it('splits a long ```` block that shows ``` fences: the inner fences stay code in every chunk', () => {
    const section = (i: number) => `Step ${i}:\n\n\`\`\`bash\nnpm run build -- --step ${i}\n\`\`\``;
    const code = Array.from({ length: 250 }, (_, i) => section(i)).join('\n\n');
    expect(code.length).toBeGreaterThan(2 * TELEGRAM_MESSAGE_LIMIT);
    const chunks = formatForTelegram(`README:\n\n\`\`\`\`markdown\n${code}\n\`\`\`\`\n\nDone.`);
    expect(chunks.length).toBeGreaterThanOrEqual(3);
    const seen: string[] = [];
    for (const chunk of chunks) {
      expect(parseTelegramHtml(chunk.html).length).toBeLessThanOrEqual(TELEGRAM_MESSAGE_LIMIT);
      const inCode = /<pre><code class="language-markdown">([\s\S]*)<\/code><\/pre>/.exec(chunk.html);
      if (inCode) seen.push(parseTelegramHtml(inCode[1]!));
    }
    // A cut on a blank line drops that line between two messages; every other line is there, in order.
    const lines = (text: string) => text.split('\n').filter(Boolean);
    expect(lines(seen.join('\n'))).toEqual(lines(code));
    expect(chunks.map((chunk) => chunk.html).join('\n')).toMatch(/<\/pre>\s*Done\.$/);
  });

  it('sends a code block under an info string longer than a message as one block of code', () => {
    const code = Array.from({ length: 20 }, (_, i) => `line ${i} 😀`).join('\n');
    const chunks = formatForTelegram(`\`\`\`${'x'.repeat(4_100)}\n${code}\n\`\`\``);
    expect(chunks.map((chunk) => chunk.html)).toEqual([`<pre>${code}</pre>`]);
  });

  it('splits a list whose item holds a long code block: the code stays code, the list after it a list', () => {
    const code = Array.from({ length: 300 }, (_, i) => `  let x${i} = ${i} < 10 && y;`).join('\n');
    const markdown = `- Step one:\n\n  \`\`\`js\n${code}\n  \`\`\`\n- Step two: **done**\n- Step three`;
    const chunks = formatForTelegram(markdown);
    expect(chunks.length).toBeGreaterThan(1);
    const seen: string[] = [];
    for (const chunk of chunks) {
      expect(parseTelegramHtml(chunk.html).length).toBeLessThanOrEqual(TELEGRAM_MESSAGE_LIMIT);
      const inCode = /<pre><code class="language-js">([\s\S]*)<\/code><\/pre>/.exec(chunk.html);
      if (inCode) seen.push(parseTelegramHtml(inCode[1]!));
    }
    expect(seen.join('\n')).toBe(code.replace(/^ {2}/gm, ''));
    expect(chunks[0]?.html).toMatch(/^• Step one:/);
    expect(chunks.at(-1)?.html).toContain('• Step two: <b>done</b>\n• Step three');
  });

  it('splits a long numbered list between items, each message numbering on from the last', () => {
    const items = Array.from({ length: 600 }, (_, i) => `1. Do step ${i + 1} carefully`);
    const chunks = formatForTelegram(`Steps:\n\n${items.join('\n')}\n\nThat is all.`);
    expect(chunks.length).toBeGreaterThan(2);
    const numbered = chunks.flatMap((chunk) =>
      [...chunk.plain.matchAll(/^(\d+)\. Do step (\d+) carefully$/gm)].map((m) => [m[1], m[2]]),
    );
    expect(numbered).toHaveLength(600);
    for (const [shown, step] of numbered) expect(shown).toBe(step);
    for (const chunk of chunks)
      expect(parseTelegramHtml(chunk.html).length).toBeLessThanOrEqual(TELEGRAM_MESSAGE_LIMIT);
    expect(chunks.at(-1)?.plain).toMatch(/That is all\.$/);
  });

  it("keeps an item's indented paragraphs and sub-list in it when a cut renumbers its 1. with two digits", () => {
    const item = (n: number) =>
      `1. Step ${n} of the procedure\n\n   More about step ${n}, in its own paragraph.\n   - a sub point of ${n}`;
    const markdown = Array.from({ length: 120 }, (_, i) => item(i + 1)).join('\n');
    const chunks = formatForTelegram(markdown);
    expect(chunks.length).toBeGreaterThan(2);
    const shown = chunks.map((chunk) => chunk.plain).join('\n');
    const expected = Array.from(
      { length: 120 },
      (_, i) =>
        `${i + 1}. Step ${i + 1} of the procedure\nMore about step ${i + 1}, in its own paragraph.\n  • a sub point of ${i + 1}`,
    ).join('\n');
    expect(shown).toBe(expected);
  });

  it('splits a long table between rows, each message a table under the same header', () => {
    const rows = Array.from(
      { length: 300 },
      (_, i) => `| ${i + 1} | item number ${i + 1} | ${i % 13} units |`,
    );
    const markdown = `| # | Name | Amount |\n|---|------|-------:|\n${rows.join('\n')}\n\nTotal above.`;
    const chunks = formatForTelegram(markdown);
    expect(chunks.length).toBeGreaterThan(2);
    const shown: string[] = [];
    for (const chunk of chunks.slice(0, -1)) {
      expect(parseTelegramHtml(chunk.html).length).toBeLessThanOrEqual(TELEGRAM_MESSAGE_LIMIT);
      const [header, ...lines] = chunk.html.split('\n');
      expect(header).toBe('<b># | Name | Amount</b>');
      shown.push(...lines);
    }
    expect(shown).toEqual(
      Array.from({ length: 300 }, (_, i) => `${i + 1} | item number ${i + 1} | ${i % 13} units`),
    );
    expect(chunks.at(-1)?.html).toBe('Total above.');
  });

  it('cuts a list item longer than a message into text, not indented code', () => {
    const para = (n: number) => `    Paragraph ${n} of the item, with **bold** words to fill the line.`;
    const item = `10. A long item\n\n${Array.from({ length: 80 }, (_, i) => para(i)).join('\n\n')}`;
    const chunks = formatForTelegram(`9. Before\n${item}\n11. After`);
    expect(chunks.length).toBeGreaterThan(3);
    for (const chunk of chunks) expect(chunk.html).not.toContain('<pre>');
    const shown = chunks.map((chunk) => chunk.plain).join('\n');
    expect(shown.match(/^Paragraph \d+ of the item, with bold words to fill the line\.$/gm)).toHaveLength(80);
    expect(chunks[0]?.plain).toBe('9. Before');
    expect(chunks.at(-1)?.plain).toBe('11. After');
  });

  it('links a reference-style link in every message, though its definition ends the answer', () => {
    const sentence = (n: number) => `Part ${n} is covered in [the docs][docs] and the [Spec]. `;
    const paragraphs = Array.from({ length: 12 }, (_, i) => sentence(i).repeat(8));
    const definitions = '[docs]: https://example.com/docs "The docs"\n[spec]: <https://example.com/a b>';
    const chunks = formatForTelegram(
      `${paragraphs.join('\n\n')}\n\n${definitions}\n\nSee [^1].\n\n[^1]: Footnote`,
    );
    expect(chunks.length).toBeGreaterThan(2);
    const shown = chunks.map((chunk) => chunk.html).join('\n');
    expect(shown).not.toMatch(/\[(the docs|Spec|docs)\]/);
    expect(shown.match(/<a href="https:\/\/example\.com\/docs">the docs<\/a>/g)).toHaveLength(96);
    expect(shown.match(/<a href="https:\/\/example\.com\/a%20b">Spec<\/a>/g)).toHaveLength(96);
    expect(chunks.at(-1)?.html).toMatch(/See \^1\.\n\n\[\^1\]: Footnote$/);
    // What the history keeps is the answer as written: the definition once.
    const stored = chunks.map((chunk) => chunk.markdown).join('\n\n');
    expect(stored.match(/\[docs\]: https/g)).toHaveLength(1);
  });

  it('cuts a long paragraph between links, never inside one', () => {
    const word = (i: number) =>
      i % 7 === 0
        ? `[link ${i} of several words](https://example.com/${i})`
        : i % 50 === 1
          ? `**bold ${i}`
          : `w${i}`;
    const words = Array.from({ length: 1_200 }, (_, i) => word(i));
    const chunks = formatForTelegram(`${words.join(' ')}**`);
    expect(chunks.length).toBeGreaterThan(2);
    const shown = chunks.map((chunk) => chunk.html).join(' ');
    expect(shown).not.toContain('](');
    const linked = [
      ...shown.matchAll(/<a href="https:\/\/example\.com\/(\d+)">link (\d+) of several words<\/a>/g),
    ];
    expect(linked.map((m) => m[1])).toEqual(words.flatMap((_, i) => (i % 7 === 0 ? [String(i)] : [])));
    for (const m of linked) expect(m[2]).toBe(m[1]);
  });

  it('splits a paragraph longer than the limit on sentences, then words', () => {
    const sentences = Array.from({ length: 300 }, (_, i) => `Sentence number ${i} is here.`).join(' ');
    const chunks = chunkMarkdown(sentences, 1_000);
    for (const c of chunks) {
      expect(c.length).toBeLessThanOrEqual(1_000);
      expect(c.endsWith('.')).toBe(true);
    }
    expect(words(chunks.join(' '))).toEqual(words(sentences));
  });

  it('cuts a long Chinese paragraph after a full stop 。, which no space follows', () => {
    const sentence = '这是一个很长的句子，用来测试分块是否在句号处进行。';
    const chunks = formatForTelegram(sentence.repeat(250));
    expect(chunks.length).toBe(2);
    for (const chunk of chunks) {
      expect(chunk.html.length).toBeLessThanOrEqual(TELEGRAM_MESSAGE_LIMIT);
      expect(chunk.html.endsWith('。')).toBe(true);
    }
    expect(chunks.map((chunk) => chunk.html).join('')).toBe(sentence.repeat(250));
  });

  it('a bold paragraph longer than the limit stays bold in every chunk, with no stray markers', () => {
    const sentences = Array.from({ length: 60 }, (_, i) => `Sentence ${i} is _quite_ important.`).join(' ');
    const markdown = `Intro **${sentences}** and \`code ${sentences}\` after.`;
    const chunks = chunkMarkdown(markdown, 1_000);
    expect(chunks.length).toBeGreaterThan(3);
    for (const c of chunks) expect(c.length).toBeLessThanOrEqual(1_000);
    const formatted = chunks.map((c) => formatForTelegram(c, 1_000));
    for (const [piece] of formatted) {
      expect(piece?.plain).not.toMatch(/\*\*|`/);
      expect(piece?.html).not.toMatch(/\*\*|`/);
    }
    // The bold sentences are bold wherever they were cut, and so is the code.
    const html = formatted.map(([piece]) => piece?.html ?? '');
    expect(html[0]).toMatch(/^Intro <b>Sentence 0 is <i>quite<\/i> important\..*<\/b>$/);
    expect(html[1]).toMatch(/^<b>.*<\/b>$/);
    expect(html.at(-1)).toMatch(/^<code>.*<\/code> after\.$/);
    expect(words(formatted.map(([piece]) => piece?.plain).join(' '))).toEqual(
      words(formatForTelegram(markdown, 1_000_000)[0]?.plain ?? ''),
    );
  });

  it('a cut inside nested emphasis closes the inner span first and reopens the outer one first', () => {
    const long = Array.from({ length: 90 }, (_, i) => `word${i}`).join(' ');
    const chunks = chunkMarkdown(`*lead __${long}__ tail*`, 200);
    expect(chunks.length).toBeGreaterThan(2);
    expect(chunks[0]).toMatch(/^\*lead __.*__\*$/);
    expect(chunks[1]).toMatch(/^\*__.*__\*$/);
    expect(chunks.at(-1)).toMatch(/^\*__.*__ tail\*$/);
  });

  it('reopens a span cut before spaces or an indented line with its marker against the text', () => {
    const lines = Array.from({ length: 30 }, (_, i) => `line ${i} of the bold part`);
    expectRenderedAsWhole(`Intro **${lines.join('\n    ')}** done.`, 120);
    // Nor is a cut made between a code span's fence and its padded code.
    const code = Array.from({ length: 40 }, (_, i) => `\`\` \`x${i}\` \`\``);
    expectRenderedAsWhole(`Run ${code.join(' ')} done.`, 120);
  });

  it('keeps a backslash before a cut from escaping the closing marker', () => {
    const paths = Array.from({ length: 40 }, (_, i) => `dir${i}\\`);
    expectRenderedAsWhole(`**${paths.join(' ')} end** after`, 120);
    // A backslash before a newline is a line break; at the end of a message it is nothing.
    const lines = Array.from({ length: 30 }, (_, i) => `line ${i} breaks here`);
    expectRenderedAsWhole(`*${lines.join('\\\n')}*`, 120);
  });

  it('cuts a word longer than the limit outside markers and escapes', () => {
    const word = Array.from({ length: 40 }, (_, i) => `**b${i}**-_i${i}_-~~s${i}~~-\\*`).join('');
    expectRenderedAsWhole(`Then ${word} end.`, 150);
  });

  it('closes and reopens spans of the same marker character without merging their markers', () => {
    const long = Array.from({ length: 60 }, (_, i) => `word${i}`).join(' ');
    for (const markdown of [
      `**lead *${long}* tail**`,
      `*lead *${long}* tail*`,
      `__lead _${long}_ tail__`,
      `*lead **${long}** tail*`,
      `~~lead ~${long}~ tail~~`,
      `**lead ${Array.from({ length: 60 }, (_, i) => `*w${i}*`).join(' ')} tail**`,
      `\`\` ${Array.from({ length: 60 }, (_, i) => `\`k${i}\``).join(' ')} \`\``,
    ])
      expectRenderedAsWhole(markdown, 150);
  });

  it('cuts a word longer than the limit without breaking surrogate pairs', () => {
    const emoji = '😀'.repeat(3_000); // 6,000 UTF-16 units
    const pieces = splitText(emoji, TELEGRAM_MESSAGE_LIMIT);
    expect(pieces.length).toBe(2);
    for (const p of pieces) {
      expect(p.length).toBeLessThanOrEqual(TELEGRAM_MESSAGE_LIMIT);
      expect(p).toMatch(/^(😀)+$/u);
    }
    expect(pieces.join('')).toBe(emoji);
  });

  it('cuts a word longer than the limit beside a character reference typed in it, never inside one', () => {
    for (const reference of ['&amp;', '&#8212;', '&#x1F600;']) {
      const word = `${'x'.repeat(TELEGRAM_MESSAGE_LIMIT - 3)}${reference}${'y'.repeat(100)}`;
      const chunks = formatForTelegram(word);
      expect(chunks.length, reference).toBe(2);
      const shown = chunks.map((chunk) => parseTelegramHtml(chunk.html)).join('');
      expect(shown, reference).toBe(parseTelegramHtml(formatForTelegram(word, 100_000)[0]?.html ?? ''));
    }
  });

  it('cuts a run of emoji sequences between them, never inside one', () => {
    const sequences = ['👨‍👩‍👧‍👦', '🇺🇦', '👍🏽', 'é', '🏳️‍🌈'];
    const text = Array.from({ length: 1_000 }, (_, i) => sequences[i % sequences.length]).join('');
    const pieces = splitText(text, TELEGRAM_MESSAGE_LIMIT);
    expect(pieces.length).toBeGreaterThan(1);
    const segmenter = new Intl.Segmenter(undefined, { granularity: 'grapheme' });
    const shown = pieces.flatMap((piece) => [...segmenter.segment(piece)].map((s) => s.segment));
    expect(shown).toEqual([...segmenter.segment(text)].map((s) => s.segment));
    for (const piece of pieces) expect(piece.length).toBeLessThanOrEqual(TELEGRAM_MESSAGE_LIMIT);
  });

  it('preserves every word of a mixed long answer, in order, and every chunk fits', () => {
    const parts: string[] = [];
    for (let i = 0; i < 12; i++) {
      parts.push(
        `## Section ${i}`,
        paragraph(700, `w${i}x`),
        `- item ${i}a\n- item ${i}b`,
        `> quote ${i} & <tag>`,
      );
    }
    const markdown = parts.join('\n\n');
    const chunks = formatForTelegram(markdown);
    expect(chunks.length).toBeGreaterThan(1);
    for (const c of chunks)
      expect(parseTelegramHtml(c.html).length).toBeLessThanOrEqual(TELEGRAM_MESSAGE_LIMIT);
    const plainWords = words(chunks.map((c) => c.plain).join('\n'));
    const expected = words(formatForTelegram(markdown, 1_000_000)[0]!.plain);
    expect(plainWords).toEqual(expected);
  });
});
