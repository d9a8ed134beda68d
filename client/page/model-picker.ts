// The model a send asks for: offered only when the server lists more than
// one, and the choice is kept (in this browser) while the server still
// offers it; otherwise its default model.
import type { ModelInfo } from '../index.js';
import { h } from './dom.js';

const MODEL_KEY = 'relay.model';

export class ModelPicker {
  constructor(
    private readonly server: { readonly models: readonly ModelInfo[] },
    private readonly els: { picker: HTMLElement; select: HTMLSelectElement },
  ) {
    els.select.addEventListener('change', () => localStorage.setItem(MODEL_KEY, els.select.value));
  }

  /** After a welcome: what the server offers now. */
  render(): void {
    const { picker, select } = this.els;
    const models = this.server.models;
    const wanted = select.value || localStorage.getItem(MODEL_KEY) || '';
    select.replaceChildren(...models.map((m) => h('option', { value: m.id }, m.default ? `${m.id} (default)` : m.id)));
    const fallback = models.find((m) => m.default)?.id ?? models[0]?.id ?? '';
    select.value = models.some((m) => m.id === wanted) ? wanted : fallback;
    picker.hidden = models.length < 2;
  }

  /** The model a send asks for, if there is a choice to make. */
  chosen(): string | undefined {
    return this.server.models.length > 1 && this.els.select.value ? this.els.select.value : undefined;
  }
}
