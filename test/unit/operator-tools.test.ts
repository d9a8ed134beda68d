// TOOLS_FILE is checked at start: a mistake stops the server with a message
// naming it. What the model is told of a tool never includes its endpoint.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigError } from '../../server/config.js';
import { loadOperatorTools, OperatorTools } from '../../server/tools/operator-tools.js';

const dir = mkdtempSync(join(tmpdir(), 'relay-tools-'));
let n = 0;
function file(content: unknown): string {
  const path = join(dir, `tools-${n++}.json`);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}
const tool = (extra: object = {}) => ({ name: 'lookup', parameters: { type: 'object' }, url: 'http://tools.internal/lookup', ...extra });

function refused(path: string, mentions: RegExp): void {
  try {
    loadOperatorTools(path);
  } catch (err) {
    assert.instance(err, ConfigError);
    assert.match((err as Error).message, mentions);
    return;
  }
  assert.unreachable('the file was accepted');
}

test('a tools file: defaults for the bounds, and the model is offered name, description and parameters only', () => {
  const tools = loadOperatorTools(file({ tools: [tool({ description: 'finds things' })] }));
  assert.equal([tools[0]!.timeoutMs, tools[0]!.maxOutputBytes], [10_000, 65_536]);
  const specs = new OperatorTools(tools).specs;
  assert.equal(specs, [{ name: 'lookup', description: 'finds things', parameters: { type: 'object' } }]);
});

test('mistakes stop the start, naming the file and the field', () => {
  refused(join(dir, 'missing.json'), /TOOLS_FILE .*missing\.json/);
  refused(file('not json'), /TOOLS_FILE/);
  refused(file({ tools: [tool({ url: 'not a url' })] }), /tools\.0\.url/);
  refused(file({ tools: [tool({ name: 'bad name' })] }), /tools\.0\.name/);
  refused(file({ tools: [tool(), tool()] }), /unique/);
  refused(file({ tools: [tool({ timeoutMs: 5 })] }), /timeoutMs/);
  refused(file({ tools: [tool()], extra: true }), /TOOLS_FILE/);
});

test.run();
