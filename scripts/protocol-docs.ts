// The wire protocol as data, generated from the zod schemas of shared/protocol.ts
// so it cannot drift from what the server and the client library enforce:
// docs/protocol.schema.json, a JSON Schema (draft-07) of every frame, and
// docs/asyncapi.json, an AsyncAPI 3.0 document of `/ws` whose messages refer to
// it. `npm run docs:schema` writes both; test/unit/protocol-docs.test.ts
// regenerates them in memory and fails when the checked-in files differ.
import { writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as z from 'zod/mini';
import * as p from '../shared/protocol.js';
import { features } from '../shared/features.js';

export const SCHEMA_FILE = 'protocol.schema.json';
export const ASYNCAPI_FILE = 'asyncapi.json';
export const docsDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'docs');

type Direction = 'client' | 'server';
type Frame = z.core.$ZodObject;

/**
 * One line per frame, for the AsyncAPI messages. A frame added to the schemas
 * without a line here stops the generator: the document should say what it is.
 */
const summaries: Record<Direction, Record<string, string>> = {
  client: {
    hello: 'Opens the session (with a token in token mode); answered by `welcome`.',
    auth: "Replaces the session's token before it expires; answered by `authed`.",
    join: 'Joins a conversation; answered by `joined` (a snapshot, or the events after `since`).',
    leave: 'Leaves a conversation; answered by `left`.',
    send: 'Appends a user message and, unless `reply` is false, starts or queues a reply.',
    cancel: 'Cancels the running reply, or the reply `replyId` names (running or queued).',
    'tool.result': 'Answers one tool call of a reply that ended with `tool_calls`.',
    regenerate: 'Answers a user message again, beside its earlier answers; answered by the `reply.start` of the new reply.',
    edit: 'A new version of a user message, beside it, and its answer; acknowledged by its `message`.',
    switch: "Moves the conversation's active path to the branch through a message; every member gets `switch`.",
    configure: "Changes the conversation's title, system prompt, model or options; every member gets `settings`.",
    role: 'Gives a user a role in the conversation (the owner may); every member gets `role`.',
    invite: 'Asks for an invite token (the owner may); answered by `invited`.',
    remove: 'Takes a user out of the conversation (the owner may): they get `left` with reason "removed" and may not come back.',
    list: "Asks for the user's conversations, newest activity first; answered by `conversations`.",
    delete: 'Deletes a conversation for everyone (the owner may); every member gets `left` with reason "deleted".',
    typing: 'Tells the other members that this user is typing.',
    ping: 'Asks for a `pong`.',
    usage: "Asks for the user's own usage totals; answered with `usage`.",
  },
  server: {
    welcome: 'The session is open: who the socket acts as, its limits, the models and the features of the server.',
    joined: 'The socket is a member: history, members, and the reply in flight if any.',
    left: 'The socket is no longer a member.',
    message: 'A user message was appended (a conversation event, with a `seq`).',
    'reply.start': 'A reply began (a conversation event).',
    'reply.delta': 'A piece of a reply: text, reasoning, refusal or a piece of a tool call (a conversation event).',
    'reply.end': 'A reply ended: why, its usage, its tool calls (a conversation event).',
    'tool.result': 'The output of one tool call (a conversation event).',
    switch: 'The active path moved to another branch: the new path (a conversation event).',
    settings: "The conversation's settings changed: all of them now (a conversation event).",
    role: "A user's role changed, or they were taken out (a conversation event).",
    invited: 'The answer to `invite`: a token whose holder joins with its role (`join.invite`).',
    conversations: "The answer to `list`: a page of the user's conversations, and the `before` of the next.",
    presence: 'The members of a conversation changed.',
    typing: 'A member is typing.',
    pong: "The answer to `ping`, with the server's clock.",
    usage: "The user's totals from the usage ledger: today, and in the current quota window.",
    authed: 'The answer to `auth`: the session now runs on the new token.',
    error: 'A request failed, or a conversation hit a problem; `ref` names the frame it answers.',
  },
};

/** Parts several frames share: named in the schema, referred to by the frames. */
const components: Record<string, z.core.$ZodType> = {
  ConversationId: p.ConversationId,
  User: p.User,
  SendOptions: p.SendOptions,
  ToolSpec: p.ToolSpec,
  ToolList: p.ToolList,
  FinishReason: p.FinishReason,
  ErrorCode: p.ErrorCode,
  Usage: p.Usage,
  ToolCall: p.ToolCall,
  ToolCallDelta: p.ToolCallDelta,
  ReplyError: p.ReplyError,
  UserMessage: p.UserMessage,
  HistoryMessage: p.HistoryMessage,
  Siblings: p.Siblings,
  ConversationSettings: p.ConversationSettings,
  ConversationSummary: p.ConversationSummary,
  Role: p.Role,
  Limits: p.Limits,
};

function framesOf(union: z.core.$ZodDiscriminatedUnion): Array<{ type: string; schema: Frame }> {
  return union._zod.def.options.map((schema) => {
    const type = [...(schema._zod.propValues?.type ?? [])][0];
    if (typeof type !== 'string' || !(schema instanceof z.core.$ZodObject)) throw new Error('every frame is an object with a literal type');
    return { type, schema };
  });
}

const frames = { client: framesOf(p.ClientFrame), server: framesOf(p.ServerFrame) };
const frameId = (direction: Direction, type: string) => `${direction}.${type}`;

/**
 * The JSON Schema of every frame. Written for the receiving side (`io: input`):
 * objects stay open, since a receiver ignores fields it does not know.
 */
export function protocolSchema() {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(components)) registry.add(schema, { id });
  for (const direction of ['client', 'server'] as const) {
    for (const { type, schema } of frames[direction]) registry.add(schema, { id: frameId(direction, type) });
  }
  registry.add(p.ClientFrame, { id: 'ClientFrame' });
  registry.add(p.ServerFrame, { id: 'ServerFrame' });
  const { schemas } = z.toJSONSchema(registry, { target: 'draft-07', io: 'input', uri: (id) => `#/definitions/${id}` });
  // Each entry comes as a document of its own; inside one file they are plain definitions.
  const definitions = Object.fromEntries(Object.entries(schemas).map(([id, { $schema: _s, $id: _i, ...schema }]) => [id, schema]));
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: `chat-relay wire protocol, version ${p.PROTOCOL_VERSION}`,
    description:
      'Every frame of /ws (docs/protocol.md). A client sends a ClientFrame and receives ServerFrames; ' +
      'generated from shared/protocol.ts by `npm run docs:schema`. Receivers ignore fields they do not know, ' +
      'and clients ignore frame types they do not know. Some rules are checked in code only (a reply.delta ' +
      'carries at least one piece; tool names are unique; the tools of a send fit in 32 KB of JSON).',
    definitions,
  };
}

function messages(direction: Direction) {
  return frames[direction].map(({ type, schema }) => {
    const summary = summaries[direction][type];
    if (!summary) throw new Error(`scripts/protocol-docs.ts: no summary for the ${direction} frame "${type}"`);
    const id = frameId(direction, type);
    const message = {
      name: type,
      title: `${type} (${direction === 'client' ? 'client to server' : 'server to client'})`,
      summary,
      payload: { $ref: `${SCHEMA_FILE}#/definitions/${id}` },
      ...('ref' in schema._zod.def.shape ? { correlationId: { $ref: '#/components/correlationIds/ref' } } : {}),
    };
    return { id, message };
  });
}

/** The AsyncAPI 3.0 document of `/ws`, from the relay's side: it receives client frames and sends server frames. */
export function asyncApiDocument() {
  const client = messages('client');
  const server = messages('server');
  const refs = (list: Array<{ id: string }>) => list.map(({ id }) => ({ $ref: `#/channels/session/messages/${id}` }));
  return {
    asyncapi: '3.0.0',
    info: {
      title: 'chat-relay',
      version: String(p.PROTOCOL_VERSION),
      description:
        'A WebSocket relay for streaming LLM chat: rooms, token-by-token replies, cancel and lossless resume. ' +
        'This describes protocol version 1 on /ws; docs/protocol.md has the rules (session, limits, resume, errors). ' +
        `welcome.features may list: ${Object.keys(features).join(', ')}.`,
      license: { name: 'MIT' },
    },
    defaultContentType: 'application/json',
    servers: {
      local: { host: 'localhost:8080', protocol: 'ws', description: 'A relay started with `npm start` (PORT 8080); use wss behind TLS.' },
    },
    channels: {
      session: {
        address: '/ws',
        title: 'Session socket',
        description: 'One socket per client for the whole session; text frames, each one JSON object with a string `type`.',
        messages: Object.fromEntries([...client, ...server].map(({ id }) => [id, { $ref: `#/components/messages/${id}` }])),
        bindings: { ws: { method: 'GET', bindingVersion: '0.1.0' } },
      },
    },
    operations: {
      receiveClientFrames: {
        action: 'receive',
        channel: { $ref: '#/channels/session' },
        summary: 'Frames a client sends to the relay.',
        messages: refs(client),
      },
      sendServerFrames: {
        action: 'send',
        channel: { $ref: '#/channels/session' },
        summary: 'Frames the relay sends to a client: answers, and the events of the conversations it joined.',
        messages: refs(server),
      },
    },
    components: {
      messages: Object.fromEntries([...client, ...server].map(({ id, message }) => [id, message])),
      correlationIds: {
        ref: { location: '$message.payload#/ref', description: 'A client frame may carry `ref`; the frames the server sends because of it carry the same.' },
      },
    },
  };
}

/** The files as they are checked in: two-space JSON and a final newline. */
export function renderDocs(): Record<string, string> {
  const render = (doc: unknown) => `${JSON.stringify(doc, null, 2)}\n`;
  return { [SCHEMA_FILE]: render(protocolSchema()), [ASYNCAPI_FILE]: render(asyncApiDocument()) };
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  for (const [name, text] of Object.entries(renderDocs())) {
    await writeFile(join(docsDir, name), text);
    process.stdout.write(`wrote docs/${name}\n`);
  }
}
