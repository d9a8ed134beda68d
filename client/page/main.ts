// The chat page: room list (room in the URL hash, so a reload or a second tab
// lands in the same room), composer with Stop, presence, typing, connection
// state. Message rendering lives in room-view.ts. The page is joined to the
// room it shows and no other, so presence counts who is looking at a room. On
// a narrow screen the room list is a drawer behind the Rooms button.
import type { User } from '../../shared/protocol.js';
import { randomId } from '../ids.js';
import { RelayClient, type Conversation, type StateChange } from '../index.js';
import { AttachmentView } from './attachment-view.js';
import { AttachmentTray } from './attachments.js';
import { BranchControls } from './branch-controls.js';
import { copyCodeOnClick } from './code-copy.js';
import { avatar, byId, h } from './dom.js';
import { Follow } from './follow.js';
import { PAGE_TOOLS, followOwnLoop } from './page-tools.js';
import { isRoomId, roomIdFor } from './room-name.js';
import { RoomView } from './room-view.js';
import { keepSession, startingToken } from './session.js';
import { SettingsPanel } from './settings-panel.js';
import { Toasts, type ToastKind } from './toasts.js';

const ROOMS_KEY = 'relay.rooms';
const IDS_KEY = 'relay.identities';
const TOKEN_KEY = 'relay.token';
const MODEL_KEY = 'relay.model';
const MAX_ROOMS = 12;
const TYPING_SHOWN_MS = 3_500;
const DEFAULT_ROOM = 'general';
/** A room left while this page's own tool loop still runs there stays joined until the loop ends, or this long. */
const LOOP_GRACE_MS = 120_000;

const els = {
  app: document.querySelector<HTMLElement>('.app')!,
  room: document.querySelector<HTMLElement>('.room')!,
  sidebar: byId('sidebar'),
  roomsButton: byId<HTMLButtonElement>('rooms-button'),
  closeRooms: byId<HTMLButtonElement>('close-rooms'),
  scrim: byId('scrim'),
  rooms: byId<HTMLUListElement>('rooms'),
  joinForm: byId<HTMLFormElement>('join-form'),
  joinInput: byId<HTMLInputElement>('join-input'),
  joinPreview: byId('join-preview'),
  members: byId('members'),
  conn: byId('conn'),
  connLabel: byId('conn-label'),
  me: byId('me-name'),
  messages: byId('messages'),
  messageList: byId('message-list'),
  jump: byId<HTMLButtonElement>('jump'),
  typing: byId('typing'),
  composer: byId<HTMLFormElement>('composer'),
  input: byId<HTMLTextAreaElement>('composer-input'),
  send: byId<HTMLButtonElement>('send-button'),
  attachTray: byId('attach-tray'),
  attachButton: byId<HTMLButtonElement>('attach-button'),
  attachInput: byId<HTMLInputElement>('attach-input'),
  modelPicker: byId('model-picker'),
  model: byId<HTMLSelectElement>('model-select'),
  stop: byId<HTMLButtonElement>('stop-button'),
  toasts: byId('toasts'),
  auth: byId<HTMLFormElement>('auth-form'),
  authInput: byId<HTMLInputElement>('auth-input'),
};

// ------------------------------------------------------------ persisted bits (validated: storage is user-editable)

function loadList(storage: Storage, key: string): string[] {
  try {
    const parsed: unknown = JSON.parse(storage.getItem(key) ?? '[]');
    return Array.isArray(parsed) ? parsed.filter((s): s is string => typeof s === 'string') : [];
  } catch {
    return [];
  }
}
const saveList = (storage: Storage, key: string, list: string[]) => storage.setItem(key, JSON.stringify(list));

/** Anonymous servers give a new identity per connection; remember this tab's, so "you" survives reconnects. */
const myIds = new Set(loadList(sessionStorage, IDS_KEY));
const me = { isMe: (u: User | undefined) => u !== undefined && myIds.has(u.id) };

let rooms = loadList(localStorage, ROOMS_KEY).filter(isRoomId).slice(0, MAX_ROOMS);
const typing = new Map<string, { name: string; until: number }>();
let current = '';
let view: RoomView | undefined;
let roomOffs: Array<() => void> = [];
const follow = new Follow(els.messages, els.messageList, els.jump);
const toasts = new Toasts(els.toasts);
const toast = (message: string, kind?: ToastKind) => toasts.show(message, kind);
const clearToasts = (kind: ToastKind) => toasts.clear(kind);
copyCodeOnClick(els.messageList);

// ------------------------------------------------------------ the client

const storedToken = startingToken(TOKEN_KEY);
const client = new RelayClient({
  url: `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/ws`,
  ...(storedToken ? { token: storedToken } : {}),
});
/** The room's title, system prompt and model, under the header. */
const settings = new SettingsPanel(client, me, toast);

client.on('welcome', (w) => {
  myIds.add(w.user.id);
  keepSession(client, TOKEN_KEY);
  saveList(sessionStorage, IDS_KEY, [...myIds].slice(-20));
  els.me.replaceChildren(avatar(w.user.id, w.user.name), h('span', { class: 'me-name' }, w.user.name), h('small', { class: 'me-you' }, 'you'));
  renderModels();
  settings.refresh();
  // Signed in and connected: what was said about signing in or connecting no longer holds.
  clearToasts('connection');
});
client.on('state', (s) => showState(s));
client.on('error', (e) => {
  // A refused token is what the sign-in form above the messages is for.
  if (e.code !== 'unauthorized') toast(e.message, 'connection');
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
  clearToasts('connection');
  client.setToken(token);
});

// ------------------------------------------------------------ rooms

function roomFromHash(): string {
  let raw = '';
  try {
    raw = decodeURIComponent(location.hash.slice(1));
  } catch {
    // A mangled hash falls back to the default room.
  }
  return roomIdFor(raw) || DEFAULT_ROOM;
}

/** Rooms this page has left the view of but not yet the conversation: its own tool loop still runs there. */
const lingering = new Set<string>();
/** This page's own tool loops still running, per room. */
const ownLoops = new Map<string, number>();

/** The conversation of a room, joined, with what the page shows of it beyond the message list. */
const watched = new Set<string>();
function watch(room: string): Conversation {
  lingering.delete(room);
  const conv = client.conversation(room);
  if (watched.has(room)) return conv;
  watched.add(room);
  conv.on('error', (e) => toast(`${room}: ${e.message}`));
  return conv;
}

/** Stop being counted in a room once the page no longer shows it (after its own tool loops there have ended). */
function unwatch(room: string): void {
  if (room === current || !watched.has(room)) return;
  if (ownLoops.get(room)) {
    lingering.add(room);
    return;
  }
  lingering.delete(room);
  watched.delete(room);
  void client.conversation(room).leave();
}

function loopStarted(room: string, loop: Promise<void>): void {
  ownLoops.set(room, (ownLoops.get(room) ?? 0) + 1);
  const grace = new Promise<void>((resolve) => setTimeout(resolve, LOOP_GRACE_MS));
  void Promise.race([loop, grace]).then(() => {
    const left = (ownLoops.get(room) ?? 1) - 1;
    if (left > 0) ownLoops.set(room, left);
    else ownLoops.delete(room);
    if (lingering.has(room)) unwatch(room);
  });
}

function switchTo(room: string): void {
  if (room === current) return;
  const previous = current;
  current = room;
  if (!rooms.includes(room)) rooms = [...rooms, room].slice(-MAX_ROOMS);
  saveList(localStorage, ROOMS_KEY, rooms);
  typing.clear();
  const conv = watch(room);
  if (previous) unwatch(previous);
  for (const off of roomOffs.splice(0)) off();
  view?.dispose();
  // An edit or a regenerate this page asked for starts a tool loop of its own, as a send does.
  const controls = new BranchControls(conv, me, toast, (reply) => loopStarted(room, followOwnLoop(conv, reply, toast)));
  view = new RoomView(conv, els.messageList, me, follow, new AttachmentView(client), controls).mount();
  roomOffs = [
    conv.on('joined', () => (renderMembers(conv), updateStop(conv))),
    conv.on('presence', () => renderMembers(conv)),
    conv.on('typing', (t) => showTyping(t.user)),
    conv.on('reply.start', () => updateStop(conv)),
    conv.on('reply.end', () => updateStop(conv)),
    conv.on('message', (m) => typing.delete(m.message.author.id) && renderTyping()),
  ];
  settings.show(room, conv);
  els.input.placeholder = `Message #${room}`;
  renderRooms();
  renderMembers(conv);
  renderTyping();
  updateStop(conv);
  // On a phone the keyboard would cover what was just opened.
  if (!narrow.matches) els.input.focus();
}

function renderRooms(): void {
  els.rooms.replaceChildren(
    ...rooms.map((room) => {
      const link = h(
        'a',
        { href: `#${encodeURIComponent(room)}`, class: 'room-link', title: `#${room}`, 'aria-current': room === current ? 'page' : undefined },
        h('span', { class: 'hash', 'aria-hidden': 'true' }, '#'),
        h('span', { class: 'room-name' }, room),
      );
      link.addEventListener('click', () => setDrawer(false));
      const leave = h('button', { type: 'button', class: 'leave', title: `Remove #${room} from the list`, 'aria-label': `Remove ${room} from the list` }, '×');
      leave.addEventListener('click', () => removeRoom(room));
      return h('li', {}, link, leave);
    }),
  );
}

function removeRoom(room: string): void {
  rooms = rooms.filter((r) => r !== room);
  saveList(localStorage, ROOMS_KEY, rooms);
  if (room === current) location.hash = encodeURIComponent(rooms[0] ?? DEFAULT_ROOM);
  else renderRooms();
}

/** Who is looking at this room: one entry per person, however many of their tabs show it. */
function renderMembers(conv: Conversation): void {
  const members = [...new Map(conv.members.map((u) => [u.id, u])).values()];
  els.members.replaceChildren(
    h('span', { class: 'stack' }, ...members.slice(0, 5).map((u) => avatar(u.id, u.name))),
    h('span', { class: 'count' }, `${members.length} here`),
  );
  els.members.title = members.map((u) => (me.isMe(u) ? `${u.name} (you)` : u.name)).join('\n');
  els.members.setAttribute('aria-label', `${members.length} ${members.length === 1 ? 'person' : 'people'} in this room`);
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

const tray = new AttachmentTray(
  client,
  { tray: els.attachTray, button: els.attachButton, picker: els.attachInput, input: els.input, send: els.send, dropZone: els.room },
  (message) => toast(message),
).mount();

function send(): void {
  const text = els.input.value.trim();
  if (!text || !current || !tray.canSend(text)) return;
  const conv = client.conversation(current);
  const clientMessageId = randomId();
  const target = view;
  const files = tray.take();
  target?.addPending(clientMessageId, text, client.user ?? { id: 'me', name: 'You' }, files);
  const model = chosenModel();
  const room = current;
  const attachments = files.map((a) => a.id);
  conv.send(text, { clientMessageId, tools: [...PAGE_TOOLS], ...(model ? { model } : {}), ...(attachments.length ? { attachments } : {}) }).then(
    // This page asked, so this page answers the calls of its own tool, all along the loop.
    (m) => {
      if (m.replyId) loopStarted(room, followOwnLoop(conv, conv.reply(m.replyId), (message) => toast(message)));
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

// ------------------------------------------------------------ joining a room by name

/** What a typed name becomes, shown as it is typed: "Café crème → #cafe-creme". */
function previewJoin(): void {
  const typed = els.joinInput.value.trim();
  const id = roomIdFor(typed);
  els.joinPreview.dataset.state = !typed ? 'empty' : !id ? 'invalid' : id === typed ? 'same' : 'mapped';
  els.joinPreview.textContent = !typed ? '' : !id ? 'A room name needs a letter or a digit' : id === typed ? '' : `${typed} → #${id}`;
}
els.joinInput.addEventListener('input', previewJoin);
els.joinForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const room = roomIdFor(els.joinInput.value);
  if (!room) {
    previewJoin();
    els.joinInput.focus();
    return;
  }
  els.joinInput.value = '';
  previewJoin();
  setDrawer(false);
  location.hash = encodeURIComponent(room);
});

// ------------------------------------------------------------ the room list as a drawer on narrow screens

const narrow = window.matchMedia('(max-width: 720px)');

function setDrawer(open: boolean): void {
  const wasOpen = els.app.hasAttribute('data-rooms-open');
  if (open === wasOpen) return;
  els.app.toggleAttribute('data-rooms-open', open);
  els.roomsButton.setAttribute('aria-expanded', String(open));
  els.scrim.hidden = !open;
  if (open) (els.sidebar.querySelector<HTMLElement>('[aria-current="page"]') ?? els.joinInput).focus();
  else if (narrow.matches && els.sidebar.contains(document.activeElement)) els.roomsButton.focus();
}
els.roomsButton.addEventListener('click', () => setDrawer(!els.app.hasAttribute('data-rooms-open')));
els.closeRooms.addEventListener('click', () => setDrawer(false));
els.scrim.addEventListener('click', () => setDrawer(false));
document.addEventListener('keydown', (ev) => {
  if (ev.key === 'Escape') setDrawer(false);
});
narrow.addEventListener('change', () => setDrawer(false));

// ------------------------------------------------------------ start

window.addEventListener('hashchange', () => {
  switchTo(roomFromHash());
  // A typed or pasted hash that is not an id shows the id it became.
  if (location.hash.slice(1) !== encodeURIComponent(current)) history.replaceState(null, '', `#${encodeURIComponent(current)}`);
});
switchTo(roomFromHash());
if (location.hash.slice(1) !== encodeURIComponent(current)) history.replaceState(null, '', `#${encodeURIComponent(current)}`);
client.connect().catch((err: Error & { code?: string }) => {
  // Refused for want of a token: the sign-in form says so where it can be answered.
  if (err.code !== 'unauthorized') toast(err.message, 'connection');
});
