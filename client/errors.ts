// The error the client's promises reject with: `code` is a protocol error code
// (from the server's `error` frame) or one of the client's own below.
//   disconnected: the socket went away before the answer came
//   closed:       the client was closed
//   unauthorized: the server refused the token (4401)

export class SendError extends Error {
  override name = 'SendError';
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}
