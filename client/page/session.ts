// Who the page is across reloads. A token pasted into the sign-in form (kept
// for the tab) always wins. Without one, on a server of anonymous users, the
// session token of the last welcome (kept for the browser) is presented on
// the next page load, so a reload keeps the same user, name and uploads.
import type { RelayClient } from '../index.js';

const SESSION_KEY = 'relay.session';

/** The token to connect with: the signed-in one of this tab, else the anonymous session of this browser. */
export function startingToken(signInKey: string): string | undefined {
  return sessionStorage.getItem(signInKey) ?? read() ?? undefined;
}

/** After a welcome: keep its session token for the next page load, and present it on reconnects from now on. */
export function keepSession(client: RelayClient, signInKey: string): void {
  const token = client.sessionToken;
  if (!token) return;
  try {
    localStorage.setItem(SESSION_KEY, token);
  } catch {
    // Storage full or refused: the next page load is a new user, as before.
  }
  // The kept token may have been refused (a relay restarted with a new secret)
  // and a new user made: the fresh token is the one that names this user now.
  if (!sessionStorage.getItem(signInKey)) client.setToken(token);
}

function read(): string | null {
  try {
    return localStorage.getItem(SESSION_KEY);
  } catch {
    return null;
  }
}
