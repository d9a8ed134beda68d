// The Lua scripts of the Redis store: only what must be atomic across nodes.
// The seq and the retained log, the reply lease and its fence, the queue, and
// the clientMessageId index change together or not at all. What goes into
// history is decided in TypeScript (server/history/fold.ts) and handed in.
import { Script } from './script.js';

/** Inputs of an append, shared by the append and submit scripts. */
const APPEND_ARGS = [
  'kind', // "message" | "reply" (fenced by the lease) | "dropped" (the end of a reply that never started)
  'phase', // reply events: "start" | "delta" | "end"
  'json', // the event JSON without its opening "{": the script prepends "seq"
  'now', // ms
  'retentionMs', // every key but the lease lives this long after the last write
  'node',
  'leaseMs',
  'replyId',
  'ordinal', // position of the event in its reply: a write seen before is dropped
  'history', // a complete history entry (JSON) this event makes, or ""
  'historyScore', // its place in history: the seq that opened it, or "" for this event's own
  'clientId', // a message's clientMessageId, or ""
  'idsKept',
  'epoch', // the epoch a log started by this append gets
  'bill', // a reply end's usage ledger entry (JSON), or ""
  'billAt', // its time, the score it is kept under
  'ledgerRetentionMs',
  'ledgerMax', // entries kept at most, per ledger key
  'runningJob', // a reply.start: the job it runs (JSON), kept for the node that adopts it, or ""
  'responseId', // a reply.delta of a background response: its upstream response, or ""
  'sequence', // … and the sequence number of the event the delta came from
  'expectRev', // the tree's revision the event was placed against ("" for none): a moved tree refuses it
  'leaf', // the active path's new end, or ""
  'settings', // the conversation's new settings (JSON), or ""
  'owner', // the author of an event that would create the conversation: its owner, unless it has one
  'roles', // the roles given in the conversation (JSON), or ""
  'parent', // a reply.start: the message before it on its branch, kept with the reply in flight, or ""
] as const;

/** Keys of an append: the conversation's, and the usage ledger's (all of it, and the billed user's). */
const APPEND_KEYS = ['seq', 'epoch', 'log', 'bytes', 'hist', 'st', 'tree', 'ids', 'idx', 'lease', 'queue', 'members', 'ledger', 'ledgerUser'] as const;

const APPEND = `
local function keepAlive(ms)
  -- Every key of the conversation but the lease, whose expiry means something else.
  for name, key in pairs(K) do
    if name ~= 'lease' and name ~= 'ledger' and name ~= 'ledgerUser' then redis.call('PEXPIRE', key, ms) end
  end
end

local function bill()
  local keepFrom = tonumber(A.now) - tonumber(A.ledgerRetentionMs)
  local keys = {K.ledger}
  if K.ledgerUser ~= K.ledger then keys[2] = K.ledgerUser end
  for _, key in ipairs(keys) do
    redis.call('ZADD', key, A.billAt, A.bill)
    redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. keepFrom)
    redis.call('ZREMRANGEBYRANK', key, 0, -1 - tonumber(A.ledgerMax))
  end
  -- A user who stops chatting leaves nothing behind once the entries have expired.
  if K.ledgerUser ~= K.ledger then redis.call('PEXPIRE', K.ledgerUser, A.ledgerRetentionMs) end
end

local function fenced()
  if redis.call('GET', K.lease) ~= A.node .. '|' .. A.replyId then return 'lost-lease' end
  local inFlight = redis.call('HGET', K.st, 'replyId')
  if A.phase == 'start' then
    if inFlight == A.replyId then return 'duplicate' end
  elseif inFlight ~= A.replyId or tonumber(A.ordinal) <= tonumber(redis.call('HGET', K.st, 'ord')) then
    return 'duplicate'
  end
  return nil
end

-- The event was placed in the tree (its parent, a switch's leaf, merged settings) as it stood at expectRev.
local function moved()
  return A.expectRev ~= '' and (redis.call('HGET', K.tree, 'rev') or '0') ~= A.expectRev
end

-- A deleted conversation keeps only its tree hash, marked: nothing writes it again.
local function deleted()
  return redis.call('EXISTS', K.epoch) == 0 and redis.call('HEXISTS', K.tree, 'deleted') == 1
end

local function append()
  -- One look at the epoch per append (this runs once per token): a log that is gone was deleted, or lost.
  if redis.call('EXISTS', K.epoch) == 0 then
    if redis.call('HEXISTS', K.tree, 'deleted') == 1 then
      -- A reply that ran on while its conversation was deleted is billed all the same.
      if A.bill ~= '' then bill() end
      return 'deleted'
    end
    -- A reply's log cannot vanish under it unnoticed (a Redis restarted empty): say so, do not start a new one.
    if A.kind == 'reply' then return 'lost-log' end
  end
  if moved() then return 'moved' end
  -- A switch moves the path under a reply that runs or waits (sent on another node meanwhile): refused.
  if A.kind == 'state' and A.leaf ~= '' and (redis.call('EXISTS', K.lease) == 1 or redis.call('LLEN', K.queue) > 0) then return 'busy' end
  if A.kind == 'reply' then
    local refused = fenced()
    if refused then return refused end
  end
  if redis.call('EXISTS', K.epoch) == 0 then redis.call('SET', K.epoch, A.epoch) end
  local seq = redis.call('INCR', K.seq)
  local json = '{"seq":' .. seq .. ',' .. A.json
  local offset = redis.call('INCRBY', K.bytes, #json) - #json
  redis.call('XADD', K.log, seq .. '-0', 'e', json, 't', A.now, 'o', offset)
  -- Only the event that starts a conversation makes its owner: one written before owners keeps none.
  if A.owner ~= '' and redis.call('EXISTS', K.hist) == 0 then redis.call('HSETNX', K.tree, 'owner', A.owner) end
  if A.history ~= '' then
    local score = seq
    if A.historyScore ~= '' then score = tonumber(A.historyScore) end
    redis.call('ZADD', K.hist, score, A.history)
  end
  if A.leaf ~= '' then redis.call('HSET', K.tree, 'leaf', A.leaf) end
  if A.settings ~= '' then redis.call('HSET', K.tree, 'settings', A.settings) end
  if A.roles ~= '' then redis.call('HSET', K.tree, 'roles', A.roles) end
  if A.leaf ~= '' or A.settings ~= '' or A.roles ~= '' then redis.call('HINCRBY', K.tree, 'rev', 1) end
  if A.clientId ~= '' then
    redis.call('HSET', K.ids, A.clientId, json)
    redis.call('ZADD', K.idx, seq, A.clientId)
    if redis.call('ZCARD', K.idx) > tonumber(A.idsKept) then
      local old = redis.call('ZPOPMIN', K.idx)
      redis.call('HDEL', K.ids, old[1])
    end
  end
  if A.bill ~= '' then bill() end
  if A.kind == 'reply' then
    if A.phase == 'start' then
      redis.call('DEL', K.st)
      redis.call('HSET', K.st, 'replyId', A.replyId, 'startSeq', seq, 'ord', A.ordinal, 'parent', A.parent)
      if A.runningJob ~= '' then redis.call('HSET', K.st, 'job', A.runningJob) end
    elseif A.phase == 'end' then
      redis.call('DEL', K.st)
    else
      if A.responseId == '' then
        redis.call('HSET', K.st, 'ord', A.ordinal)
      else
        redis.call('HSET', K.st, 'ord', A.ordinal, 'seq', A.sequence)
        redis.call('HSETNX', K.st, 'resp', A.responseId)
      end
    end
    redis.call('PEXPIRE', K.lease, A.leaseMs)
  end
  -- Deltas are the hot path; every other event keeps the conversation's keys alive, and is its last activity.
  if A.phase ~= 'delta' then
    redis.call('HSET', K.tree, 'at', A.now)
    keepAlive(A.retentionMs)
  end
  return json
end
`;

/** The epoch of the log an append went to (the script's answer is the event JSON, or a refusal). */
const EPOCH = `redis.call('GET', K.epoch)`;

/** Entries in history after the append: over the bound, the caller prunes (branches.toPrune decides which). */
const HISTORY_SIZE = `redis.call('ZCARD', K.hist)`;

/** Returns {event JSON with its seq, epoch, history size}, or "lost-log", "lost-lease", "duplicate", "moved", "busy", "deleted". */
export const appendScript = new Script(
  APPEND_KEYS,
  APPEND_ARGS,
  `${APPEND}
local json = append()
if string.sub(json, 1, 1) ~= '{' then return json end
return {json, ${EPOCH}, ${HISTORY_SIZE}}`,
);

/**
 * A user message and the reply it asks for. Returns {"appended", json, start, epoch, history size}
 * | {"duplicate", json} | {"queue-full"} | {"moved"}.
 */
export const submitScript = new Script(
  APPEND_KEYS,
  [...APPEND_ARGS, 'job', 'jobReplyId', 'maxQueued'],
  `${APPEND}
if A.clientId ~= '' then
  local prev = redis.call('HGET', K.ids, A.clientId)
  if prev then return {'duplicate', prev} end
end
if deleted() then return {'deleted'} end
if moved() then return {'moved'} end
local start = 0
if A.job ~= '' then
  if redis.call('EXISTS', K.lease) == 0 then
    redis.call('SET', K.lease, A.node .. '|' .. A.jobReplyId, 'PX', A.leaseMs)
    start = 1
  elseif redis.call('LLEN', K.queue) >= tonumber(A.maxQueued) then
    return {'queue-full'}
  else
    redis.call('RPUSH', K.queue, A.job)
  end
end
local json = append()
return {'appended', json, start, ${EPOCH}, ${HISTORY_SIZE}}`,
);

/**
 * A consistent read of what a joiner is shown: the head seq, the epoch ("" for
 * no log), the history, and the retained events of the reply in flight (to
 * fold). Returns {seq, epoch, history, entries}.
 */
export const snapshotScript = new Script(
  ['seq', 'epoch', 'hist', 'st', 'log', 'tree'],
  [],
  `
local startSeq = redis.call('HGET', K.st, 'startSeq')
local entries = {}
if startSeq then entries = redis.call('XRANGE', K.log, startSeq .. '-0', '+') end
local tree = redis.call('HMGET', K.tree, 'leaf', 'settings', 'rev', 'owner')
return {redis.call('GET', K.seq) or '0', redis.call('GET', K.epoch) or '', redis.call('ZRANGE', K.hist, 0, -1, 'WITHSCORES'), entries, tree[1] or '', tree[2] or '', tree[3] or '0', tree[4] or ''}`,
);

/** Drop retained events before minSeq, never one of the reply in flight. */
export const trimScript = new Script(
  ['log', 'st'],
  ['minSeq'],
  `
local min = tonumber(A.minSeq)
local keepFrom = tonumber(redis.call('HGET', K.st, 'startSeq') or '')
if keepFrom and keepFrom < min then min = keepFrom end
return redis.call('XTRIM', K.log, 'MINID', min .. '-0')`,
);

/**
 * The reply this node ran has ended: hand the lease to the next job, or
 * release it. Fenced: a node that lost the lease meanwhile (paused past it,
 * and another node took over) advances nothing. Returns the job JSON or false.
 */
export const nextScript = new Script(
  ['lease', 'queue', 'st'],
  ['node', 'replyId', 'leaseMs'],
  `
if redis.call('GET', K.lease) ~= A.node .. '|' .. A.replyId then return false end
local job = redis.call('LPOP', K.queue)
if job then
  redis.call('SET', K.lease, A.node .. '|' .. cjson.decode(job).replyId, 'PX', A.leaseMs)
  -- Until its reply.start replaces this hash, the job handed over says who asked for it.
  redis.call('HSET', K.st, 'handed', job)
  -- Its reply.start rewrites the hash with the conversation's lifetime; a node lost before that leaves nothing for long.
  redis.call('PEXPIRE', K.st, tonumber(A.leaseMs) * 60)
  return job
end
redis.call('DEL', K.lease)
return false`,
);

/**
 * Take over a conversation whose lease lapsed. Returns "end:<replyId>" (a reply
 * was in flight: this node now holds it, to end it), "job:<JSON>" (run this
 * queued reply), or "".
 */
export const adoptScript = new Script(
  ['lease', 'st', 'queue'],
  ['node', 'leaseMs'],
  `
if redis.call('EXISTS', K.lease) == 1 then return '' end
local inFlight = redis.call('HMGET', K.st, 'replyId', 'ord', 'job', 'resp', 'seq')
if inFlight[1] then
  redis.call('SET', K.lease, A.node .. '|' .. inFlight[1], 'PX', A.leaseMs)
  return {'orphan', inFlight[1], inFlight[2] or '0', inFlight[3] or '', inFlight[4] or '', inFlight[5] or '0'}
end
local job = redis.call('LPOP', K.queue)
if job then
  redis.call('SET', K.lease, A.node .. '|' .. cjson.decode(job).replyId, 'PX', A.leaseMs)
  return {'job', job}
end
return ''`,
);

/**
 * Delete a conversation in one step: every key of it goes, and the tree hash
 * stays only as the mark that it was deleted (for as long as the conversation
 * would have been kept), so no late write starts it again.
 */
export const deleteScript = new Script(
  ['seq', 'epoch', 'log', 'bytes', 'hist', 'st', 'tree', 'ids', 'idx', 'lease', 'queue', 'members', 'listed'],
  ['retentionMs'],
  `
for _, key in pairs(K) do redis.call('DEL', key) end
redis.call('HSET', K.tree, 'deleted', 1)
redis.call('PEXPIRE', K.tree, A.retentionMs)
return 1`,
);

/**
 * A reply with no message of its own takes the lease only while nothing runs
 * or waits (a lease given to a send's reply has no reply in flight yet: the
 * lease itself says so). Returns 1 or 0.
 */
export const claimIdleScript = new Script(
  ['lease', 'queue'],
  ['node', 'replyId', 'leaseMs'],
  `
if redis.call('EXISTS', K.lease) == 1 or redis.call('LLEN', K.queue) > 0 then return 0 end
redis.call('SET', K.lease, A.node .. '|' .. A.replyId, 'PX', A.leaseMs)
return 1`,
);

export const renewScript = new Script(
  ['lease'],
  ['node', 'replyId', 'leaseMs'],
  `
if redis.call('GET', K.lease) == A.node .. '|' .. A.replyId then redis.call('PEXPIRE', K.lease, A.leaseMs) end
return 1`,
);

/** Returns the removed job JSON or false. */
export const removeQueuedScript = new Script(
  ['queue'],
  ['replyId'],
  `
for _, job in ipairs(redis.call('LRANGE', K.queue, 0, -1)) do
  if cjson.decode(job).replyId == A.replyId then
    redis.call('LREM', K.queue, 1, job)
    return job
  end
end
return false`,
);

/**
 * A token bucket (the same rule as TokenBucket in server/session/limits.ts):
 * `capacity` tokens refilled continuously at `rate` per second. True if a token was taken.
 */
const TAKE_TOKEN = `
local function takeToken(key, capacity, rate, now)
  local state = redis.call('HMGET', key, 'tokens', 'last')
  local tokens = tonumber(state[1]) or capacity
  local last = tonumber(state[2]) or now
  tokens = math.min(capacity, tokens + math.max(0, now - last) / 1000 * rate)
  if tokens < 1 then return false end
  redis.call('HSET', key, 'tokens', tostring(tokens - 1), 'last', tostring(now))
  -- A bucket left alone is full again after capacity/rate seconds: then it has nothing to remember.
  redis.call('PEXPIRE', key, math.ceil(capacity / rate * 1000) + 1000)
  return true
end
`;

/** Returns 1 if a token was taken, 0 if the bucket is empty. */
export const takeTokenScript = new Script(
  ['bucket'],
  ['capacity', 'perSecond', 'now'],
  `${TAKE_TOKEN}
if takeToken(K.bucket, tonumber(A.capacity), tonumber(A.perSecond), tonumber(A.now)) then return 1 end
return 0`,
);

/**
 * Reserve one reply for a user: the quota, replies in flight and the reply
 * rate are checked and taken together. Returns "ok", "quota", "active" or "rate".
 */
export const startReplyScript = new Script(
  ['active', 'rate', 'quota'],
  ['maxActive', 'perMinute', 'tokenQuota', 'activeExpiryMs', 'now'],
  `${TAKE_TOKEN}
local quota = tonumber(A.tokenQuota)
if quota > 0 and tonumber(redis.call('GET', K.quota) or '0') >= quota then return 'quota' end
if tonumber(redis.call('GET', K.active) or '0') >= tonumber(A.maxActive) then return 'active' end
if not takeToken(K.rate, tonumber(A.perMinute), tonumber(A.perMinute) / 60, tonumber(A.now)) then return 'rate' end
redis.call('INCR', K.active)
redis.call('PEXPIRE', K.active, A.activeExpiryMs)
return 'ok'`,
);

export const endReplyScript = new Script(
  ['active'],
  [],
  `
if tonumber(redis.call('GET', K.active) or '0') > 0 then redis.call('DECR', K.active) end
return 1`,
);
