import { Lexer, type Token, type Tokens } from 'marked';
import { escapeHtml, markdownToPlainText, markdownToTelegramHtml, telegramHtmlVisibleText } from './format';

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

const SEPARATORS: RegExp[] = [/\n\s*\n/g, /\n/g, /(?<=[.!?…])\s+/g, /\s+/g];

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

function hardCut(text: string, limit: number): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < text.length) {
    let end = Math.min(i + limit, text.length);
    const code = text.charCodeAt(end - 1);
    if (end < text.length && code >= 0xd800 && code <= 0xdbff) end--; // keep surrogate pairs whole
    out.push(text.slice(i, end));
    i = end;
  }
  return out;
}

/** A fenced code block too long for one message: close the fence and reopen it in the next chunk. */
function splitCode(token: Token & { type: 'code' }, limit: number): string[] {
  const lang = typeof token.lang === 'string' ? token.lang : '';
  const open = `\`\`\`${lang}\n`;
  const close = '\n```';
  const budget = Math.max(limit - open.length - close.length, 1);
  return splitText(String(token.text), budget, 1).map((piece) => `${open}${piece}${close}`);
}

/** A fence line: indentation, three or more backticks or tildes, and (opening only) an info string. */
const FENCE = /^(\s*)(`{3,}|~{3,})(.*)$/;

/**
 * Pieces of one block cut apart (a long list whose item holds a code block) each as valid Markdown on
 * its own: a piece that ends inside a fenced block closes it, and the next reopens it with the same
 * fence line, so the code stays code and what follows the fence is not read as code.
 */
function balanceFences(pieces: string[]): string[] {
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
    const numbered = token.ordered ? piece.replace(/^(\s*)\d{1,9}([.)])/, `$1${start + index}$2`) : piece;
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
    for (const [part, piece] of balanceFences(splitText(item.raw, limit)).entries()) {
      if (part === 0) push(piece, index);
      else pieces.push(piece);
    }
  }
  if (current !== '') push(current, first);
  return pieces;
}

/** Where an inline span's content sits in its paragraph, and the markers around it. */
interface InlineSpan {
  from: number;
  to: number;
  open: string;
  close: string;
}

/** Bold, italic, strikethrough and inline code: a cut inside one would leave its markers unmatched. */
const BALANCED_INLINE = new Set(['strong', 'em', 'del', 'codespan']);

/**
 * The balanced inline spans of `tokens` (inline tokens whose raw text starts at `offset`), nested
 * ones included; returns the longest chain of nested markers, one side.
 */
function collectSpans(tokens: Token[] | undefined, offset: number, out: InlineSpan[]): number {
  let at = offset;
  let deepest = 0;
  for (const token of tokens ?? []) {
    if (BALANCED_INLINE.has(token.type)) {
      const raw = token.raw;
      const width =
        token.type === 'strong'
          ? 2
          : token.type === 'em'
            ? 1
            : token.type === 'del'
              ? /^~~/.test(raw)
                ? 2
                : 1
              : (/^`+/.exec(raw)?.[0].length ?? 1);
      out.push({
        from: at + width,
        to: at + raw.length - width,
        open: raw.slice(0, width),
        close: raw.slice(-width),
      });
      const inner =
        'tokens' in token && token.type !== 'codespan' ? collectSpans(token.tokens, at + width, out) : 0;
      deepest = Math.max(deepest, width + inner);
    }
    at += token.raw.length;
  }
  return deepest;
}

/**
 * A paragraph too long for one message, cut like any text; a cut inside bold, italic, strikethrough
 * or inline code closes the span at the end of one piece and opens it again at the start of the next,
 * so neither shows a stray `**`. Room for those markers is kept under `limit`.
 */
function splitParagraph(token: Tokens.Paragraph, limit: number): string[] {
  const text = token.text;
  const spans: InlineSpan[] = [];
  const chain = token.raw.startsWith(text) ? collectSpans(token.tokens, 0, spans) : 0;
  const reserve = 2 * chain;
  if (spans.length === 0 || reserve * 4 > limit) return balanceFences(splitText(token.raw, limit));

  const pieces = splitText(text, limit - reserve);
  // Each piece is a slice of `text` (ends trimmed), in order: find where it starts.
  const starts: number[] = [];
  let cursor = 0;
  for (const piece of pieces) {
    const start = text.indexOf(piece, cursor);
    if (start < 0) return balanceFences(splitText(token.raw, limit));
    starts.push(start);
    cursor = start + piece.length;
  }
  // The spans each cut (between piece i and i + 1) falls inside, outer ones first.
  const crossing = starts.slice(1).map((nextStart, i) => {
    const end = (starts[i] ?? 0) + (pieces[i]?.length ?? 0);
    return spans.filter((span) => span.from < end && span.to > nextStart);
  });
  return pieces.map((piece, i) => {
    const opens = (crossing[i - 1] ?? []).map((span) => span.open).join('');
    const closes = (crossing[i] ?? [])
      .map((span) => span.close)
      .reverse()
      .join('');
    return `${opens}${piece}${closes}`;
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
    flush();
    if (raw.length <= limit) current = raw;
    else if (token.type === 'code') chunks.push(...splitCode(token as Token & { type: 'code' }, limit));
    else if (token.type === 'list') chunks.push(...splitList(token as Tokens.List, limit));
    else if (token.type === 'paragraph') chunks.push(...splitParagraph(token as Tokens.Paragraph, limit));
    else chunks.push(...balanceFences(splitText(raw, limit)));
  }
  flush();
  return chunks;
}

export interface TelegramChunk {
  /** HTML for parse_mode 'HTML'. */
  html: string;
  /** The same chunk without formatting, for the fallback when Telegram rejects the entities. */
  plain: string;
  /** The Markdown this chunk was formatted from: what the conversation history stores. */
  markdown: string;
}

/** Formats a Claude answer into Telegram messages, each within the limit once parsed. */
export function formatForTelegram(markdown: string, limit = TELEGRAM_MESSAGE_LIMIT): TelegramChunk[] {
  const out: TelegramChunk[] = [];
  const visit = (source: string, sourceLimit: number, depth: number) => {
    const html = markdownToTelegramHtml(source);
    const plain = markdownToPlainText(source);
    const visible = Math.max(telegramHtmlVisibleText(html).length, plain.length);
    if (visible <= limit) {
      if (html.trim() !== '') out.push({ html, plain, markdown: source });
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
