// Model replies as Markdown, through markdown-it (CommonMark plus tables and
// strikethrough), configured so that no input can produce markup of its own:
// raw HTML is off (`<b>` shows as the text `<b>`), links are http(s) and
// mailto only, images are shown as links (the page loads nothing a reply
// names), and the only attributes emitted are the fixed ones set here.
// Fenced code is highlighted by highlight.js (a few common languages, to keep
// the bundle small) and gets a copy button.
//
// While a reply streams, IncrementalMarkdown renders only its growing tail:
// every top-level block but the last is complete (the text that follows it
// started a block of its own, and nothing written later can reach back into
// it), so it is rendered once and kept; each frame parses and renders the last
// block alone. The finished reply is rendered once more as a whole.
import MarkdownIt from 'markdown-it';
import hljs from 'highlight.js/lib/core';
import bash from 'highlight.js/lib/languages/bash';
import diff from 'highlight.js/lib/languages/diff';
import javascript from 'highlight.js/lib/languages/javascript';
import json from 'highlight.js/lib/languages/json';
import python from 'highlight.js/lib/languages/python';
import typescript from 'highlight.js/lib/languages/typescript';
import xml from 'highlight.js/lib/languages/xml';
import yaml from 'highlight.js/lib/languages/yaml';

// Each brings its usual aliases: js, ts, tsx, py, sh, shell, zsh, html, svg, yml, patch…
for (const [name, language] of Object.entries({ bash, diff, javascript, json, python, typescript, xml, yaml })) hljs.registerLanguage(name, language);

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

const md = new MarkdownIt('default', {
  html: false,
  // A line break in a chat message is meant as one.
  breaks: true,
  linkify: true,
  typographer: false,
});
// Only links that say where they go: `main.py` or `example.com` stay text.
md.linkify.set({ fuzzyLink: false, fuzzyEmail: false, fuzzyIP: false });
md.validateLink = (url) => /^(?:https?:\/\/|mailto:)/i.test(url.trim());

const rules = md.renderer.rules;
const LINK_ATTRS = ' target="_blank" rel="noopener noreferrer nofollow"';

rules.link_open = (tokens, idx) => `<a href="${escapeHtml(tokens[idx]!.attrGet('href')?.toString() ?? '')}"${LINK_ATTRS}>`;
rules.link_close = () => '</a>';

// An image becomes a link to it, labelled with its description: nothing loads until someone follows it.
rules.image = (tokens, idx, options, env, self) => {
  const token = tokens[idx]!;
  const src = token.attrGet('src')?.toString() ?? '';
  const label = self.renderInlineAsText(token.children ?? [], options, env) || src;
  return `<a href="${escapeHtml(src)}"${LINK_ATTRS} class="image-link">${escapeHtml(label)}</a>`;
};

// Wide tables scroll inside the message instead of widening the page.
rules.table_open = () => '<div class="table-wrap"><table>\n';
rules.table_close = () => '</table></div>\n';
// Column alignment as a class: the page's CSP refuses inline styles.
for (const cell of ['th_open', 'td_open'] as const) {
  rules[cell] = (tokens, idx) => {
    const token = tokens[idx]!;
    const align = /text-align:(left|right|center)/.exec(String(token.attrGet('style') ?? ''))?.[1];
    return `<${token.tag}${align ? ` class="align-${align}"` : ''}>`;
  };
}

/** A language name as given after a fence, reduced to characters that are safe in a class name. */
function languageOf(info: string): string {
  return (info.trim().split(/\s+/)[0] ?? '').replace(/[^\w+#.-]/g, '').slice(0, 32).toLowerCase();
}

function highlighted(code: string, lang: string): string {
  if (lang && hljs.getLanguage(lang)) {
    try {
      return hljs.highlight(code, { language: lang, ignoreIllegals: true }).value;
    } catch {
      // A grammar that trips on odd input: plain text is still right.
    }
  }
  return escapeHtml(code);
}

function codeBlock(code: string, lang: string): string {
  const known = lang && hljs.getLanguage(lang) ? ` hljs language-${lang}` : lang ? ` language-${lang}` : '';
  return (
    '<div class="code-block">' +
    `<div class="code-head"><span class="code-lang">${escapeHtml(lang || 'text')}</span>` +
    '<button type="button" class="copy-code" aria-label="Copy code">Copy</button></div>' +
    `<pre><code class="code${known}">${highlighted(code, lang)}</code></pre></div>\n`
  );
}

rules.fence = (tokens, idx) => {
  const token = tokens[idx]!;
  return codeBlock(token.content.replace(/\n$/, ''), languageOf(token.info));
};
rules.code_block = (tokens, idx) => codeBlock(tokens[idx]!.content.replace(/\n$/, ''), '');

/** The whole of `source` as HTML. */
export function renderMarkdown(source: string): string {
  return md.render(source, {});
}

type Tokens = ReturnType<typeof md.parse>;

/** Where each top-level block of `tokens` starts: its index in `tokens` and its first line. */
function blockStarts(tokens: Tokens): Array<{ index: number; line: number }> {
  const starts: Array<{ index: number; line: number }> = [];
  tokens.forEach((t, index) => {
    if (t.level === 0 && t.nesting !== -1 && t.map) starts.push({ index, line: t.map[0] });
  });
  return starts;
}

/** The number of line breaks in `text`: the index of its last line. */
function countLines(text: string): number {
  let n = 0;
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

/** The character offset at which line `line` of `text` starts. */
function lineOffset(text: string, line: number): number {
  let offset = 0;
  for (let i = 0; i < line; i++) {
    const nl = text.indexOf('\n', offset);
    if (nl < 0) return text.length;
    offset = nl + 1;
  }
  return offset;
}

/** What changed since the last update: drop everything shown when `reset`, then append `stable` once, and show `tail` after it in place of the previous tail. */
export interface MarkdownUpdate {
  reset: boolean;
  stable: string;
  tail: string;
}

/**
 * The HTML of a text that grows at its end (a reply streaming), block by
 * block: completed blocks come out once, in `stable`; the last block, still
 * growing, comes out each time in `tail`. The work per update is the size of
 * the last block and of what was added, not of the whole text.
 */
export class IncrementalMarkdown {
  /** The text rendered so far, and how much of it has gone out as stable blocks. */
  private text = '';
  private stableEnd = 0;
  private env: Record<string, unknown> = {};
  /** Characters parsed so far, all updates together (for tests of the cost). */
  parsed = 0;

  update(text: string): MarkdownUpdate {
    let reset = false;
    // Anything but a longer text with the same stable part (a snapshot, a retry) starts again.
    if (!text.startsWith(this.text.slice(0, this.stableEnd))) {
      this.stableEnd = 0;
      this.env = {};
      reset = true;
    }
    this.text = text;
    const tail = text.slice(this.stableEnd);
    this.parsed += tail.length;
    const tokens = md.parse(tail, this.env);
    // The last line may be half written ("1" of "10. ten" would end a list that "10. ten" continues,
    // "|-|" of "|-|-|" would make a table of the line above it): only a block whose first line and
    // the line after it are whole can tell that the blocks before it are complete.
    const partialLine = countLines(tail);
    const starts = blockStarts(tokens).filter((s) => s.line < partialLine - 1);
    const boundary = starts.length > 1 ? starts[starts.length - 1] : undefined;
    if (!boundary) return { reset, stable: '', tail: md.renderer.render(tokens, md.options, this.env) };
    this.stableEnd += lineOffset(tail, boundary.line);
    return {
      reset,
      stable: md.renderer.render(tokens.slice(0, boundary.index), md.options, this.env),
      tail: md.renderer.render(tokens.slice(boundary.index), md.options, this.env),
    };
  }
}
