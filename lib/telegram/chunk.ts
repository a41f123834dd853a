import { Lexer, type Token, type Tokens } from 'marked';
import {
  codeLanguage,
  escapeHtml,
  markdownToPlainText,
  markdownToTelegramHtml,
  telegramHtmlVisibleText,
} from './format';

/** Telegram's limit on a message's text, in UTF-16 code units, counted after entity parsing. */
export const TELEGRAM_MESSAGE_LIMIT = 4096;

/*
 * Where we cut: we chunk the Markdown SOURCE and format each chunk on its own. Formatting a chunk
 * always yields balanced HTML, whereas cutting formatted HTML would have to re-balance tags by hand.
 * Formatting only removes characters from what Telegram displays (markers, fences, link targets), so
 * a source chunk within the limit displays within it; `formatForTelegram` still measures every
 * formatted chunk and re-cuts any that would not fit. Lengths are JS string lengths = UTF-16 units,
 * which is what Telegram counts; we never cut inside a surrogate pair.
 */

// Chinese and Japanese end a sentence with a full-width mark and no space: the cut goes after it.
const SEPARATORS: RegExp[] = [/\n\s*\n/g, /\n/g, /(?<=[.!?…])\s+|(?<=[。！？])/g, /\s+/g];

/** Cuts `text` into pieces of at most `limit`, preferring the coarsest boundary that works. */
export function splitText(text: string, limit: number, level = 0): string[] {
  if (text.length <= limit) return text.trim() === '' ? [] : [text];
  const separator = SEPARATORS[level];
  if (!separator) return hardCut(text, limit);
  // Pieces keep their trailing separator so that joining them gives back the text.
  const pieces: string[] = [];
  let last = 0;
  for (const m of text.matchAll(separator)) {
    const end = (m.index ?? 0) + m[0].length;
    pieces.push(text.slice(last, end));
    last = end;
  }
  pieces.push(text.slice(last));
  const out: string[] = [];
  let current = '';
  for (const piece of pieces) {
    if (current.length + piece.length <= limit) {
      current += piece;
      continue;
    }
    if (current !== '') out.push(current);
    current = '';
    if (piece.length <= limit) current = piece;
    else out.push(...splitText(piece, limit, level + 1));
  }
  if (current !== '') out.push(current);
  return out.map((s) => s.trimEnd()).filter((s) => s.trim() !== '');
}

const isHighSurrogate = (text: string, at: number) => {
  const code = text.charCodeAt(at);
  return code >= 0xd800 && code <= 0xdbff;
};

/** Characters of inline markers: a cut next to one could split a run such as `**` or `~~`. */
const MARKER_CHARS = /[*_~`]/;

const graphemes = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

/** Whether `at` falls between two characters as a reader sees them: not inside 👨‍👩‍👧 or a flag. */
function isGraphemeBoundary(text: string, at: number): boolean {
  const from = Math.max(0, at - 64);
  for (const { index } of graphemes.segment(text.slice(from, at + 64))) {
    if (from + index >= at) return from + index === at;
  }
  return at >= text.length;
}

/** A character reference typed in the Markdown (`&amp;`, `&#8212;`, `&#x1F600;`): one character once formatted. */
const CHARACTER_REFERENCE = /&#?[A-Za-z0-9]{1,31};/g;

function insideCharacterReference(text: string, at: number): boolean {
  const from = Math.max(0, at - 33);
  for (const match of text.slice(from, at + 33).matchAll(CHARACTER_REFERENCE)) {
    const start = from + match.index;
    if (start < at && at < start + match[0].length) return true;
  }
  return false;
}

/**
 * Whether a word can be cut before `text[at]`: not inside a surrogate pair, an emoji sequence or a
 * character reference, not after the backslash of an escape (`\*`), and not next to a marker
 * character, so that a cut through bold, italic, strikethrough or code falls strictly inside its
 * content, where `splitParagraph` closes and reopens it.
 */
function canCut(text: string, at: number): boolean {
  if (isHighSurrogate(text, at - 1)) return false;
  if (MARKER_CHARS.test(text[at - 1] ?? '') || MARKER_CHARS.test(text[at] ?? '')) return false;
  if (insideCharacterReference(text, at)) return false;
  let backslashes = 0;
  while (text[at - 1 - backslashes] === '\\') backslashes++;
  // Segmenting costs the most, so it comes last.
  return backslashes % 2 === 0 && isGraphemeBoundary(text, at);
}

function hardCut(text: string, limit: number): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < text.length) {
    let end = Math.min(i + limit, text.length);
    if (end < text.length) {
      let cut = end;
      while (cut > i + 1 && !canCut(text, cut)) cut--;
      // Nowhere to cut cleanly (a run of markers longer than the limit): keep at least surrogate pairs.
      if (canCut(text, cut)) end = cut;
      else if (end - 1 > i && isHighSurrogate(text, end - 1)) end--;
    }
    out.push(text.slice(i, end));
    i = end;
  }
  return out;
}

/** A line of more backticks than this in the code may end a piece early: the fence must leave room. */
const MAX_FENCE = 64;

/**
 * A fenced code block too long for one message: close the fence and reopen it in the next chunk. The
 * fence is longer than any backtick run opening a line of the code, so a README's own ``` lines inside
 * a ```` block stay code instead of closing it.
 */
function splitCode(token: Token & { type: 'code' }, limit: number): string[] {
  // Only the language shows; a long info string repeated in every piece would leave no room for code.
  const lang = codeLanguage(token.lang);
  const code = String(token.text);
  const longest = Math.max(0, ...[...code.matchAll(/^ {0,3}(`+)/gm)].map((m) => m[1]?.length ?? 0));
  const fence = '`'.repeat(Math.min(Math.max(3, longest + 1), MAX_FENCE));
  const open = `${fence}${lang}\n`;
  const close = `\n${fence}`;
  const budget = Math.max(limit - open.length - close.length, 1);
  return splitText(code, budget, 1).map((piece) => `${open}${piece}${close}`);
}

/** A fence line: indentation, three or more backticks or tildes, and (opening only) an info string. */
const FENCE = /^(\s*)(`{3,}|~{3,})(.*)$/;

/**
 * Pieces of one block cut apart (a long list whose item holds a code block) each as valid Markdown on
 * its own: a piece that ends inside a fenced block closes it, and the next reopens it with the same
 * fence line, so the code stays code and what follows the fence is not read as code.
 */
export function balanceFences(pieces: string[]): string[] {
  let open: { line: string; indent: string; marker: string } | undefined;
  return pieces.map((piece) => {
    const reopened = open ? `${open.line}\n${piece}` : piece;
    for (const line of piece.split('\n')) {
      const m = FENCE.exec(line);
      if (!m) continue;
      const [, indent = '', marker = '', info = ''] = m;
      if (!open) open = { line, indent, marker };
      else if (marker[0] === open.marker[0] && marker.length >= open.marker.length && info.trim() === '')
        open = undefined;
    }
    return open ? `${reopened}\n${open.indent}${open.marker}` : reopened;
  });
}

/**
 * `piece` (starting with an ordered list item `itemLength` characters long) with that item numbered
 * `number`. A wider number (`1.` become `62.`) moves the item's content right, and its other lines,
 * indented to the old width, would leave it: they are indented by as much.
 */
function renumberFirstItem(piece: string, number: number, itemLength: number): string {
  const marker = /^(\s*)(\d{1,9})([.)])/.exec(piece);
  if (!marker) return piece;
  const [written, indent = '', digits = '', delimiter = ''] = marker;
  const growth = String(number).length - digits.length;
  let item = piece.slice(written.length, itemLength);
  if (growth > 0) item = item.replace(/\n(?=[ \t]*\S)/g, `\n${' '.repeat(growth)}`);
  return `${indent}${number}${delimiter}${item}${piece.slice(itemLength)}`;
}

/** How far right a list item's content starts: its marker's width and the spaces after it. */
function itemContentIndent(raw: string): number {
  const m = /^( *)(\d{1,9}[.)]|[-+*])( *)/.exec(raw);
  if (!m) return 1;
  const [, before = '', marker = '', after = ''] = m;
  // Five or more spaces after the marker: the content is indented code one space past it.
  return before.length + marker.length + (after.length >= 1 && after.length <= 4 ? after.length : 1);
}

/**
 * A list too long for one message, cut between items. Each piece of an ordered list starts at the
 * number its first item has in the whole list (Markdown numbers a list from its first marker, and
 * answers often write `1.` on every line). An item too long on its own is cut like any text.
 */
function splitList(token: Tokens.List, limit: number): string[] {
  const start = typeof token.start === 'number' ? token.start : 1;
  const pieces: string[] = [];
  let current = '';
  let first = 0;
  const push = (piece: string, index: number) => {
    const itemLength = Math.min(piece.length, token.items[index]?.raw.length ?? 0);
    const numbered = token.ordered ? renumberFirstItem(piece, start + index, itemLength) : piece;
    if (numbered.trim() !== '') pieces.push(numbered.trimEnd());
  };
  for (const [index, item] of token.items.entries()) {
    if (current.length + item.raw.length <= limit) {
      if (current === '') first = index;
      current += item.raw;
      continue;
    }
    if (current !== '') push(current, first);
    current = '';
    if (item.raw.length <= limit) {
      current = item.raw;
      first = index;
      continue;
    }
    // The pieces after the first are the item's content without its marker: at the item's indentation
    // they would read as indented code, so they move left by as much.
    const indent = new RegExp(`^ {1,${itemContentIndent(item.raw)}}`, 'gm');
    for (const [part, piece] of balanceFences(splitText(item.raw, limit)).entries()) {
      if (part === 0) push(piece, index);
      else pieces.push(piece.replace(indent, ''));
    }
  }
  if (current !== '') push(current, first);
  return pieces;
}

/**
 * A table too long for one message, cut between rows; each piece repeats the header and delimiter
 * rows, so it is still a table (rows alone would show as lines of pipes) and every message says what
 * its columns are. A row too long on its own is cut like any text.
 */
function splitTable(token: Tokens.Table, limit: number): string[] {
  const [header = '', delimiter = '', ...rows] = token.raw.trimEnd().split('\n');
  const head = `${header}\n${delimiter}\n`;
  if (head.length * 2 > limit) return splitText(token.raw, limit);
  const pieces: string[] = [];
  let current = '';
  const push = () => {
    if (current !== '') pieces.push(`${head}${current.trimEnd()}`);
    current = '';
  };
  for (const row of rows) {
    if (head.length + current.length + row.length + 1 > limit) push();
    if (head.length + row.length + 1 <= limit) current += `${row}\n`;
    else pieces.push(...splitText(row, limit));
  }
  push();
  return pieces;
}

type SpanType = 'strong' | 'em' | 'del' | 'codespan';

/** Where an inline span's content sits in its paragraph, and the marker on each side of it. */
interface InlineSpan {
  type: SpanType;
  from: number;
  to: number;
  /** As written: `**` or `__`, `*` or `_`, `~~` or `~`, a fence of backticks. */
  marker: string;
  /** Whether it sits in a span of its own type (bold in bold): it shows nothing more. */
  repeated: boolean;
}

/** Bold, italic, strikethrough and inline code: a cut inside one would leave its markers unmatched. */
const BALANCED_INLINE = new Set<string>(['strong', 'em', 'del', 'codespan'] satisfies SpanType[]);
const isBalanced = (type: string): type is SpanType => BALANCED_INLINE.has(type);

/** Where a link or image sits in its paragraph, brackets and target included. */
interface LinkRange {
  from: number;
  to: number;
}

/**
 * The balanced inline spans of `tokens` (inline tokens whose raw text starts at `offset`), nested
 * ones included, outer ones first, and the links into `links`; returns the longest chain of nested
 * markers, one side.
 */
function collectSpans(
  tokens: Token[] | undefined,
  offset: number,
  out: InlineSpan[],
  links: LinkRange[],
  within: readonly SpanType[] = [],
): number {
  let at = offset;
  let deepest = 0;
  for (const token of tokens ?? []) {
    const type = token.type;
    if (isBalanced(type)) {
      const raw = token.raw;
      const width =
        type === 'strong'
          ? 2
          : type === 'em'
            ? 1
            : type === 'del'
              ? /^~~/.test(raw)
                ? 2
                : 1
              : (/^`+/.exec(raw)?.[0].length ?? 1);
      out.push({
        type,
        from: at + width,
        to: at + raw.length - width,
        marker: raw.slice(0, width),
        repeated: within.includes(type),
      });
      const inner =
        'tokens' in token && type !== 'codespan'
          ? collectSpans(token.tokens, at + width, out, links, [...within, type])
          : 0;
      deepest = Math.max(deepest, width + inner);
    } else if (type === 'link' || type === 'image') {
      links.push({ from: at, to: at + token.raw.length });
    }
    at += token.raw.length;
  }
  return deepest;
}

/**
 * A span inside one of its own type (strikethrough in strikethrough) shows nothing more, and where both
 * are closed or reopened their markers would run together (`~~~` does not close, and opens a code
 * block at a line's start; `**x**` for italic in italic reads as bold) or pair up wrongly (`~**~`):
 * drops the inner one's markers from `text` and moves the other spans to match.
 */
function withoutRepeatedSpans(
  text: string,
  spans: InlineSpan[],
): { text: string; spans: InlineSpan[]; shift: (pos: number) => number } {
  const nested = spans.filter((span) => span.repeated);
  if (nested.length === 0) return { text, spans, shift: (pos) => pos };
  const dropped = nested
    .flatMap((span) =>
      [span.from - span.marker.length, span.to].map((at) => ({ at, width: span.marker.length })),
    )
    .sort((a, b) => a.at - b.at);
  const shift = (pos: number) => pos - dropped.reduce((n, d) => (d.at < pos ? n + d.width : n), 0);
  let kept = '';
  let last = 0;
  for (const { at, width } of dropped) {
    kept += text.slice(last, at);
    last = at + width;
  }
  return {
    text: kept + text.slice(last),
    spans: spans
      .filter((span) => !nested.includes(span))
      .map((span) => ({ ...span, from: shift(span.from), to: shift(span.to) })),
    shift,
  };
}

/** `text` with the whitespace between `from` and `to` replaced, length kept: no cut falls there. */
function maskWhitespace(text: string, from: number, to: number): string {
  return text.slice(0, from) + text.slice(from, to).replace(/\s/g, '\uE000') + text.slice(to);
}

/** `text` with the whitespace at either end of a code span's content replaced, length kept. */
function maskCodeEdges(text: string, span: InlineSpan): string {
  const code = text.slice(span.from, span.to);
  const lead = span.from + code.length - code.trimStart().length;
  const trail = span.to - (code.length - code.trimEnd().length);
  const mask = (s: string, from: number, to: number) =>
    s.slice(0, from) + '\uE000'.repeat(Math.max(to - from, 0)) + s.slice(to);
  return mask(mask(text, span.from, lead), trail, span.to);
}

/** The marker of a span closed and reopened within one piece: `*` and `_` swapped. */
const otherMarker = (marker: string) => marker.replace(/./g, marker[0] === '*' ? '_' : '*');

/**
 * A paragraph too long for one message, cut like any text; a cut inside bold, italic, strikethrough
 * or inline code closes the span at the end of one piece and opens it again at the start of the next,
 * so neither shows a stray `**`. Room for those markers is kept under `limit`.
 *
 * What we write must parse as meant: each piece is trimmed, because a marker next to whitespace
 * neither opens nor closes; a backslash ending a piece must not escape the marker after it; a span
 * reopened and closed again in the same piece swaps `*` and `_` when what it wraps starts or ends
 * with the same character (`**x**` for an italic in an italic would read as bold, `***x***` nests
 * the other way); inline code that starts or ends with a backtick gets a space inside its fence.
 */
function splitParagraph(token: Tokens.Paragraph, limit: number): string[] {
  const found: InlineSpan[] = [];
  const links: LinkRange[] = [];
  const chain = token.raw.startsWith(token.text) ? collectSpans(token.tokens, 0, found, links) : 0;
  // Besides the markers: a space padding inline code, or a backslash doubled, on each side.
  const reserve = 2 * chain + 2;
  if ((found.length === 0 && links.length === 0) || reserve * 4 > limit) {
    return balanceFences(splitText(token.raw, limit));
  }
  const { text, spans, shift } = withoutRepeatedSpans(token.text, found);

  // Cut a copy in which the whitespace between code spans' fences and their code is masked (a cut
  // there would leave a fence on one side and all its code on the other), and the whitespace inside
  // links: half a link shows its brackets and target as written.
  const masked = spans.reduce(
    (out, span) => (span.type === 'codespan' ? maskCodeEdges(out, span) : out),
    links.reduce((out, link) => maskWhitespace(out, shift(link.from), shift(link.to)), text),
  );
  // Each piece is a slice of `text` (ends trimmed), in order: find where it starts.
  const pieces: string[] = [];
  const starts: number[] = [];
  let cursor = 0;
  for (const cut of splitText(masked, limit - reserve)) {
    const length = cut.trim().length;
    const start = masked.indexOf(cut.trim(), cursor);
    if (start < 0) return balanceFences(splitText(token.raw, limit));
    pieces.push(text.slice(start, start + length));
    starts.push(start);
    cursor = start + length;
  }
  // The spans each cut (between piece i and i + 1) falls inside, outer ones first.
  const crossing = starts.slice(1).map((nextStart, i) => {
    const end = (starts[i] ?? 0) + (pieces[i]?.length ?? 0);
    return spans.filter((span) => span.from < end && span.to > nextStart);
  });
  return pieces.map((piece, i) => {
    const reopened = crossing[i - 1] ?? [];
    const closed = crossing[i] ?? [];
    const innerOpen = reopened.at(-1);
    const innerClose = closed.at(-1);
    let body = piece;
    // An odd run of backslashes at the end: the last one stood before whitespace, where it is a line
    // break before a newline (nothing at a message's end) and otherwise a backslash to keep literal.
    if (innerClose?.type !== 'codespan' && /(^|[^\\])(\\\\)*\\$/.test(body)) {
      const end = (starts[i] ?? 0) + piece.length;
      if (text[end] === '\n') body = body.slice(0, -1);
      else if (innerClose) body += '\\';
    }
    if (innerOpen?.type === 'codespan' && body.startsWith('`')) body = ` ${body}`;
    if (innerClose?.type === 'codespan' && body.endsWith('`')) body = `${body} `;
    // Spans both reopened and closed here contain the piece, so they are the outer ones of both lists.
    // From the inside out, each takes the other of `*`/`_` when what it wraps starts or ends with its
    // own (marked reads `~` as a letter, so look past strikethrough markers).
    const markers = new Map<InlineSpan, string>();
    const markerOf = (span: InlineSpan) => markers.get(span) ?? span.marker;
    const wrapping = reopened.filter((span) => closed.includes(span));
    for (let depth = wrapping.length - 1; depth >= 0; depth--) {
      const span = wrapping[depth];
      if (span?.type !== 'strong' && span?.type !== 'em') continue;
      const opensInside = reopened
        .slice(depth + 1)
        .map(markerOf)
        .join('');
      const closesInside = closed
        .slice(depth + 1)
        .map(markerOf)
        .reverse()
        .join('');
      const first = `${opensInside}${body}`.replace(/^~+/, '')[0];
      const last = `${body}${closesInside}`.replace(/~+$/, '').at(-1);
      if (first === span.marker[0] || last === span.marker[0]) markers.set(span, otherMarker(span.marker));
    }
    const opens = reopened.map(markerOf).join('');
    const closes = closed.map(markerOf).reverse().join('');
    return `${opens}${body}${closes}`;
  });
}

/** Cuts Markdown into chunks of at most `limit` source characters on block boundaries first. */
export function chunkMarkdown(markdown: string, limit = TELEGRAM_MESSAGE_LIMIT): string[] {
  const chunks: string[] = [];
  let current = '';
  const flush = () => {
    if (current.trim() !== '') chunks.push(current.trim());
    current = '';
  };
  for (const token of Lexer.lex(markdown)) {
    const raw = token.raw;
    if (current.length + raw.length <= limit) {
      current += raw;
      continue;
    }
    if (raw.length <= limit) {
      flush();
      current = raw;
      continue;
    }
    // A block too long for one message: what came before it ("Here is the code:") goes with its
    // first piece, cut to leave room, unless that takes more messages than sending it alone.
    const alone = splitBlock(token, limit);
    const room = limit - current.length;
    const together = current.trim() !== '' && room >= limit / 4 ? splitBlock(token, room) : undefined;
    if (together && together.length <= alone.length) {
      chunks.push(`${current}${together[0] ?? ''}`.trim());
      current = '';
      chunks.push(...together.slice(1));
    } else {
      flush();
      chunks.push(...alone);
    }
  }
  flush();
  return chunks;
}

/** A block longer than `limit`, cut by its kind: code in fenced pieces, lists between items, and so on. */
function splitBlock(token: Token, limit: number): string[] {
  if (token.type === 'code') return splitCode(token as Token & { type: 'code' }, limit);
  if (token.type === 'list') return splitList(token as Tokens.List, limit);
  if (token.type === 'table') return splitTable(token as Tokens.Table, limit);
  if (token.type === 'paragraph') return splitParagraph(token as Tokens.Paragraph, limit);
  return balanceFences(splitText(token.raw, limit));
}

export interface TelegramChunk {
  /** HTML for parse_mode 'HTML'. */
  html: string;
  /** The same chunk without formatting, for the fallback when Telegram rejects the entities. */
  plain: string;
  /** The Markdown this chunk was formatted from: what the conversation history stores. */
  markdown: string;
}

/**
 * The answer's link reference definitions (`[docs]: https://…`) written out again, to append to each
 * chunk's source: chunks are formatted one by one, and a `[text][docs]` in one chunk whose definition
 * went into another would show as written. Definitions render as nothing; footnotes (`[^1]:`) are text.
 */
function linkDefinitions(markdown: string): string {
  if (!/^ {0,3}\[[^\]]+\]:/m.test(markdown)) return '';
  const lines = Object.entries(Lexer.lex(markdown).links)
    .filter(([label, { href }]) => !label.startsWith('^') && !/[<>\n]/.test(href ?? ''))
    .map(([label, { href, title }]) => {
      const quoted = title ? ` "${title.replace(/\s+/g, ' ').replace(/["\\]/g, '\\$&')}"` : '';
      return `[${label}]: <${href ?? ''}>${quoted}`;
    });
  return lines.length > 0 ? `\n\n${lines.join('\n')}` : '';
}

/** Formats a Claude answer into Telegram messages, each within the limit once parsed. */
export function formatForTelegram(markdown: string, limit = TELEGRAM_MESSAGE_LIMIT): TelegramChunk[] {
  const out: TelegramChunk[] = [];
  const definitions = linkDefinitions(markdown);
  const visit = (source: string, sourceLimit: number, depth: number) => {
    const html = markdownToTelegramHtml(source + definitions);
    const plain = markdownToPlainText(source + definitions);
    const visibleText = telegramHtmlVisibleText(html);
    const visible = Math.max(visibleText.length, plain.length);
    if (visible <= limit) {
      // Tags around nothing (an empty code block) are refused by Telegram as "message text is empty".
      if (visibleText.trim() !== '') out.push({ html, plain, markdown: source });
      return;
    }
    if (depth >= 3) {
      // Formatting keeps growing past the limit (pathological input): send it unformatted, cut to fit.
      for (const piece of splitText(plain, limit)) {
        out.push({ html: escapeHtml(piece), plain: piece, markdown: piece });
      }
      return;
    }
    const smaller = Math.max(sourceLimit - (visible - limit) - 64, 256);
    for (const piece of chunkMarkdown(source, smaller)) visit(piece, smaller, depth + 1);
  };
  for (const piece of chunkMarkdown(markdown, limit)) visit(piece, limit, 0);
  return out;
}
