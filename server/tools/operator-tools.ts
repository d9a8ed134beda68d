// Operator tools: tools the relay offers the model next to the client's and
// runs itself, by POSTing the call's arguments to an HTTP endpoint the
// operator declared (TOOLS_FILE). A call is bounded in time and in the size of
// its answer, follows no redirect, and never fails a reply: whatever goes
// wrong becomes an error result the model reads.
import { z } from 'zod';
import { ToolSpec } from '../../shared/protocol.js';
import { loadJsonFile } from '../config.js';

const OperatorTool = z.object({
  ...ToolSpec.shape,
  url: z.url(),
  timeoutMs: z.number().int().min(10).max(600_000).default(10_000),
  maxOutputBytes: z.number().int().min(16).max(16 * 1024 * 1024).default(64 * 1024),
});
export type OperatorTool = z.infer<typeof OperatorTool>;

const ToolsFile = z.strictObject({
  tools: z
    .array(OperatorTool)
    .max(32)
    .refine((tools) => new Set(tools.map((t) => t.name)).size === tools.length, 'tool names must be unique'),
});

/** The tools of TOOLS_FILE, checked at start like every setting. */
export function loadOperatorTools(path: string): OperatorTool[] {
  return loadJsonFile('TOOLS_FILE', path, ToolsFile).tools;
}

/** Tools declared in code (the demo model's example), with the file's defaults. */
export function operatorTools(tools: ReadonlyArray<z.input<typeof OperatorTool>>): OperatorTool[] {
  return tools.map((t) => OperatorTool.parse(t));
}

export interface ToolOutcome {
  output: string;
  isError: boolean;
}

/** The answer's JSON `output` when it has one, else its text. */
function outputOf(body: string, contentType: string | null): string {
  if (!contentType?.includes('json')) return body;
  try {
    const value: unknown = JSON.parse(body);
    if (typeof value === 'object' && value !== null && 'output' in value && typeof value.output === 'string') return value.output;
  } catch {
    // Not JSON after all: the text is the output.
  }
  return body;
}

/** Runs operator tools by name. */
export class OperatorTools {
  private readonly byName: Map<string, OperatorTool>;

  constructor(tools: readonly OperatorTool[]) {
    this.byName = new Map(tools.map((t) => [t.name, t]));
  }

  /** What the model is told of them: name, description, parameters (never the URL). */
  get specs(): ToolSpec[] {
    return [...this.byName.values()].map(({ name, description, parameters }) => ({ name, parameters, ...(description ? { description } : {}) }));
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  /** One call: its arguments POSTed as JSON; the outcome, a failure included, as the model will read it. */
  async call(name: string, args: string, signal?: AbortSignal): Promise<ToolOutcome> {
    const tool = this.byName.get(name);
    if (!tool) return { output: `no tool named ${name}`, isError: true };
    const timeout = AbortSignal.timeout(tool.timeoutMs);
    try {
      const response = await fetch(tool.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: args.trim() === '' ? '{}' : args,
        // A redirect could lead anywhere: the operator named one endpoint, and only it is called.
        redirect: 'manual',
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
      if (response.status >= 300 && response.status < 400) {
        await response.body?.cancel();
        return { output: `the tool answered with a redirect (HTTP ${response.status}), which is not followed`, isError: true };
      }
      const body = await readBounded(response, tool.maxOutputBytes);
      if (body === undefined) return { output: `the tool's answer is larger than ${tool.maxOutputBytes} bytes`, isError: true };
      if (!response.ok) return { output: `the tool failed (HTTP ${response.status})`, isError: true };
      return { output: outputOf(body, response.headers.get('content-type')), isError: false };
    } catch (err) {
      if (timeout.aborted) return { output: `the tool did not answer within ${tool.timeoutMs} ms`, isError: true };
      return { output: `the tool could not be reached (${err instanceof Error ? err.message : 'error'})`, isError: true };
    }
  }
}

/** The body as text, or undefined past `maxBytes` (the rest is not read: the connection is dropped). */
async function readBounded(response: Response, maxBytes: number): Promise<string | undefined> {
  if (!response.body) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel();
      return undefined;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}
