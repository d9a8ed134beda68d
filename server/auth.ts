// Who is on the other end of a socket. Without a configured secret every
// connection is an anonymous user with a generated id and name; token
// verification plugs in here.
import { randomBytes } from 'node:crypto';
import type { User } from '../shared/protocol.js';

export interface Authenticator {
  /** Resolves the user a token stands for; rejects (closing the socket with 4401) when it stands for nobody. */
  authenticate(token: string | undefined): Promise<User>;
}

const ADJECTIVES = ['Amber', 'Brisk', 'Calm', 'Dapper', 'Eager', 'Fuzzy', 'Gentle', 'Hazel', 'Jolly', 'Lucky', 'Mellow', 'Nimble', 'Plucky', 'Quiet', 'Rapid', 'Sunny'];
const ANIMALS = ['Otter', 'Falcon', 'Badger', 'Heron', 'Lynx', 'Marmot', 'Newt', 'Orca', 'Panda', 'Quokka', 'Raven', 'Stoat', 'Tapir', 'Wombat', 'Yak', 'Zebra'];

export class AnonymousAuth implements Authenticator {
  /** A token is ignored: with no secret configured there is nothing to check it against. */
  async authenticate(): Promise<User> {
    const bytes = randomBytes(8);
    const name = `${ADJECTIVES[bytes[0]! % ADJECTIVES.length]} ${ANIMALS[bytes[1]! % ANIMALS.length]}`;
    return { id: `anon-${bytes.toString('hex')}`, name };
  }
}
