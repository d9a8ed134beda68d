// `GET /admin/usage` under `Authorization: Bearer ADMIN_TOKEN`: the usage
// ledger summed by user, conversation or model over a period, as JSON or CSV,
// so an operator answers "what did this user spend this week" in one request.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { describeIssues } from '../../shared/protocol.js';
import type { UsageLedger } from '../backend/store.js';
import { GROUPS, groupedTotals, toCsv } from '../usage/totals.js';
import { bearer, sendJson } from './body.js';

const DAY_MS = 24 * 3_600_000;
/** Without `from`, the period is this long, up to `to`. */
const DEFAULT_DAYS = 30;

const IsoTime = z.iso.datetime({ offset: true }).transform((v) => Date.parse(v));

const Query = z
  .strictObject({
    group_by: z.enum(GROUPS).default('user'),
    from: IsoTime.optional(),
    to: IsoTime.optional(),
    format: z.enum(['json', 'csv']).default('json'),
    /** Only this user's entries. */
    user: z.string().min(1).max(128).optional(),
  })
  .transform(({ from, to, ...rest }) => {
    const end = to ?? Date.now();
    return { ...rest, from: from ?? end - DEFAULT_DAYS * DAY_MS, to: end };
  })
  .refine((q) => q.from < q.to, 'from must be before to');

export async function handleAdminUsage(req: IncomingMessage, res: ServerResponse, { ledger }: { ledger: UsageLedger }, isAdmin: (token: string | undefined) => boolean): Promise<void> {
  if (!isAdmin(bearer(req))) return sendJson(res, 401, { error: 'admin token required' });
  if (req.method !== 'GET') return sendJson(res, 405, { error: 'GET only' });
  const params = new URL(req.url ?? '/', 'http://relay').searchParams;
  if (new Set(params.keys()).size !== [...params.keys()].length) return sendJson(res, 400, { error: 'each parameter at most once' });
  const parsed = Query.safeParse(Object.fromEntries(params));
  if (!parsed.success) return sendJson(res, 400, { error: describeIssues(parsed.error) });
  const { group_by: groupBy, from, to, format, user } = parsed.data;
  const { rows, total } = await groupedTotals(ledger, { from, to, ...(user ? { userId: user } : {}) }, groupBy);
  if (format === 'csv') {
    res.writeHead(200, { 'content-type': 'text/csv; charset=utf-8', 'content-disposition': `attachment; filename="usage-by-${groupBy}.csv"` });
    res.end(toCsv(groupBy, rows));
    return;
  }
  const named = rows.map(({ key, ...totals }) => ({ [groupBy]: key, ...totals }));
  const { key: _total, ...sum } = total;
  sendJson(res, 200, { groupBy, from: new Date(from).toISOString(), to: new Date(to).toISOString(), rows: named, total: sum });
}
