// The chat page's Markdown: what a reply may use (tables, nested lists,
// highlighted code with a copy button), that no input can produce markup,
// a link or a load of its own choosing, and that a streaming reply renders
// block by block to the same HTML as the whole, at a cost linear in its length.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { escapeHtml, IncrementalMarkdown, renderMarkdown as md } from '../../client/page/markdown.js';

/** The HTML without the line breaks markdown-it puts between tags. */
const flat = (html: string) => html.replace(/(?<=>)\n|\n(?=<)/g, '').trim();
const LINK = 'target="_blank" rel="noopener noreferrer nofollow"';

test('paragraphs, line breaks, headings, rules, emphasis, strikethrough', () => {
  assert.is(flat(md('one\ntwo\n\nthree')), '<p>one<br>two</p><p>three</p>');
  assert.is(flat(md('# Title\n### Sub ###')), '<h1>Title</h1><h3>Sub</h3>');
  assert.is(flat(md('a\n\n---\n\nb')), '<p>a</p><hr><p>b</p>');
  assert.is(flat(md('**b** and *e* and __B__ and _E_ and ~~gone~~')), '<p><strong>b</strong> and <em>e</em> and <strong>B</strong> and <em>E</em> and <s>gone</s></p>');
  assert.is(flat(md('`a **not bold** <b>`')), '<p><code>a **not bold** &lt;b&gt;</code></p>');
  assert.is(flat(md('snake_case_name stays')), '<p>snake_case_name stays</p>');
});

test('tables, with column alignment as classes (the page allows no inline style)', () => {
  const html = flat(md('| Name | Qty |\n|:-----|----:|\n| tea  | 2   |\n| cake | 10  |'));
  assert.is(
    html,
    '<div class="table-wrap"><table><thead><tr><th class="align-left">Name</th><th class="align-right">Qty</th></tr></thead>' +
      '<tbody><tr><td class="align-left">tea</td><td class="align-right">2</td></tr><tr><td class="align-left">cake</td><td class="align-right">10</td></tr></tbody></table></div>',
  );
  assert.not.match(html, /style=/);
});

test('nested lists keep their nesting; ordered lists keep their start', () => {
  assert.is(flat(md('- a\n  - b\n    - c\n- d')), '<ul><li>a<ul><li>b<ul><li>c</li></ul></li></ul></li><li>d</li></ul>');
  assert.is(flat(md('1. one\n   - sub\n2. two')), '<ol><li>one<ul><li>sub</li></ul></li><li>two</li></ol>');
  assert.is(flat(md('3. c\n4. d')), '<ol start="3"><li>c</li><li>d</li></ol>');
});

test('fenced code: highlighted when the language is known, escaped always, with a copy button', () => {
  const html = md('```ts\nconst a = 1 < 2 && "x";\n```');
  assert.match(html, /^<div class="code-block"><div class="code-head"><span class="code-lang">ts<\/span><button type="button" class="copy-code" aria-label="Copy code">Copy<\/button><\/div>/);
  assert.match(html, /<pre><code class="code hljs language-ts"><span class="hljs-keyword">const<\/span>/);
  assert.match(html, /&lt; <span class="hljs-number">2<\/span> &amp;&amp; <span class="hljs-string">&quot;x&quot;<\/span>/);
  // Unknown language, or none: plain, escaped text.
  assert.match(md('```brainfuck\n<script>\n```'), /<code class="code language-brainfuck">&lt;script&gt;<\/code>/);
  assert.match(md('```\n**no**\n```'), /<span class="code-lang">text<\/span>.*<code class="code">\*\*no\*\*<\/code>/s);
  // An unclosed fence (a reply still streaming) runs to the end.
  assert.match(md('```py\nprint(1)'), /<code class="code hljs language-py"><span class="hljs-built_in">print<\/span>/);
  // A fence's info string cannot break out of its class.
  assert.not.match(md('```"><img src=x>\nx\n```'), /<img/);
});

test('links: http(s) and mailto only; bare URLs are linked, bare file names are not', () => {
  assert.is(flat(md('[site](https://example.com/a?b=1&c=2)')), `<p><a href="https://example.com/a?b=1&amp;c=2" ${LINK}>site</a></p>`);
  assert.is(flat(md('see https://example.com/x.')), `<p>see <a href="https://example.com/x" ${LINK}>https://example.com/x</a>.</p>`);
  assert.is(flat(md('edit main.py or example.com')), '<p>edit main.py or example.com</p>');
  for (const bad of ['javascript:alert(1)', 'JAVASCRIPT:alert(1)', 'data:text/html,<b>', 'vbscript:x', 'file:///etc/passwd', '/relative/path']) {
    const html = md(`[x](${bad})`);
    assert.not.match(html, /<a /, `${bad}: ${html}`);
  }
  assert.not.match(md('<javascript:alert(1)>'), /<a /);
  assert.not.match(md('[a](https://a.b/"onmouseover="alert(1))'), /"\s*onmouseover/);
});

test('images load nothing: an http(s) image is a link to it, anything else stays text', () => {
  assert.is(flat(md('![a cat](https://e.com/cat.png)')), `<p><a href="https://e.com/cat.png" ${LINK} class="image-link">a cat</a></p>`);
  for (const src of ['data:image/png;base64,AAAA', 'javascript:alert(1)', 'x" onerror="alert(1)']) assert.not.match(md(`![x](${src})`), /<img|<a /, src);
  assert.not.match(md('<img src=x onerror=alert(1)>'), /<img/);
});

const ALLOWED_TAG = /^(p|br|h[1-6]|strong|em|s|code|pre|ul|ol|li|blockquote|hr|a|div|span|button|table|thead|tbody|tr|th|td)$/;
const ALLOWED_ATTRS =
  /^(href="(https?:\/\/|mailto:)[^"<>]*" target="_blank" rel="noopener noreferrer nofollow"( class="image-link")?|class="(code-block|code-head|code-lang|table-wrap|align-(left|right|center)|code( hljs)?( language-[\w+#.-]+)?|hljs-[\w ._-]+)"|type="button" class="copy-code" aria-label="Copy code"|start="\d+")$/;

/** Every tag of `html` is one the renderer itself writes, with only the attributes it writes. */
function onlyOwnMarkup(input: string): void {
  const html = md(input);
  for (const tag of html.matchAll(/<\/?([a-zA-Z0-9]+)([^>]*)>/g)) {
    assert.ok(ALLOWED_TAG.test(tag[1]!), `${JSON.stringify(input)} produced <${tag[1]}>`);
    const attrs = tag[2]!.trim();
    if (attrs) assert.match(attrs, ALLOWED_ATTRS, `${JSON.stringify(input)}: ${attrs}`);
  }
}

test('no input yields a tag or attribute of its own', () => {
  const attacks = [
    '<script>alert(1)</script>',
    '<img src=x onerror=alert(1)>',
    '<iframe src="https://e.com"></iframe>',
    '<a href="javascript:alert(1)">x</a>',
    '<style>body{display:none}</style>',
    '**<b>bold</b>**',
    '[<img src=x>](https://e.com)',
    '# <h1>x</h1>',
    '- <li>x</li>',
    '> <blockquote>',
    '`</code><script>`',
    '```"><script>\nx\n```',
    '```js" onload="x\nx\n```',
    '[a](https://e.com/"><script>alert(1)</script>)',
    '[a](https://e.com "title\\" onmouseover=\\"x")',
    'https://e.com/<script>',
    '| <b>x</b> | y |\n|---|---|\n| <img src=x> | z |',
    '![<img src=x>](https://e.com/a.png)',
    '&lt;script&gt;',
    '<!-- comment -->',
    '<div onclick="x">',
  ];
  for (const input of attacks) onlyOwnMarkup(input);
  assert.is(escapeHtml(`<>&"'`), '&lt;&gt;&amp;&quot;&#39;');
  assert.is(flat(md('&lt;script&gt;')), '<p>&lt;script&gt;</p>');
});

test('property: any text yields only the renderer\'s own markup', () => {
  const piece = fc.constantFrom('<', '>', '"', "'", '&', '`', '```', '[', ']', '(', ')', '!', '|', '-', '*', '_', ':', 'javascript', 'https://e.com', 'onerror=', 'script', 'img', ' ', '\n', 'x', '#', '>', '1.');
  fc.assert(
    fc.property(fc.array(piece, { maxLength: 40 }), (pieces) => onlyOwnMarkup(pieces.join(''))),
    { numRuns: 400 },
  );
});

/** Stream `doc` through an IncrementalMarkdown `step` characters at a time; at each step, what it shows must equal a full render of the text so far. */
function streamEqualsWhole(doc: string, step: number): IncrementalMarkdown {
  const live = new IncrementalMarkdown();
  let stable = '';
  for (let n = Math.min(step, doc.length); ; n = Math.min(n + step, doc.length)) {
    const prefix = doc.slice(0, n);
    const update = live.update(prefix);
    if (update.reset) stable = '';
    stable += update.stable;
    assert.is(stable + update.tail, md(prefix), `after ${n} characters of ${JSON.stringify(doc)}`);
    if (n === doc.length) return live;
  }
}

test('streaming: block by block, the same HTML as rendering the whole text', () => {
  streamEqualsWhole('Intro paragraph\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n1. one\n\n10. ten\n   - sub\n\n```js\nlet x = 1;\n```\n\nThe end.', 1);
  const piece = fc.constantFrom('para text', 'more *em* text', '', '- item', '  - nested', '1. one', '2. two', '10. ten', '> quote', '```js', '```', 'const x = 1;', '| a | b |', '|---|---|', '|---|', '| 1 | 2 |', '# Head', '---', '===', '    code', 'https://e.com/x', '**bold', 'done**', '  continuation', '-', '1.', '>');
  fc.assert(
    fc.property(fc.array(piece, { maxLength: 16 }), fc.integer({ min: 1, max: 9 }), (lines, step) => {
      streamEqualsWhole(lines.join('\n'), step);
    }),
    { numRuns: 300 },
  );
});

test('streaming: a text that is not a continuation (a snapshot) starts again', () => {
  const live = new IncrementalMarkdown();
  live.update('first\n\nsecond\n\nthird\n\n');
  const again = live.update('other\n\ntext');
  assert.ok(again.reset);
  assert.is(again.stable + again.tail, md('other\n\ntext'));
});

test('streaming: the work per update is the last block, not the whole reply', () => {
  const paragraphs = Array.from({ length: 400 }, (_, i) => `Paragraph ${i} with **some** words and a [link](https://e.com/${i}).`);
  const doc = paragraphs.join('\n\n');
  const live = new IncrementalMarkdown();
  let stable = '';
  let updates = 0;
  for (let n = 20; ; n = Math.min(n + 20, doc.length), updates++) {
    const update = live.update(doc.slice(0, n));
    stable += update.stable;
    if (n === doc.length) {
      assert.is(stable + update.tail, md(doc));
      break;
    }
  }
  // Whole renders would parse about updates × length / 2 characters; block by block, a few blocks per update.
  assert.ok(live.parsed < doc.length * 6, `parsed ${live.parsed} characters for a ${doc.length}-character reply in ${updates} updates`);
  assert.ok(live.parsed < (updates * doc.length) / 50, `parsed ${live.parsed}`);
});

test.run();
