// The chat page's Markdown renderer: the supported subset, and that no input
// can produce markup of its own.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { escapeHtml, renderMarkdown as md } from '../../client/page/markdown.js';

test('paragraphs, line breaks, headings, rules', () => {
  assert.is(md('one\ntwo\n\nthree'), '<p>one<br>two</p><p>three</p>');
  assert.is(md('# Title\n### Sub ###'), '<h1>Title</h1><h3>Sub</h3>');
  assert.is(md('a\n\n---\n\nb'), '<p>a</p><hr><p>b</p>');
});

test('inline: bold, em, code, and their interplay', () => {
  assert.is(md('**b** and *e* and __B__ and _E_'), '<p><strong>b</strong> and <em>e</em> and <strong>B</strong> and <em>E</em></p>');
  assert.is(md('**bold *em* inside**'), '<p><strong>bold <em>em</em> inside</strong></p>');
  assert.is(md('`a **not bold** <b>`'), '<p><code>a **not bold** &lt;b&gt;</code></p>');
  assert.is(md('snake_case_name stays'), '<p>snake_case_name stays</p>');
  assert.is(md('2 * 3 * 4'), '<p>2 * 3 * 4</p>');
  assert.is(md('**unclosed'), '<p>**unclosed</p>');
});

test('lists: unordered, ordered with start, continuation lines', () => {
  assert.is(md('- a\n- b'), '<ul><li>a</li><li>b</li></ul>');
  assert.is(md('* a\n+ b'), '<ul><li>a</li><li>b</li></ul>');
  assert.is(md('1. one\n2. **two**'), '<ol><li>one</li><li><strong>two</strong></li></ol>');
  assert.is(md('3. c\n4. d'), '<ol start="3"><li>c</li><li>d</li></ol>');
  assert.is(md('- a\n  more a\n- b\n\nafter'), '<ul><li>a<br>more a</li><li>b</li></ul><p>after</p>');
});

test('fenced code keeps its text verbatim, escaped; an unclosed fence runs to the end', () => {
  assert.is(md('```ts\nconst a = 1 < 2 && "x";\n**no**\n```\nafter'), '<pre><code class="language-ts">const a = 1 &lt; 2 &amp;&amp; &quot;x&quot;;\n**no**</code></pre><p>after</p>');
  assert.is(md('~~~\n<script>\n'), '<pre><code>&lt;script&gt;\n</code></pre>');
  assert.is(md('```\nstreaming'), '<pre><code>streaming</code></pre>');
});

test('links: http(s) only, attributes escaped, bare URLs linked', () => {
  assert.is(
    md('[site](https://example.com/a?b=1&c=2)'),
    '<p><a href="https://example.com/a?b=1&amp;c=2" target="_blank" rel="noopener noreferrer nofollow">site</a></p>',
  );
  assert.is(
    md('see https://example.com/x.'),
    '<p>see <a href="https://example.com/x" target="_blank" rel="noopener noreferrer nofollow">https://example.com/x</a>.</p>',
  );
  assert.is(md('[x](javascript:alert(1))'), '<p>[x](javascript:alert(1))</p>');
  assert.is(md('[x](data:text/html,<b>)'), '<p>[x](data:text/html,&lt;b&gt;)</p>');
  assert.is(md('[x](JAVASCRIPT:alert(1))'), '<p>[x](JAVASCRIPT:alert(1))</p>');
  assert.not.match(md('[x](https://a.b/"onmouseover="alert(1))'), /"onmouseover/);
});

test('no input yields a tag or attribute of its own', () => {
  const attacks = [
    '<script>alert(1)</script>',
    '<img src=x onerror=alert(1)>',
    '**<b>bold</b>**',
    '[<img src=x>](https://e.com)',
    '# <h1>x</h1>',
    '- <li>x</li>',
    '> <blockquote>',
    '`</code><script>`',
    '```"><script>\nx\n```',
    '[a](https://e.com/"><script>alert(1)</script>)',
    'https://e.com/<script>',
    '<a href="javascript:alert(1)">x</a>',
    '&lt;script&gt;',
  ];
  const allowed = /^(p|br|h[1-6]|strong|em|code|pre|ul|ol|li|blockquote|hr|a)$/;
  for (const input of attacks) {
    const html = md(input);
    for (const tag of html.matchAll(/<\/?([a-zA-Z0-9]+)([^>]*)>/g)) {
      assert.ok(allowed.test(tag[1]!), `${JSON.stringify(input)} produced <${tag[1]}>`);
      const attrs = tag[2]!.trim();
      if (attrs) assert.match(attrs, /^(href="https?:\/\/[^"<>]*" target="_blank" rel="noopener noreferrer nofollow"|class="language-[\w+#.-]*"|start="\d+")$/, `${JSON.stringify(input)}: ${attrs}`);
    }
  }
  assert.is(escapeHtml(`<>&"'`), '&lt;&gt;&amp;&quot;&#39;');
  assert.is(md('&lt;script&gt;'), '<p>&amp;lt;script&amp;gt;</p>');
});

test.run();
