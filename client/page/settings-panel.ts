// The room's own settings (`configure`): its title, shown in the header and
// the tab's name, its system prompt and its model, in a panel under the
// header. Every member can look; only the owner can change them (the server
// refuses anyone else), so for the others the form is read-only. A save sends
// only what changed, and an emptied field goes back to the server's default.
// What the panel shows follows the `settings` events, unless the user is in
// the middle of changing it.
import type { ConversationSettings } from '../../shared/protocol.js';
import type { Conversation, ModelInfo } from '../index.js';
import { byId, h } from './dom.js';
import type { Me } from './room-view.js';

/** What the panel needs of the client: what the server offers. */
export interface ServerOffer {
  readonly models: readonly ModelInfo[];
  readonly features: readonly string[];
}

type Patch = Parameters<Conversation['configure']>[0];

const els = () => ({
  button: byId<HTMLButtonElement>('settings-button'),
  panel: byId<HTMLFormElement>('settings-panel'),
  note: byId('settings-note'),
  title: byId<HTMLInputElement>('settings-title'),
  prompt: byId<HTMLTextAreaElement>('settings-prompt'),
  modelLabel: byId<HTMLLabelElement>('settings-model-label'),
  model: byId<HTMLSelectElement>('settings-model'),
  modelInput: byId<HTMLInputElement>('settings-model-input'),
  options: byId('settings-options'),
  close: byId<HTMLButtonElement>('settings-cancel'),
  save: byId<HTMLButtonElement>('settings-save'),
  roomTitle: byId('room-title'),
  convTitle: byId('conv-title'),
});

export class SettingsPanel {
  private readonly els = els();
  private conv: Conversation | undefined;
  private room = '';
  private offs: Array<() => void> = [];
  /** The user has changed a field since the panel opened: a `settings` event must not overwrite it. */
  private dirty = false;

  constructor(
    private readonly server: ServerOffer,
    private readonly me: Me,
    /** Where a refused save is said (the page's toasts). */
    private readonly report: (message: string) => void,
  ) {
    const { button, panel, close } = this.els;
    button.addEventListener('click', () => (panel.hidden ? this.open() : this.close()));
    close.addEventListener('click', () => this.close());
    panel.addEventListener('input', () => (this.dirty = true));
    panel.addEventListener('keydown', (ev) => {
      if (ev.key === 'Escape') this.close();
    });
    panel.addEventListener('submit', (ev) => {
      ev.preventDefault();
      void this.save();
    });
  }

  /** The page now shows this room. */
  show(room: string, conv: Conversation): void {
    for (const off of this.offs.splice(0)) off();
    this.room = room;
    this.conv = conv;
    // Who owns the room is learnt from its snapshot, its first message, or its first settings.
    this.offs = [conv.on('joined', () => this.refresh()), conv.on('settings', () => this.refresh()), conv.on('message', () => this.refresh())];
    this.close();
    this.refresh();
  }

  /** The page shows no room (the one it showed was deleted): no title, nothing to set. */
  clear(): void {
    for (const off of this.offs.splice(0)) off();
    this.room = '';
    this.conv = undefined;
    this.close();
    this.refresh();
  }

  /** Bring the header, the button and an open panel up to date (also when the server's offer changes: a welcome). */
  refresh(): void {
    const { button, panel, roomTitle, convTitle } = this.els;
    const title = this.conv?.settings.title;
    roomTitle.textContent = this.room;
    roomTitle.title = this.room;
    convTitle.textContent = title ?? '';
    convTitle.title = title ?? '';
    convTitle.hidden = !title;
    document.title = !this.room ? 'Relay Chat' : title ? `${title} · #${this.room} · Relay Chat` : `#${this.room} · Relay Chat`;
    roomTitle.parentElement?.toggleAttribute('data-none', !this.room);
    // A server without per-room settings would refuse every save; no room, nothing to set.
    button.hidden = !this.server.features.includes('settings') || !this.conv;
    if (button.hidden) this.close();
    if (!panel.hidden) this.fill(!this.dirty);
  }

  private open(): void {
    this.dirty = false;
    this.fill(true);
    this.els.panel.hidden = false;
    this.els.button.setAttribute('aria-expanded', 'true');
    (this.mayConfigure() ? this.els.title : this.els.close).focus();
  }

  private close(): void {
    const { panel, button } = this.els;
    if (panel.hidden) return;
    const hadFocus = panel.contains(document.activeElement);
    panel.hidden = true;
    button.setAttribute('aria-expanded', 'false');
    if (hadFocus) button.focus();
  }

  private mayConfigure(): boolean {
    const owner = this.conv?.owner;
    return owner === undefined || this.me.isMe({ id: owner, name: '' });
  }

  /** Who may change what; with `values`, the fields show the settings as they are now. */
  private fill(values: boolean): void {
    const { note, title, prompt, model, modelInput, modelLabel, options, save } = this.els;
    const s: ConversationSettings = this.conv?.settings ?? {};
    const may = this.mayConfigure();
    note.hidden = may;
    save.hidden = !may;
    for (const field of [title, prompt, model, modelInput]) field.disabled = !may;
    // A list to choose from when the server gives one, else the name as typed.
    const listed = this.server.models.length > 0;
    model.hidden = !listed;
    modelInput.hidden = listed;
    modelLabel.htmlFor = listed ? model.id : modelInput.id;
    const extra = [s.temperature !== undefined ? `Temperature ${s.temperature}` : '', s.maxTokens !== undefined ? `At most ${s.maxTokens} tokens a reply` : ''].filter(Boolean);
    options.textContent = extra.join(' · ');
    options.hidden = extra.length === 0;
    if (!values) return;
    title.value = s.title ?? '';
    prompt.value = s.systemPrompt ?? '';
    modelInput.value = s.model ?? '';
    const ids = this.server.models.map((m) => m.id);
    // A model the room was set to that the server no longer lists still shows as what it is.
    if (s.model && !ids.includes(s.model)) ids.push(s.model);
    const marked = new Set(this.server.models.filter((m) => m.default).map((m) => m.id));
    model.replaceChildren(h('option', { value: '' }, "The server's default"), ...ids.map((id) => h('option', { value: id }, marked.has(id) ? `${id} (default)` : id)));
    model.value = s.model ?? '';
  }

  /** Only what changed goes; an emptied field is null: back to the server's default. */
  private patch(): Patch {
    const s = this.conv?.settings ?? {};
    const changed = (now: string, was: string | undefined) => (now === (was ?? '') ? undefined : now || null);
    const { title, prompt, model, modelInput } = this.els;
    const patch: Patch = {};
    const t = changed(title.value.trim(), s.title);
    const p = changed(prompt.value.trim(), s.systemPrompt);
    const m = changed((model.hidden ? modelInput.value : model.value).trim(), s.model);
    if (t !== undefined) patch.title = t;
    if (p !== undefined) patch.systemPrompt = p;
    if (m !== undefined) patch.model = m;
    return patch;
  }

  private async save(): Promise<void> {
    const conv = this.conv;
    if (!conv || !this.mayConfigure()) return;
    const patch = this.patch();
    if (Object.keys(patch).length === 0) return this.close();
    const { save } = this.els;
    save.disabled = true;
    try {
      await conv.configure(patch);
      // The room may have changed while the answer was on its way.
      if (conv === this.conv) {
        this.dirty = false;
        this.close();
      }
    } catch (err) {
      this.report(`Settings not saved: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      save.disabled = false;
    }
  }
}
