// An example operator tool served by the demo server, so that a relay without any
// configuration can show a whole tool round trip: the model calls `current_time`,
// the relay POSTs the arguments here, and the output goes back to the model.
import { isRecord } from '../server/upstream/pieces.js';

export interface DemoTool {
  name: string;
  description: string;
  parameters: { type: 'object'; properties: Record<string, { type: string; description?: string }>; required: string[] };
  path: string; // on the demo server; LocalModel.toolURL(name) gives the whole URL
}

export const DEMO_TOOLS: DemoTool[] = [
  {
    name: 'current_time',
    description: 'The current date and time (UTC, and in a timezone if one is given)',
    parameters: { type: 'object', properties: { timezone: { type: 'string', description: 'IANA time zone, e.g. Europe/Paris' } }, required: [] },
    path: '/tools/current_time',
  },
];

/** One POST to a tool endpoint, as the server received it. */
export interface ToolRequest {
  name: string; // from the path, /tools/<name>, known or not
  body: unknown; // the parsed JSON (`{}` for an empty body), or the raw text when it is not JSON
}

export interface ToolAnswer {
  status: number;
  body: { output: string } | { error: string };
}

/** The time zone's clock reading, or undefined when Intl does not know the zone. */
function localTime(now: Date, timeZone: string): string | undefined {
  try {
    return new Intl.DateTimeFormat('en-GB', { timeZone, dateStyle: 'full', timeStyle: 'long' }).format(now);
  } catch {
    return undefined;
  }
}

function currentTime(args: unknown, now: Date): ToolAnswer {
  const zone = isRecord(args) && typeof args.timezone === 'string' ? args.timezone.trim() : '';
  // An empty zone is no zone: models fill optional string arguments with "" often enough.
  if (!zone) return { status: 200, body: { output: now.toISOString() } };
  const local = localTime(now, zone);
  if (local === undefined) return { status: 400, body: { error: 'unknown timezone' } };
  return { status: 200, body: { output: `${now.toISOString()} (${zone}: ${local})` } };
}

const HANDLERS = new Map<string, (args: unknown, now: Date) => ToolAnswer>([['current_time', currentTime]]);

/** The request as recorded and the answer to it, for a POST of `raw` to /tools/<name>. */
export function callTool(name: string, raw: string, now = new Date()): { request: ToolRequest; answer: ToolAnswer } {
  let body: unknown = {};
  if (raw.trim() !== '') {
    try {
      body = JSON.parse(raw);
    } catch {
      return { request: { name, body: raw }, answer: { status: 400, body: { error: 'body is not valid JSON' } } };
    }
  }
  const handler = HANDLERS.get(name);
  const answer = handler ? handler(body, now) : { status: 404, body: { error: `unknown tool ${name}` } };
  return { request: { name, body }, answer };
}
