import { describe, expect, it } from 'vitest';
import { markdownToPlainText, markdownToTelegramHtml, safeHref } from '../../lib/telegram/format';
import { parseTelegramHtml } from '../support/fake-telegram';

describe('markdownToTelegramHtml', () => {
  it.each([
    ['**bold** and *it* and ~~gone~~', '<b>bold</b> and <i>it</i> and <s>gone</s>'],
    ['**bold *nested* text**', '<b>bold <i>nested</i> text</b>'],
    ['`a < b && c > d`', '<code>a &lt; b &amp;&amp; c &gt; d</code>'],
    ['5 < 6 & 7 > 3 "quoted"', '5 &lt; 6 &amp; 7 &gt; 3 "quoted"'],
    ['# Title', '<b>Title</b>'],
    ['[site](https://example.com/a?b=1&c=2)', '<a href="https://example.com/a?b=1&amp;c=2">site</a>'],
    ['[bot](tg://resolve?domain=x)', '<a href="tg://resolve?domain=x">bot</a>'],
    ['[click](javascript:alert(1))', 'click'],
    ['[data](data:text/html,hi)', 'data'],
    ['[rel](/relative/path)', 'rel'],
    ['<script>alert(1)</script>', '&lt;script&gt;alert(1)&lt;/script&gt;'],
    ['one<br>two<BR/>three <br /> <kbd>x</kbd>', 'one\ntwo\nthree \n &lt;kbd&gt;x&lt;/kbd&gt;'],
    ['| a | b |\n|---|---|\n| 1<br>2 | 3 |', '<b>a | b</b>\n1\n2 | 3'],
    ['<br>\n\nafter', 'after'],
    ['> quoted **text**', '<blockquote>quoted <b>text</b></blockquote>'],
    ['- one\n- two', '• one\n• two'],
    ['See [^1].\n\n[^1]: Smith2019\n\n[a]: https://example.com', 'See ^1.\n\n[^1]: Smith2019'],
    ['3. three\n4. four', '3. three\n4. four'],
    ['**unclosed bold', '**unclosed bold'],
    ['*unbalanced **mix*', '*unbalanced *<i>mix</i>'],
  ])('%j', (markdown, html) => {
    expect(markdownToTelegramHtml(markdown)).toBe(html);
  });

  it('shows character references as the characters they name, except in code', () => {
    const markdown = 'AT&amp;T &mdash; &copy; 2026 &#169; &#x41; &nbsp;&bogus; `&amp;`';
    expect(markdownToTelegramHtml(markdown)).toBe(
      'AT&amp;T — © 2026 © A \u00a0&amp;bogus; <code>&amp;amp;</code>',
    );
    expect(markdownToPlainText(markdown)).toBe('AT&T — © 2026 © A \u00a0&bogus; &amp;');
    expect(markdownToTelegramHtml('[Q&amp;A](https://e.x/?a=1&amp;b=2) **&lt;b&gt;** x &amp;lt;')).toBe(
      '<a href="https://e.x/?a=1&amp;b=2">Q&amp;A</a> <b>&lt;b&gt;</b> x &amp;lt;',
    );
    expect(markdownToTelegramHtml('```\n&amp;\n```')).toBe('<pre>&amp;amp;</pre>');
  });

  it('renders fenced code with its language, escaped', () => {
    const html = markdownToTelegramHtml('```ts\nif (a < b && c) { x = "<b>"; }\n```');
    expect(html).toBe(
      '<pre><code class="language-ts">if (a &lt; b &amp;&amp; c) { x = "&lt;b&gt;"; }</code></pre>',
    );
  });

  it('drops a language that could break out of the class attribute', () => {
    expect(markdownToTelegramHtml('```a"onclick\nx\n```')).toBe('<pre>x</pre>');
  });

  it('escapes quotes inside href attributes', () => {
    const html = markdownToTelegramHtml('[x](https://example.com/?q=%22a%22&r="b")');
    expect(html).not.toMatch(/href="[^"]*"[^>]/);
    expect(() => parseTelegramHtml(html)).not.toThrow();
  });

  it('flattens nested blockquotes (Telegram does not nest them)', () => {
    expect(markdownToTelegramHtml('> a\n> > b')).toBe('<blockquote>a\n\nb</blockquote>');
    // Also through a list inside the quote.
    expect(markdownToTelegramHtml('> - a\n>   > b')).toBe('<blockquote>• a\nb</blockquote>');
  });

  it('always produces HTML the Bot API parser accepts', () => {
    const nasty = [
      '***triple*** __under__ _x_ `<>&` **a [b](https://x.y "t") c**',
      '> quote\n> ```\n> code <\n> ```',
      '| a | <b> |\n|---|---|\n| & | "q" |',
      '- [x] done\n- [ ] todo\n  1. nested',
      '![img](https://x.y/p.png) and ![bad](javascript:1)',
      '**bold _mixed** close_',
      '<b>raw html</b> <a href="javascript:x">x</a>',
    ];
    for (const md of nasty) expect(() => parseTelegramHtml(markdownToTelegramHtml(md))).not.toThrow();
  });
});

describe('markdownToPlainText', () => {
  it('strips formatting and keeps the words, unescaped', () => {
    expect(markdownToPlainText('**bold** `a<b` [l](https://e.x/)\n\n```\nx & y\n```')).toBe(
      'bold a<b l (https://e.x/)\n\nx & y',
    );
  });

  it('shows a URL once when the link is the URL itself', () => {
    expect(
      markdownToPlainText('See https://example.com, <https://e.x> or www.e.x, [https://e.x](https://e.x).'),
    ).toBe('See https://example.com, https://e.x or www.e.x, https://e.x.');
    expect(markdownToPlainText('[docs](https://e.x/docs)')).toBe('docs (https://e.x/docs)');
  });
});

describe('safeHref', () => {
  it.each([
    ['https://a.b/c', 'https://a.b/c'],
    ['http://a.b', 'http://a.b/'],
    ['tg://user?id=1', 'tg://user?id=1'],
    ['javascript:alert(1)', undefined],
    ['JAVASCRIPT:alert(1)', undefined],
    ['mailto:a@b.c', undefined],
    ['//a.b', undefined],
  ])('%s', (href, expected) => {
    expect(safeHref(href)).toBe(expected);
  });
});
