import { Lexer, type Token, type Tokens } from 'marked';
import { decodeEntities } from './entities';

/*
 * Claude writes CommonMark/GFM; Telegram accepts a small HTML subset. We parse with `marked`'s lexer
 * (a maintained, spec-tested GFM parser) and render its token tree ourselves: every tag we emit is
 * opened and closed by the same function, so the output is balanced by construction, and every piece
 * of text goes through one escaper. Regex rewriting of Markdown cannot promise either.
 */

type Mode = 'html' | 'plain';

/** Escapes text for Telegram's HTML parse mode. */
export const escapeHtml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const escapeAttr = (s: string) => escapeHtml(s).replace(/"/g, '&quot;');

const SAFE_SCHEMES = new Set(['http:', 'https:', 'tg:']);

/** The href when it is an absolute http(s)/tg URL, else undefined (javascript:, data:, relative...). */
export function safeHref(href: string): string | undefined {
  try {
    const url = new URL(href.trim());
    return SAFE_SCHEMES.has(url.protocol) ? url.href : undefined;
  } catch {
    return undefined;
  }
}

/** A code block's language for `class="language-…"`: a short plain name, else '' (none shown). */
export function codeLanguage(info: unknown): string {
  return typeof info === 'string' && /^[A-Za-z0-9_+#.-]{1,32}$/.test(info) ? info : '';
}

/** Raw HTML shows as written, but for `<br>`, which answers use for a line break in a table cell. */
const BR_TAG = /^<br\s*\/?>\s*$/i;

function wrap(mode: Mode, tag: string, inner: string): string {
  if (mode === 'plain' || inner === '') return inner;
  return `<${tag}>${inner}</${tag}>`;
}

function inline(tokens: Token[] | undefined, mode: Mode, inLink = false): string {
  if (!tokens) return '';
  return tokens.map((t) => inlineToken(t, mode, inLink)).join('');
}

function inlineToken(token: Token, mode: Mode, inLink: boolean): string {
  const text = (s: string) => (mode === 'html' ? escapeHtml(s) : s);
  // Outside code, `&amp;` and `&mdash;` stand for the characters they name.
  const prose = (s: string) => text(decodeEntities(s));
  switch (token.type) {
    case 'strong':
      return wrap(mode, 'b', inline(token.tokens, mode, inLink));
    case 'em':
      return wrap(mode, 'i', inline(token.tokens, mode, inLink));
    case 'del':
      return wrap(mode, 's', inline(token.tokens, mode, inLink));
    case 'codespan':
      return wrap(mode, 'code', text(token.text));
    case 'br':
      return '\n';
    case 'link':
    case 'image': {
      // An autolink (`<https://x.y>`, a bare URL) is literal: its text is the URL as written.
      const autolink = token.type === 'link' && (token as Tokens.Link).autolink === true;
      const written = autolink ? token.href : decodeEntities(token.href);
      const label =
        token.type === 'image'
          ? prose(token.text || token.href)
          : autolink
            ? text(token.text)
            : inline(token.tokens, mode, true) || text(written);
      const href = safeHref(written);
      // Plain text names the target after the label, unless the label already is the URL.
      const showsTarget = href && !autolink && label !== written && label !== href;
      if (mode === 'plain') return showsTarget ? `${label} (${href})` : label;
      if (!href || inLink) return label;
      return `<a href="${escapeAttr(href)}">${label}</a>`;
    }
    case 'text':
      return 'tokens' in token && token.tokens ? inline(token.tokens, mode, inLink) : prose(token.text);
    case 'escape':
      return text(token.text);
    case 'html':
      return BR_TAG.test(token.raw) ? '\n' : text(token.raw);
    case 'checkbox':
      return (token as Tokens.Checkbox).checked ? '☑ ' : '☐ ';
    default:
      return text('raw' in token ? String(token.raw) : '');
  }
}

function list(token: Tokens.List, mode: Mode, depth: number, inQuote: boolean): string {
  const start = typeof token.start === 'number' ? token.start : 1;
  const indent = '  '.repeat(depth);
  return token.items
    .map((item, index) => {
      const bullet = token.ordered ? `${start + index}. ` : '• ';
      const task = item.task ? (item.checked ? '☑ ' : '☐ ') : '';
      const body = blocks(
        item.tokens.filter((t) => t.type !== 'checkbox'),
        mode,
        depth + 1,
        inQuote,
      );
      return `${indent}${bullet}${task}${body.replace(/^\s+/, '')}`;
    })
    .join('\n');
}

function block(token: Token, mode: Mode, depth: number, inQuote: boolean): string {
  const text = (s: string) => (mode === 'html' ? escapeHtml(s) : s);
  switch (token.type) {
    case 'space':
      return '';
    case 'def':
      // A link definition is only a target; a footnote (`[^1]: Smith2019`) parses as one but is text.
      return (token as Tokens.Def).tag.startsWith('^') ? text(token.raw.trim()) : '';
    case 'paragraph':
      return inline(token.tokens, mode);
    case 'text':
      return 'tokens' in token && token.tokens
        ? inline(token.tokens, mode)
        : text(decodeEntities(token.text));
    case 'heading':
      return wrap(mode, 'b', inline(token.tokens, mode));
    case 'code': {
      const code = text(String(token.text).replace(/\n$/, ''));
      if (mode === 'plain') return code;
      const lang = codeLanguage(token.lang);
      return lang ? `<pre><code class="language-${lang}">${code}</code></pre>` : `<pre>${code}</pre>`;
    }
    case 'blockquote': {
      // Telegram does not nest blockquotes: an inner quote renders as its content.
      const inner = blocks(token.tokens ?? [], mode, depth, true);
      return inQuote ? inner : wrap(mode, 'blockquote', inner);
    }
    case 'list':
      return list(token as Tokens.List, mode, depth, inQuote);
    case 'hr':
      return '———';
    case 'table': {
      const table = token as Tokens.Table;
      const row = (cells: Tokens.TableCell[]) => cells.map((c) => inline(c.tokens, mode)).join(' | ');
      return [wrap(mode, 'b', row(table.header)), ...table.rows.map(row)].join('\n');
    }
    case 'html':
      return BR_TAG.test(token.raw) ? '' : text(token.raw.replace(/\n+$/, ''));
    default:
      return inlineToken(token, mode, false);
  }
}

function blocks(tokens: Token[], mode: Mode, depth: number, inQuote: boolean): string {
  const parts: string[] = [];
  for (const token of tokens) {
    const out = block(token, mode, depth, inQuote);
    if (out !== '') parts.push(out);
  }
  return parts.join(depth > 0 ? '\n' : '\n\n');
}

/** Converts Claude's Markdown to Telegram's HTML parse mode (balanced tags, everything else escaped). */
export function markdownToTelegramHtml(markdown: string): string {
  return blocks(Lexer.lex(markdown), 'html', 0, false).trim();
}

/** The same text with the formatting stripped, for when Telegram rejects the entities anyway. */
export function markdownToPlainText(markdown: string): string {
  return blocks(Lexer.lex(markdown), 'plain', 0, false).trim();
}

/** The text Telegram would display for HTML we produced (tags removed, the four entities decoded). */
export function telegramHtmlVisibleText(html: string): string {
  return html
    .replace(/<[^>]*>/g, '')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&amp;/g, '&');
}
