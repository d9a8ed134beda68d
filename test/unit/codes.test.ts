// Keeps the error and close code tables of docs/protocol.md in step with
// shared/codes.ts (and the ErrorCode schema): adding a code in one place
// without the other fails here.
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { clientCloseCodes, closeCodes, errorCodes, shouldReconnect } from '../../shared/codes.js';
import { ErrorCode } from '../../shared/protocol.js';

const doc = readFileSync(new URL('../../docs/protocol.md', import.meta.url), 'utf8');

/** The lines of the section under `## <title>` (`### <title>` at level 3), up to the next heading of that level or above. */
function section(title: string, level = 2): string[] {
  const lines = doc.split(/\r?\n/);
  const start = lines.findIndex((l) => new RegExp(`^#{${level}}\\s+(?:\\d+\\.\\s+)?${title}\\s*$`, 'i').test(l));
  assert.ok(start >= 0, `docs/protocol.md has a "${'#'.repeat(level)} ${title}" section`);
  const rest = lines.slice(start + 1);
  const end = rest.findIndex((l) => new RegExp(`^#{1,${level}}\\s`).test(l));
  return end < 0 ? rest : rest.slice(0, end);
}

/** Table rows whose first cell is a code in backticks: the code and the remaining cells. */
function tableRows(title: string, lines = section(title)): Array<{ code: string; cells: string[] }> {
  const rows = lines
    .map((l) => l.match(/^\s*\|\s*`([^`]+)`\s*\|(.*)$/))
    .filter((m): m is RegExpMatchArray => m !== null)
    .map((m) => ({ code: m[1]!.trim(), cells: m[2]!.replace(/\|\s*$/, '').split('|').map((c) => c.trim()) }));
  assert.ok(rows.length > 0, `the "${title}" section has a table of codes`);
  const codes = rows.map((r) => r.code);
  assert.equal(codes.length, new Set(codes).size, `no code is listed twice in "${title}": ${codes.join(', ')}`);
  return rows;
}

const sorted = <T>(xs: Iterable<T>): T[] => [...xs].sort();

test('the error code table of the document equals errorCodes', () => {
  const documented = tableRows('Error codes').map((r) => r.code);
  const defined = Object.keys(errorCodes);
  const missingInDoc = defined.filter((c) => !documented.includes(c));
  const missingInCode = documented.filter((c) => !defined.includes(c));
  assert.equal(missingInDoc, [], `error codes not in docs/protocol.md: ${missingInDoc.join(', ')}`);
  assert.equal(missingInCode, [], `error codes documented but not in shared/codes.ts: ${missingInCode.join(', ')}`);
  assert.equal(sorted(documented), sorted(defined));
});

test("the client library's close codes are documented and none is the server's", () => {
  const documented = tableRows('Codes the client library closes with', section('Codes the client library closes with', 3)).map((r) => Number(r.code));
  assert.equal(sorted(documented), sorted(Object.values(clientCloseCodes)));
  const server: number[] = Object.values(closeCodes);
  assert.equal(documented.filter((c) => server.includes(c)), []);
});

test('the close code table of the document equals closeCodes', () => {
  const rows = tableRows('Close codes').filter((r) => !(Object.values(clientCloseCodes) as number[]).includes(Number(r.code)));
  for (const r of rows) assert.match(r.code, /^\d{4}$/, `close code "${r.code}" is a number`);
  const documented = rows.map((r) => Number(r.code));
  const defined: number[] = Object.values(closeCodes);
  const missingInDoc = defined.filter((c) => !documented.includes(c));
  const missingInCode = documented.filter((c) => !defined.includes(c));
  assert.equal(missingInDoc, [], `close codes not in docs/protocol.md: ${missingInDoc.join(', ')}`);
  assert.equal(missingInCode, [], `close codes documented but not in shared/codes.ts: ${missingInCode.join(', ')}`);
  assert.equal(sorted(documented), sorted(defined));
});

test("the close code table's reconnect column agrees with shouldReconnect", () => {
  for (const { code, cells } of tableRows('Close codes')) {
    const column = cells[cells.length - 1]!.toLowerCase();
    assert.ok(/^(yes|no)\b/.test(column), `close code ${code}: last column starts with yes or no, got "${column}"`);
    assert.is(column.startsWith('yes'), shouldReconnect(Number(code)), `close code ${code}: reconnect column vs shouldReconnect`);
  }
});

test('every error code is accepted by the ErrorCode schema, and nothing else is', () => {
  for (const code of Object.keys(errorCodes)) {
    assert.ok(ErrorCode.safeParse(code).success, `ErrorCode accepts ${code}`);
  }
  assert.equal(sorted(ErrorCode.options), sorted(Object.keys(errorCodes)));
  assert.not.ok(ErrorCode.safeParse('no_such_code').success);
});

test('shouldReconnect is false only for 4401', () => {
  for (const code of Object.values(closeCodes)) {
    assert.is(shouldReconnect(code), code !== 4401, `shouldReconnect(${code})`);
  }
  assert.is(closeCodes.unauthorized, 4401);
  // Codes a client can see without the server sending them (1005 no status, 1006 dropped) reconnect too.
  for (const code of [1005, 1006, 1012, 4000, 4999]) assert.ok(shouldReconnect(code), `shouldReconnect(${code})`);
});

test.run();
