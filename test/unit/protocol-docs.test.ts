// Keeps docs/protocol.schema.json and docs/asyncapi.json in step with the zod
// schemas they are generated from (a schema changed without `npm run
// docs:schema` fails here), and the feature table of docs/protocol.md with
// shared/features.ts.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { asyncApiDocument, docsDir, protocolSchema, renderDocs, SCHEMA_FILE } from '../../scripts/protocol-docs.js';
import { features } from '../../shared/features.js';
import { clientFrameTypes, serverFrameTypes } from '../../shared/protocol.js';

const checkedIn = (name: string) => readFileSync(join(docsDir, name), 'utf8');

test('the checked-in JSON Schema and AsyncAPI document are what the schemas generate', () => {
  for (const [name, text] of Object.entries(renderDocs())) {
    // Compared as text so that the hint names the file; regenerate rather than edit by hand.
    assert.ok(checkedIn(name) === text, `docs/${name} is out of date: run npm run docs:schema`);
  }
});

test('the schema names every frame of both directions, and the unions refer to them all', () => {
  const definitions = Object.keys(protocolSchema().definitions);
  for (const t of clientFrameTypes) assert.ok(definitions.includes(`client.${t}`), `client frame ${t}`);
  for (const t of serverFrameTypes) assert.ok(definitions.includes(`server.${t}`), `server frame ${t}`);
  const schema = JSON.stringify(protocolSchema());
  for (const ref of schema.match(/"\$ref":"#\/definitions\/[^"]+"/g) ?? []) {
    const id = ref.slice('"$ref":"#/definitions/'.length, -1);
    assert.ok(definitions.includes(id), `${ref} resolves`);
  }
});

test("every AsyncAPI message refers to a definition of the schema, in the direction of the relay's operation", () => {
  const doc = asyncApiDocument();
  const definitions = Object.keys(protocolSchema().definitions);
  const payloads = [...JSON.stringify(doc).matchAll(new RegExp(`"\\$ref":"${SCHEMA_FILE.replace('.', '\\.')}#/definitions/([^"]+)"`, 'g'))].map((m) => m[1]!);
  assert.is(payloads.length, clientFrameTypes.size + serverFrameTypes.size);
  for (const id of payloads) assert.ok(definitions.includes(id), `${id} is defined`);
  const { receiveClientFrames, sendServerFrames } = doc.operations;
  assert.is(receiveClientFrames.action, 'receive');
  assert.is(receiveClientFrames.messages.length, clientFrameTypes.size);
  assert.is(sendServerFrames.action, 'send');
  assert.is(sendServerFrames.messages.length, serverFrameTypes.size);
  assert.is(doc.channels.session.address, '/ws');
});

test('the feature table of docs/protocol.md names what shared/features.ts does', () => {
  const lines = checkedIn('protocol.md').split(/\r?\n/);
  const start = lines.findIndex((l) => l.startsWith('**`welcome.features`**'));
  assert.ok(start >= 0, 'docs/protocol.md describes welcome.features');
  const names: string[] = [];
  for (const line of lines.slice(start + 1)) {
    const row = line.match(/^\|\s*`([^`]+)`\s*\|/);
    if (row) names.push(row[1]!);
    else if (names.length > 0 && !line.startsWith('|')) break;
  }
  assert.equal(names.sort(), Object.keys(features).sort());
});

test.run();
