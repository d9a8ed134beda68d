// The Lua scripts of the Redis store. Each runs atomically in Redis, so seq
// allocation, the retained log, the folded history, the reply lease and the
// publish to other nodes can never disagree, however many nodes write.
//
// Keys of one conversation share a hash tag ({c:ID}) so a Redis Cluster keeps
// them on one shard. KEYS, in this order, for every script:
export const CONVERSATION_KEYS = [
  'seq', // INCR counter: the conversation's last seq
  'log', // stream: entry id "<seq>-0", field e = event JSON (the retained log resume reads)
  'hist', // sorted set: complete history messages (JSON) scored by the seq that opened them
  'st', // hash: the reply in flight (replyId, startSeq, seq, createdAt, ord = last ordinal written)
  'st:text', // strings the reply in flight accumulates with APPEND
  'st:reasoning',
  'st:refusal',
  'ids', // hash: clientMessageId (or #messageId) -> the message event JSON, for idempotent send
  'idx', // sorted set: the same ids by seq, to trim the hash
  'lease', // "<node>|<replyId>" with an expiry: who runs the conversation's reply
  'queue', // list of queued reply jobs (JSON)
  'members', // hash: memberId -> {"n": node, "u": user}
] as const;

// Appends one event. ARGV: 1 type, 2 event JSON without its opening "{" (the
// script prepends "seq"), 3 now ms, 4 log max length, 5 retention ms,
// 6 history limit, 7 pub/sub channel, 8 origin JSON or "", 9 node,
// 10 lease ms, then per type: message: 11 history message JSON, 12 id key;
// reply.*: 11 replyId, 12 ordinal, 13 text, 14 reasoning, 15 refusal,
// 16 finishReason, 17 toolCalls JSON or "", 18 model. Type "reply.dropped"
// writes a reply.end for a reply that never started (cancelled while queued).
// Returns the event JSON with its seq, or a status string.
const APPEND = `
local function keepAlive(ms)
  -- Every key but the lease, whose expiry means something else.
  for i = 1, #KEYS do
    if i ~= 10 then redis.call('PEXPIRE', KEYS[i], ms) end
  end
end

local function finishReply(replyId, finishReason, toolCalls)
  local st = KEYS[4]
  local startSeq = tonumber(redis.call('HGET', st, 'startSeq'))
  local msg = {
    id = replyId, role = 'assistant',
    text = redis.call('GET', KEYS[5]) or '',
    createdAt = tonumber(redis.call('HGET', st, 'createdAt')),
    finishReason = finishReason,
  }
  local model = redis.call('HGET', st, 'model')
  if model and model ~= '' then msg.model = model end
  local reasoning = redis.call('GET', KEYS[6])
  if reasoning and reasoning ~= '' then msg.reasoning = reasoning end
  local refusal = redis.call('GET', KEYS[7])
  if refusal and refusal ~= '' then msg.refusal = refusal end
  if toolCalls ~= '' then msg.toolCalls = cjson.decode(toolCalls) end
  redis.call('ZADD', KEYS[3], startSeq, cjson.encode(msg))
  redis.call('DEL', st, KEYS[5], KEYS[6], KEYS[7])
end

local function append(argv)
  local t = argv[1]
  local node = argv[9]
  -- The end of a reply that never started (cancelled while queued): no lease, nothing to fold.
  if t == 'reply.dropped' then
    -- nothing to check
  elseif t ~= 'message' then
    local replyId, ordinal = argv[11], tonumber(argv[12])
    -- Fencing: only the lease holder writes a reply's events.
    if redis.call('GET', KEYS[10]) ~= node .. '|' .. replyId then return 'lost-lease' end
    local inFlight = redis.call('HGET', KEYS[4], 'replyId')
    if t == 'reply.start' then
      if inFlight == replyId then return 'duplicate' end
    else
      if inFlight ~= replyId then return 'duplicate' end
      if ordinal <= tonumber(redis.call('HGET', KEYS[4], 'ord')) then return 'duplicate' end
    end
  else
    if redis.call('HEXISTS', KEYS[8], argv[12]) == 1 then return 'duplicate' end
  end

  local seq = redis.call('INCR', KEYS[1])
  local json = '{"seq":' .. seq .. ',' .. argv[2]
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', argv[4], seq .. '-0', 'e', json)

  if t == 'message' then
    redis.call('ZADD', KEYS[3], seq, argv[11])
    redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -1 - tonumber(argv[6]))
    redis.call('HSET', KEYS[8], argv[12], json)
    redis.call('ZADD', KEYS[9], seq, argv[12])
    if redis.call('ZCARD', KEYS[9]) > 1000 then
      local old = redis.call('ZPOPMIN', KEYS[9])
      redis.call('HDEL', KEYS[8], old[1])
    end
  elseif t == 'reply.start' then
    redis.call('DEL', KEYS[4], KEYS[5], KEYS[6], KEYS[7])
    redis.call('HSET', KEYS[4], 'replyId', argv[11], 'startSeq', seq, 'seq', seq, 'createdAt', argv[3], 'ord', argv[12], 'model', argv[18])
  elseif t == 'reply.delta' then
    if argv[13] ~= '' then redis.call('APPEND', KEYS[5], argv[13]) end
    if argv[14] ~= '' then redis.call('APPEND', KEYS[6], argv[14]) end
    if argv[15] ~= '' then redis.call('APPEND', KEYS[7], argv[15]) end
    redis.call('HSET', KEYS[4], 'seq', seq, 'ord', argv[12])
  elseif t == 'reply.end' then
    finishReply(argv[11], argv[16], argv[17])
  end
  if t ~= 'message' and t ~= 'reply.dropped' then redis.call('PEXPIRE', KEYS[10], argv[10]) end
  -- Deltas are the hot path; every other event keeps the conversation's keys alive.
  if t ~= 'reply.delta' then keepAlive(argv[5]) end
  redis.call('PUBLISH', argv[7], 'E' .. argv[8] .. '\\n' .. json)
  return json
end
`;

export const appendScript = `${APPEND}
return append(ARGV)`;

// A user message and the reply it asks for. ARGV as for a message append,
// then 13 reply job JSON or "", 14 replyId, 15 max queued.
// Returns {"appended", json, start} | {"duplicate", json} | {"queue-full"}.
export const submitScript = `${APPEND}
local prev = redis.call('HGET', KEYS[8], ARGV[12])
if prev then return {'duplicate', prev} end
local start = 0
if ARGV[13] ~= '' then
  if redis.call('EXISTS', KEYS[10]) == 0 then
    redis.call('SET', KEYS[10], ARGV[9] .. '|' .. ARGV[14], 'PX', ARGV[10])
    start = 1
  elseif redis.call('LLEN', KEYS[11]) >= tonumber(ARGV[15]) then
    return {'queue-full'}
  else
    redis.call('RPUSH', KEYS[11], ARGV[13])
  end
end
return {'appended', append(ARGV), start}`;

// The reply this node ran has ended: hand the lease to the next job, or
// release it. ARGV: 1 node, 2 lease ms. Returns the job JSON or false.
export const nextScript = `
local job = redis.call('LPOP', KEYS[11])
if job then
  redis.call('SET', KEYS[10], ARGV[1] .. '|' .. cjson.decode(job).replyId, 'PX', ARGV[2])
  return job
end
local holder = redis.call('GET', KEYS[10])
if holder and string.sub(holder, 1, #ARGV[1] + 1) == ARGV[1] .. '|' then redis.call('DEL', KEYS[10]) end
return false`;

// Take over a conversation whose lease lapsed. ARGV: 1 node, 2 lease ms.
// Returns "end:<replyId>" (a reply was in flight: end it), "job:<JSON>" (run
// this queued reply), or "".
export const adoptScript = `
if redis.call('EXISTS', KEYS[10]) == 1 then return '' end
local inFlight = redis.call('HGET', KEYS[4], 'replyId')
if inFlight then
  redis.call('SET', KEYS[10], ARGV[1] .. '|' .. inFlight, 'PX', ARGV[2])
  return 'end:' .. inFlight
end
local job = redis.call('LPOP', KEYS[11])
if job then
  redis.call('SET', KEYS[10], ARGV[1] .. '|' .. cjson.decode(job).replyId, 'PX', ARGV[2])
  return 'job:' .. job
end
return ''`;

// ARGV: 1 node, 2 replyId, 3 lease ms.
export const renewScript = `
if redis.call('GET', KEYS[10]) == ARGV[1] .. '|' .. ARGV[2] then redis.call('PEXPIRE', KEYS[10], ARGV[3]) end
return 1`;

// ARGV: 1 replyId. Returns the removed job JSON or false.
export const removeQueuedScript = `
for _, job in ipairs(redis.call('LRANGE', KEYS[11], 0, -1)) do
  if cjson.decode(job).replyId == ARGV[1] then
    redis.call('LREM', KEYS[11], 1, job)
    return job
  end
end
return false`;

// Per-user limits, shared by all nodes. KEYS: 1 active count, 2 this minute's
// reply count, 3 this window's token count. ARGV: 1 max active, 2 replies per
// minute, 3 token quota (0: none), 4 safety expiry of the active count ms.
// Returns "ok", "quota", "active" or "rate".
export const startReplyScript = `
local quota = tonumber(ARGV[3])
if quota > 0 and tonumber(redis.call('GET', KEYS[3]) or '0') >= quota then return 'quota' end
if tonumber(redis.call('GET', KEYS[1]) or '0') >= tonumber(ARGV[1]) then return 'active' end
if tonumber(redis.call('GET', KEYS[2]) or '0') >= tonumber(ARGV[2]) then return 'rate' end
redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], 120)
return 'ok'`;

export const endReplyScript = `
if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then redis.call('DECR', KEYS[1]) end
return 1`;
