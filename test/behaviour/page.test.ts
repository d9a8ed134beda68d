// The chat page's assets: the bundle is served; its source maps (the client's
// sources, comments and all) only when PAGE_SOURCE_MAPS asks for them.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startStack, type Stack } from '../helpers.js';

let stack: Stack | undefined;
test.after.each(async () => {
  await stack?.close();
  stack = undefined;
});

/** The HTTP base of the relay, with the page built (a GET of / builds a missing or stale bundle). */
async function pageBase(env: Record<string, string> = {}): Promise<string> {
  stack = await startStack({ env });
  const base = stack.url.replace(/^ws:/, 'http:').replace(/\/ws$/, '');
  assert.is((await fetch(`${base}/`)).status, 200);
  return base;
}

test('by default the bundle is served without its source maps, and does not point at them', async () => {
  const base = await pageBase();
  const js = await fetch(`${base}/assets/app.js`);
  assert.is(js.status, 200);
  assert.is(js.headers.get('sourcemap'), null);
  assert.not.ok((await js.text()).includes('sourceMappingURL'));
  for (const map of ['app.js.map', 'style.css.map']) assert.is((await fetch(`${base}/assets/${map}`)).status, 404, map);
});

test('PAGE_SOURCE_MAPS=true serves the maps and links them from the bundle', async () => {
  const base = await pageBase({ PAGE_SOURCE_MAPS: 'true' });
  const js = await fetch(`${base}/assets/app.js`);
  assert.is(js.headers.get('sourcemap'), '/assets/app.js.map');
  await js.arrayBuffer();
  const map = await fetch(`${base}/assets/app.js.map`);
  assert.is(map.status, 200);
  const parsed: unknown = await map.json();
  assert.ok(typeof parsed === 'object' && parsed !== null && 'sources' in parsed, 'a source map');
});

test.run();
