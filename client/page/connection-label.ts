// What the header says of the connection, from the client's state changes:
// a reconnect far off counts down in seconds, and a server that refused the
// token asks for one rather than saying "Offline".
import type { StateChange } from '../index.js';

export function connectionLabel(s: StateChange): string {
  switch (s.state) {
    case 'open':
      return 'Connected';
    case 'connecting':
      return 'Connecting…';
    case 'reconnecting':
      return s.delayMs !== undefined && s.delayMs >= 1_000 ? `Reconnecting in ${Math.round(s.delayMs / 1000)} s…` : 'Reconnecting…';
    default:
      return s.code === 4401 ? 'Sign-in needed' : 'Offline';
  }
}
