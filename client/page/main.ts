// The chat page: the room on screen (its id in the URL hash, so a reload or a
// second tab lands in the same room), composer with Stop, presence, typing,
// connection state. Message rendering lives in room-view.ts, the room list
// (the server's) in room-list.ts, the phone drawer in drawer.ts. The page is
// joined to the room it shows and no other (but while its own tool loop still
// runs somewhere, or for a rename from the list), so presence counts who is
// looking at a room.
import type { User } from '../../shared/protocol.js';
import { randomId } from '../ids.js';
import { RelayClient, type Conversation } from '../index.js';
import { AttachmentView } from './attachment-view.js';
import { AttachmentTray } from './attachments.js';
import { BranchControls } from './branch-controls.js';
import { copyCodeOnClick } from './code-copy.js';
import { ComposerAccess } from './composer-access.js';
import { connectionLabel } from './connection-label.js';
import { avatar, byId, h } from './dom.js';
import { Drawer } from './drawer.js';
import { Follow } from './follow.js';
import { joinByName } from './join-form.js';
import { ModelPicker } from './model-picker.js';
import { PAGE_TOOLS, followOwnLoop } from './page-tools.js';
import { RoomJoins } from './room-joins.js';
import { RoomList } from './room-list.js';
import { roomIdFor } from './room-name.js';
import { RoomView } from './room-view.js';
import { keepSession, startingToken } from './session.js';
import { SettingsPanel } from './settings-panel.js';
import { Toasts, type ToastKind } from './toasts.js';

const IDS_KEY = 'relay.identities';
const TOKEN_KEY = 'relay.token';
const TYPING_SHOWN_MS = 3_500;
const DEFAULT_ROOM = 'general';

const els = {
  room: document.querySelector<HTMLElement>('.room')!,
  rooms: byId<HTMLUListElement>('rooms'),
  moreRooms: byId<HTMLButtonElement>('more-rooms'),
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
  stop: byId<HTMLButtonElement>('stop-button'),
  composerNote: byId('composer-note'),
  hint: byId('composer-hint'),
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
const drawer = new Drawer();
const models = new ModelPicker(client, { picker: byId('model-picker'), select: byId<HTMLSelectElement>('model-select') });
/** The user's rooms as the server lists them. */
const roomList = new RoomList(client, { list: els.rooms, more: els.moreRooms }, { picked: () => drawer.set(false), rename, remove, report: (m) => toast(m) });

client.on('welcome', (w) => {
  myIds.add(w.user.id);
  keepSession(client, TOKEN_KEY);
  saveList(sessionStorage, IDS_KEY, [...myIds].slice(-20));
  els.me.replaceChildren(avatar(w.user.id, w.user.name), h('span', { class: 'me-name' }, w.user.name), h('small', { class: 'me-you' }, 'you'));
  models.render();
  settings.refresh();
  // Connected again: the list may have changed while away (another device, other people's messages).
  roomList.refresh();
  // Signed in and connected: what was said about signing in or connecting no longer holds.
  clearToasts('connection');
});
client.on('error', (e) => {
  // A refused token is what the sign-in form above the messages is for.
  if (e.code !== 'unauthorized') toast(e.message, 'connection');
});

client.on('state', (s) => {
  els.conn.dataset.state = s.state;
  els.connLabel.textContent = connectionLabel(s);
  // Token mode: the server refused us. Ask for a token rather than retrying in a loop.
  els.auth.hidden = !(s.state === 'closed' && s.code === 4401);
});

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

const joins = new RoomJoins(client, { current: () => current, wire: wireRoom });

/** What the page hears of a room it joins, beyond what the room view shows. */
function wireRoom(room: string, conv: Conversation): void {
  conv.on('error', (e) => {
    // Refused before it was ever joined: the room is gone (deleted while this page was away).
    if (e.code === 'not_found' && conv.lastSeq === undefined) gone(room, 'This conversation was deleted');
    else toast(`${room}: ${e.message}`);
  });
  // What moves a room up the list, or changes how it is shown there.
  for (const event of ['joined', 'message', 'settings'] as const) conv.on(event, () => roomList.refresh());
  // The server ends a membership when the conversation is deleted, or when its owner takes this user out.
  conv.on('left', (e) => gone(room, e.reason === 'removed' ? 'You were removed from this conversation' : 'This conversation was deleted'));
}

function switchTo(room: string): void {
  if (room === current) return;
  const previous = current;
  current = room;
  typing.clear();
  const conv = joins.watch(room);
  if (previous) joins.unwatch(previous);
  for (const off of roomOffs.splice(0)) off();
  view?.dispose();
  // An edit or a regenerate this page asked for starts a tool loop of its own, as a send does.
  const controls = new BranchControls(conv, me, toast, (reply) => joins.loopStarted(room, followOwnLoop(conv, reply, toast)));
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
  roomList.show(room);
  els.input.placeholder = `Message #${room}`;
  els.input.disabled = els.attachButton.disabled = false;
  els.composer.removeAttribute('data-no-room');
  // A viewer's composer is off (and Edit, Regenerate, Stop gone) until the owner makes them a member.
  roomOffs.push(access.follow(conv, () => (controls.repaint(els.messageList), updateStop(conv))));
  renderMembers(conv);
  renderTyping();
  updateStop(conv);
  // On a phone the keyboard would cover what was just opened.
  if (!drawer.narrow.matches) els.input.focus();
}

/** No room on screen: the one shown was deleted and no other is listed. Joining one by name starts again. */
function showNothing(): void {
  const previous = current;
  current = '';
  joins.unwatch(previous);
  for (const off of roomOffs.splice(0)) off();
  view?.dispose();
  view = undefined;
  typing.clear();
  renderTyping();
  settings.clear();
  roomList.show('');
  els.messageList.replaceChildren(h('div', { class: 'empty' }, h('p', { class: 'empty-title' }, 'No room open'), h('p', {}, 'Join a room by its name to start.')));
  els.members.replaceChildren();
  els.members.removeAttribute('title');
  els.members.removeAttribute('aria-label');
  els.stop.hidden = true;
  access.release();
  els.input.placeholder = 'Join a room to write';
  els.input.disabled = els.attachButton.disabled = true;
  els.composer.toggleAttribute('data-no-room', true);
  // A reload opens the default room rather than the one that is gone.
  history.replaceState(null, '', location.pathname + location.search);
}

/** A room was deleted, or this user taken out of it: off the list, and off the screen if it is shown. */
function gone(room: string, why: string): void {
  roomList.forget(room);
  joins.drop(room);
  if (room !== current) return;
  toast(why);
  const next = roomList.another(room);
  if (!next) return showNothing();
  switchTo(next);
  // In place of the deleted room, so Back does not lead to it.
  history.replaceState(null, '', `#${encodeURIComponent(next)}`);
}

/** Rename from the room list: only a member can configure a room, so one not on screen is joined for the while. */
function rename(room: string, title: string | null): Promise<void> {
  return joins.asMember(room, (conv) => conv.configure({ title }));
}

/** Delete from the room list (the owner's to do): gone for every member, this page's view of it too. */
async function remove(room: string): Promise<void> {
  await client.deleteConversation(room);
  gone(room, 'This conversation was deleted');
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
  // A viewer's cancel is refused by the server: no button for it.
  els.stop.hidden = !running || running.done || conv.role === 'viewer';
}

// ------------------------------------------------------------ composer

const tray = new AttachmentTray(
  client,
  { tray: els.attachTray, button: els.attachButton, picker: els.attachInput, input: els.input, send: els.send, dropZone: els.room },
  (message) => toast(message),
).mount();
/** Whether the room on screen lets this user write (a viewer only watches). */
const access = new ComposerAccess({ composer: els.composer, input: els.input, note: els.composerNote, hint: els.hint }, tray);

function send(): void {
  const text = els.input.value.trim();
  if (!text || !current || access.readOnly || !tray.canSend(text)) return;
  const conv = client.conversation(current);
  const clientMessageId = randomId();
  const target = view;
  const files = tray.take();
  target?.addPending(clientMessageId, text, client.user ?? { id: 'me', name: 'You' }, files);
  const model = models.chosen();
  const room = current;
  const attachments = files.map((a) => a.id);
  conv.send(text, { clientMessageId, tools: [...PAGE_TOOLS], ...(model ? { model } : {}), ...(attachments.length ? { attachments } : {}) }).then(
    // This page asked, so this page answers the calls of its own tool, all along the loop.
    (m) => {
      if (m.replyId) joins.loopStarted(room, followOwnLoop(conv, conv.reply(m.replyId), (message) => toast(message)));
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
  if (!current) return;
  const conv = client.conversation(current);
  const running = conv.streaming;
  if (!running) return;
  els.stop.hidden = true;
  conv.cancel(running.id).catch((err: Error) => toast(`Stop failed: ${err.message}`));
});

// ------------------------------------------------------------ start

joinByName((room) => {
  drawer.set(false);
  location.hash = encodeURIComponent(room);
});

window.addEventListener('hashchange', () => {
  switchTo(roomFromHash());
  // A typed or pasted hash that is not an id shows the id it became.
  if (location.hash.slice(1) !== encodeURIComponent(current)) history.replaceState(null, '', `#${encodeURIComponent(current)}`);
});
switchTo(roomFromHash());
if (location.hash.slice(1) !== encodeURIComponent(current)) history.replaceState(null, '', `#${encodeURIComponent(current)}`);
// Back to a tab left in the background: other rooms may have moved (this page hears only the one it shows).
document.addEventListener('visibilitychange', () => document.visibilityState === 'visible' && roomList.refresh());
// The page once kept its own room list here; the server's is the one list now.
localStorage.removeItem('relay.rooms');
client.connect().catch((err: Error & { code?: string }) => {
  // Refused for want of a token: the sign-in form says so where it can be answered.
  if (err.code !== 'unauthorized') toast(err.message, 'connection');
});
