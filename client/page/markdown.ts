// A deliberately small Markdown renderer for model replies. Safety comes from
// construction: every piece of source text passes through escapeHtml, and the
// only tags emitted are the fixed ones below, so no input can produce raw HTML
// or an attribute of its choosing. Links are http(s) only.
//
// Blocks: paragraphs, # headings, fenced code (``` or ~~~), - * + and 1. lists,
// > quotes, --- rules. Inline: `code`, **bold**, __bold__, *em*, _em_,
// [text](http(s)://…) and bare http(s) URLs.

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([\w+#.-]*)[^`]*$/;
const HEADING = /^ {0,3}(#{1,6})\s+(.*?)(?:\s+#+)?\s*$/;
const LIST_ITEM = /^ {0,3}([-*+]|\d{1,9}[.)])\s+(.*)$/;
const RULE = /^ {0,3}([-*_])(?:\s*\1){2,}\s*$/;
const QUOTE = /^ {0,3}>\s?(.*)$/;

export function renderMarkdown(source: string): string {
  const lines = source.replace(/\r\n?/g, '\n').split('\n');
  const out: string[] = [];
  let paragraph: string[] = [];
  const flush = () => {
    if (paragraph.length) out.push(`<p>${paragraph.map((l) => inline(l, true)).join('<br>')}</p>`);
    paragraph = [];
  };

  for (let i = 0; i < lines.length; ) {
    const line = lines[i]!;
    const fence = FENCE.exec(line);
    if (fence) {
      flush();
      const marker = fence[1]!;
      const close = new RegExp(`^ {0,3}${marker[0] === '`' ? '`' : '~'}{${marker.length},}\\s*$`);
      const body: string[] = [];
      // An unclosed fence (a reply still streaming) runs to the end: the block does not jump when it closes.
      for (i++; i < lines.length && !close.test(lines[i]!); i++) body.push(lines[i]!);
      i++;
      const lang = fence[2] ? ` class="language-${escapeHtml(fence[2])}"` : '';
      out.push(`<pre><code${lang}>${escapeHtml(body.join('\n'))}</code></pre>`);
      continue;
    }
    if (line.trim() === '') {
      flush();
      i++;
      continue;
    }
    if (RULE.test(line)) {
      flush();
      out.push('<hr>');
      i++;
      continue;
    }
    const heading = HEADING.exec(line);
    if (heading) {
      flush();
      const level = heading[1]!.length;
      out.push(`<h${level}>${inline(heading[2]!, true)}</h${level}>`);
      i++;
      continue;
    }
    if (QUOTE.test(line)) {
      flush();
      const quoted: string[] = [];
      for (let m; i < lines.length && (m = QUOTE.exec(lines[i]!)); i++) quoted.push(m[1]!);
      out.push(`<blockquote>${renderMarkdown(quoted.join('\n'))}</blockquote>`);
      continue;
    }
    const item = LIST_ITEM.exec(line);
    if (item) {
      flush();
      i = list(lines, i, /\d/.test(item[1]!), out);
      continue;
    }
    paragraph.push(line);
    i++;
  }
  flush();
  return out.join('');
}

/** A run of items of one kind starting at `start`; returns the index after it. */
function list(lines: string[], start: number, ordered: boolean, out: string[]): number {
  const items: string[][] = [];
  let i = start;
  while (i < lines.length) {
    const m = LIST_ITEM.exec(lines[i]!);
    if (m && /\d/.test(m[1]!) === ordered && !RULE.test(lines[i]!)) {
      items.push([m[2]!]);
      i++;
    } else if (items.length && /^\s{2,}\S/.test(lines[i]!)) {
      // An indented line continues the item above it.
      items[items.length - 1]!.push(lines[i]!.trim());
      i++;
    } else break;
  }
  const first = Number.parseInt(LIST_ITEM.exec(lines[start]!)![1]!, 10);
  const open = ordered ? (first !== 1 && Number.isFinite(first) ? `<ol start="${first}">` : '<ol>') : '<ul>';
  out.push(open, ...items.map((it) => `<li>${it.map((l) => inline(l, true)).join('<br>')}</li>`), ordered ? '</ol>' : '</ul>');
  return i;
}

const INLINE = new RegExp(
  [
    /(`+)([^`]|[^`][\s\S]*?[^`])\1(?!`)/.source, // 1,2: code span
    /\[([^\]\n]+)\]\(\s*(https?:\/\/[^\s()<>]+(?:\([^\s()<>]*\)[^\s()<>]*)*)\s*\)/.source, // 3,4: link
    /\*\*(?=\S)([\s\S]*?\S)\*\*/.source, // 5: bold
    /(?<![\w_])__(?=\S)([\s\S]*?\S)__(?![\w_])/.source, // 6: bold
    /\*(?=[^\s*])([\s\S]*?[^\s*])\*(?!\*)/.source, // 7: em
    /(?<![\w_])_(?=[^\s_])([\s\S]*?[^\s_])_(?![\w_])/.source, // 8: em
    /\bhttps?:\/\/[^\s<>"'`]*[^\s<>"'`.,;:!?)\]*_]/.source, // 0: bare URL
  ].join('|'),
  'g',
);

function inline(text: string, links: boolean): string {
  let out = '';
  let last = 0;
  INLINE.lastIndex = 0;
  for (let m = INLINE.exec(text); m; m = INLINE.exec(text)) {
    const start = m.index;
    const end = INLINE.lastIndex;
    let html: string | undefined;
    if (m[2] !== undefined) html = `<code>${escapeHtml(m[2])}</code>`;
    else if (m[4] !== undefined) html = links ? anchor(m[4], inlineNested(m[3]!, false)) : undefined;
    else if (m[5] !== undefined || m[6] !== undefined) html = `<strong>${inlineNested((m[5] ?? m[6])!, links)}</strong>`;
    else if (m[7] !== undefined || m[8] !== undefined) html = `<em>${inlineNested((m[7] ?? m[8])!, links)}</em>`;
    else html = links ? anchor(m[0], escapeHtml(m[0])) : undefined;
    if (html === undefined) continue; // a link inside a link's text stays text
    out += escapeHtml(text.slice(last, start)) + html;
    last = end;
  }
  return out + escapeHtml(text.slice(last));
}

/** inline() shares one regex; nested calls must not disturb the caller's position. */
function inlineNested(text: string, links: boolean): string {
  const saved = INLINE.lastIndex;
  const html = inline(text, links);
  INLINE.lastIndex = saved;
  return html;
}

function anchor(url: string, label: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return undefined;
  return `<a href="${escapeHtml(parsed.href)}" target="_blank" rel="noopener noreferrer nofollow">${label}</a>`;
}
