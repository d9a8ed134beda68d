// The chat page: room list (room in the URL hash, so a reload or a second tab
// lands in the same room), composer with Stop, presence, typing, connection
// state. Message rendering lives in room-view.ts.
import { z } from 'zod';
import { ConversationId, type User } from '../../shared/protocol.js';
import { randomId } from '../ids.js';
import { RelayClient, type Conversation, type StateChange } from '../index.js';
import { avatar, byId, h } from './dom.js';
import { PAGE_TOOLS, followOwnLoop } from './page-tools.js';
import { RoomView } from './room-view.js';

const ROOMS_KEY = 'relay.rooms';
const IDS_KEY = 'relay.identities';
const TOKEN_KEY = 'relay.token';
const MODEL_KEY = 'relay.model';
const MAX_ROOMS = 12;
const TYPING_SHOWN_MS = 3_500;
const DEFAULT_ROOM = 'general';

const els = {
  rooms: byId<HTMLUListElement>('rooms'),
  joinForm: byId<HTMLFormElement>('join-form'),
  joinInput: byId<HTMLInputElement>('join-input'),
  title: byId('room-title'),
  members: byId('members'),
  conn: byId('conn'),
  connLabel: byId('conn-label'),
  me: byId('me-name'),
  messages: byId('messages'),
  typing: byId('typing'),
  composer: byId<HTMLFormElement>('composer'),
  input: byId<HTMLTextAreaElement>('composer-input'),
  send: byId<HTMLButtonElement>('send-button'),
  modelPicker: byId('model-picker'),
  model: byId<HTMLSelectElement>('model-select'),
  stop: byId<HTMLButtonElement>('stop-button'),
  toasts: byId('toasts'),
  auth: byId<HTMLFormElement>('auth-form'),
  authInput: byId<HTMLInputElement>('auth-input'),
};

// ------------------------------------------------------------ persisted bits (validated: storage is user-editable)

const StringList = z.array(z.string());
function loadList(storage: Storage, key: string): string[] {
  try {
    const parsed = StringList.safeParse(JSON.parse(storage.getItem(key) ?? '[]'));
    return parsed.success ? parsed.data : [];
  } catch {
    return [];
  }
}
const saveList = (storage: Storage, key: string, list: string[]) => storage.setItem(key, JSON.stringify(list));

/** Anonymous servers give a new identity per connection; remember this tab's, so "you" survives reconnects. */
const myIds = new Set(loadList(sessionStorage, IDS_KEY));
const me = { isMe: (u: User | undefined) => u !== undefined && myIds.has(u.id) };

let rooms = loadList(localStorage, ROOMS_KEY).filter((r) => ConversationId.safeParse(r).success).slice(0, MAX_ROOMS);
const unread = new Map<string, number>();
const typing = new Map<string, { name: string; until: number }>();
let current = '';
let view: RoomView | undefined;
let roomOffs: Array<() => void> = [];

// ------------------------------------------------------------ the client

const storedToken = sessionStorage.getItem(TOKEN_KEY);
const client = new RelayClient({
  url: `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/ws`,
  ...(storedToken ? { token: storedToken } : {}),
});

client.on('welcome', (w) => {
  myIds.add(w.user.id);
  saveList(sessionStorage, IDS_KEY, [...myIds].slice(-20));
  els.me.replaceChildren(avatar(w.user.id, w.user.name), h('span', {}, w.user.name));
  renderModels();
});
client.on('state', (s) => showState(s));
client.on('error', (e) => {
  if (e.code !== 'unauthorized') toast(e.message);
});

function showState(s: StateChange): void {
  els.conn.dataset.state = s.state;
  const label =
    s.state === 'open'
      ? 'Connected'
      : s.state === 'connecting'
        ? 'Connecting…'
        : s.state === 'reconnecting'
          ? s.delayMs !== undefined && s.delayMs >= 1_000
            ? `Reconnecting in ${Math.round(s.delayMs / 1000)} s…`
            : 'Reconnecting…'
          : s.code === 4401
            ? 'Sign-in needed'
            : 'Offline';
  els.connLabel.textContent = label;
  // Token mode: the server refused us. Ask for a token rather than retrying in a loop.
  els.auth.hidden = !(s.state === 'closed' && s.code === 4401);
}

els.auth.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const token = els.authInput.value.trim();
  if (!token) return;
  sessionStorage.setItem(TOKEN_KEY, token);
  els.auth.hidden = true;
  client.setToken(token);
});

// ------------------------------------------------------------ rooms

function normalizeRoom(input: string): string {
  return input.trim().replace(/\s+/g, '-').replace(/[^A-Za-z0-9._:-]/g, '').slice(0, 64);
}

function roomFromHash(): string {
  let raw = '';
  try {
    raw = decodeURIComponent(location.hash.slice(1));
  } catch {
    // A mangled hash falls back to the default room.
  }
  const room = normalizeRoom(raw);
  return ConversationId.safeParse(room).success ? room : DEFAULT_ROOM;
}

/** Subscribe once per room for what the sidebar shows while another room is open. */
const watched = new Set<string>();
function watch(room: string): Conversation {
  const conv = client.conversation(room);
  if (watched.has(room)) return conv;
  watched.add(room);
  conv.on('message', () => room !== current && bump(room));
  conv.on('error', (e) => toast(`${room}: ${e.message}`));
  return conv;
}

function bump(room: string): void {
  unread.set(room, (unread.get(room) ?? 0) + 1);
  renderRooms();
}

function switchTo(room: string): void {
  if (room === current) return;
  current = room;
  if (!rooms.includes(room)) rooms = [...rooms, room].slice(-MAX_ROOMS);
  saveList(localStorage, ROOMS_KEY, rooms);
  unread.delete(room);
  typing.clear();
  const conv = watch(room);
  for (const off of roomOffs.splice(0)) off();
  view?.dispose();
  view = new RoomView(conv, els.messages, me).mount();
  roomOffs = [
    conv.on('joined', () => (renderMembers(conv), updateStop(conv))),
    conv.on('presence', () => renderMembers(conv)),
    conv.on('typing', (t) => showTyping(t.user)),
    conv.on('reply.start', () => updateStop(conv)),
    conv.on('reply.end', () => updateStop(conv)),
    conv.on('message', (m) => typing.delete(m.message.author.id) && renderTyping()),
  ];
  els.title.textContent = room;
  document.title = `#${room} · Relay Chat`;
  els.input.placeholder = `Message #${room}`;
  renderRooms();
  renderMembers(conv);
  renderTyping();
  updateStop(conv);
  els.input.focus();
}

function renderRooms(): void {
  els.rooms.replaceChildren(
    ...rooms.map((room) => {
      const count = unread.get(room) ?? 0;
      const link = h(
        'a',
        { href: `#${encodeURIComponent(room)}`, class: 'room-link', 'aria-current': room === current ? 'page' : undefined },
        h('span', { class: 'hash' }, '#'),
        h('span', { class: 'room-name' }, room),
        count ? h('span', { class: 'unread', title: `${count} new` }, count > 99 ? '99+' : String(count)) : '',
      );
      const leave = h('button', { type: 'button', class: 'leave', title: `Leave #${room}`, 'aria-label': `Leave ${room}` }, '×');
      leave.addEventListener('click', () => void leaveRoom(room));
      return h('li', {}, link, leave);
    }),
  );
}

async function leaveRoom(room: string): Promise<void> {
  rooms = rooms.filter((r) => r !== room);
  saveList(localStorage, ROOMS_KEY, rooms);
  watched.delete(room);
  await client.conversation(room).leave();
  if (room === current) location.hash = encodeURIComponent(rooms[0] ?? DEFAULT_ROOM);
  else renderRooms();
}

function renderMembers(conv: Conversation): void {
  const members = conv.members;
  els.members.replaceChildren(
    h('span', { class: 'stack' }, ...members.slice(0, 5).map((u) => avatar(u.id, u.name))),
    h('span', { class: 'count' }, `${members.length} here`),
  );
  els.members.title = members.map((u) => (me.isMe(u) ? `${u.name} (you)` : u.name)).join('\n');
}

function showTyping(user: User): void {
  typing.set(user.id, { name: user.name, until: Date.now() + TYPING_SHOWN_MS });
  renderTyping();
  setTimeout(renderTyping, TYPING_SHOWN_MS + 50);
}

function renderTyping(): void {
  const now = Date.now();
  for (const [id, t] of typing) if (t.until <= now) typing.delete(id);
  const names = [...typing.values()].map((t) => t.name);
  els.typing.textContent =
    names.length === 0 ? '' : names.length === 1 ? `${names[0]} is typing…` : names.length === 2 ? `${names[0]} and ${names[1]} are typing…` : 'Several people are typing…';
}

function updateStop(conv: Conversation): void {
  const running = conv.streaming;
  els.stop.hidden = !running || running.done;
}

// ------------------------------------------------------------ model picker

/** Offered only when the server lists more than one model; the choice is kept while the server still offers it. */
function renderModels(): void {
  const models = client.models;
  const wanted = els.model.value || localStorage.getItem(MODEL_KEY) || '';
  els.model.replaceChildren(...models.map((m) => h('option', { value: m.id }, m.default ? `${m.id} (default)` : m.id)));
  const fallback = models.find((m) => m.default)?.id ?? models[0]?.id ?? '';
  els.model.value = models.some((m) => m.id === wanted) ? wanted : fallback;
  els.modelPicker.hidden = models.length < 2;
}

/** The model a send asks for, if there is a choice to make. */
function chosenModel(): string | undefined {
  return client.models.length > 1 && els.model.value ? els.model.value : undefined;
}

els.model.addEventListener('change', () => localStorage.setItem(MODEL_KEY, els.model.value));

// ------------------------------------------------------------ composer

function send(): void {
  const text = els.input.value.trim();
  if (!text || !current) return;
  const conv = client.conversation(current);
  const clientMessageId = randomId();
  const target = view;
  target?.addPending(clientMessageId, text, client.user ?? { id: 'me', name: 'You' });
  const model = chosenModel();
  conv.send(text, { clientMessageId, tools: [...PAGE_TOOLS], ...(model ? { model } : {}) }).then(
    // This page asked, so this page answers the calls of its own tool, all along the loop.
    (m) => {
      if (m.replyId) followOwnLoop(conv, conv.reply(m.replyId), toast);
    },
    (err: Error) => {
      target?.failPending(clientMessageId, err.message);
      toast(`Not sent: ${err.message}`);
    },
  );
  els.input.value = '';
  autosize();
}

function autosize(): void {
  els.input.style.height = 'auto';
  els.input.style.height = `${Math.min(els.input.scrollHeight, 200)}px`;
}

let lastTyping = 0;
els.input.addEventListener('input', () => {
  autosize();
  const now = Date.now();
  if (current && els.input.value && now - lastTyping > 1_500) {
    lastTyping = now;
    client.conversation(current).typing();
  }
});
els.input.addEventListener('keydown', (ev) => {
  if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
    ev.preventDefault();
    send();
  }
});
els.composer.addEventListener('submit', (ev) => {
  ev.preventDefault();
  send();
});
els.stop.addEventListener('click', () => {
  const conv = client.conversation(current);
  const running = conv.streaming;
  if (!running) return;
  els.stop.hidden = true;
  conv.cancel(running.id).catch((err: Error) => toast(`Stop failed: ${err.message}`));
});
els.joinForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const room = normalizeRoom(els.joinInput.value);
  if (!ConversationId.safeParse(room).success) return toast('Room names use letters, digits and . _ : -');
  els.joinInput.value = '';
  location.hash = encodeURIComponent(room);
});

function toast(message: string): void {
  const el = h('div', { class: 'toast', role: 'status' }, message);
  els.toasts.append(el);
  while (els.toasts.children.length > 3) els.toasts.firstElementChild?.remove();
  setTimeout(() => el.remove(), 5_000);
}

// ------------------------------------------------------------ start

window.addEventListener('hashchange', () => switchTo(roomFromHash()));
for (const room of rooms) watch(room);
switchTo(roomFromHash());
if (location.hash.slice(1) !== encodeURIComponent(current)) history.replaceState(null, '', `#${encodeURIComponent(current)}`);
client.connect().catch((err: Error) => toast(err.message));
