// The relay client library: one import for apps, in browsers and Node.
export { RelayClient } from './relay-client.js';
export type {
  ClientError,
  ClientState,
  ModelInfo,
  RelayClientEvents,
  RelayClientOptions,
  SocketConstructor,
  SocketLike,
  StateChange,
  TokenSource,
  Welcome,
} from './relay-client.js';
export { Conversation } from './conversation.js';
export { SendError } from './errors.js';
export type {
  ConversationEvents,
  ConversationUpdate,
  ErrorFrame,
  JoinedFrame,
  MessageFrame,
  PresenceFrame,
  SendOptionsArg,
  TypingFrame,
} from './conversation.js';
export { Reply } from './reply.js';
export type { ReplyEvents, ReplyResult, ToolCallUpdate } from './reply.js';
export type { RespondOptions, ToolResult, ToolResultFrame } from './tool-results.js';
export type { Attachment, ToolCall, ToolSpec } from '../shared/protocol.js';
export type { UploadOptions } from './uploads.js';
export { Backoff, defaultBackoff } from './backoff.js';
export type { BackoffOptions } from './backoff.js';
