// The names `welcome.features` may carry: what a server supports beyond the
// core of protocol v1, so a client can tell what it may use before using it.
// A client ignores names it does not know (a newer server lists more).
// docs/protocol.md lists the same names (test/unit/protocol-docs.test.ts checks).

export const features = {
  models: '`welcome.models` lists the models a `send` may name in `options.model`',
  tools: '`send.tools` offers the model tools; their calls are answered with `tool.result`',
  'tool-calls': 'replies stream tool calls (`reply.delta.toolCall`, `reply.end.toolCalls`, `joined.streaming.toolCalls`)',
  'operator-tools': 'the relay may run tools of its own and post their results as `tool.result` events',
  dialects: 'models may answer through several upstream dialects: replies may carry `reasoning` and `refusal` besides `text`',
  attachments: '`send.attachments` carries files uploaded with `POST /attachments`; messages show them in `attachments`',
  branches: '`edit`, `regenerate` and `switch` keep every branch; history is the active path, each message with its `siblings`',
  settings: '`configure` sets a conversation\'s title, system prompt, model and options (`settings`, `joined.settings`)',
  roles: 'owners, members and viewers (`role`, `remove`, `joined.role`, a JWT `roles` claim); private conversations',
  list: '`list` answers with the user\'s conversations (`conversations`), kept on the server; `delete` removes one for everyone',
} as const;

export type Feature = keyof typeof features;
