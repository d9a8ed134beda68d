// A question edited in place: its text becomes a textarea with Save and
// Cancel. Saving asks for a new version beside the old one; the page shows it
// when the server's `message` comes back (as every member sees it), and this
// element leaves with the old branch. A refused save keeps the editor open
// with what was typed, so nothing is lost.
import { h } from './dom.js';

const MAX_ROWS = 12;

/**
 * Open the editor over the body of `el`, starting from `original`. `save`
 * resolves true once the new version is accepted (the editor closes), false
 * when it was refused (the editor stays).
 */
export function openEditor(el: HTMLElement, original: string, save: (text: string) => Promise<boolean>): void {
  const body = el.querySelector<HTMLElement>(':scope > .msg-main > .body');
  if (!body || el.hasAttribute('data-editing')) return;
  const input = h('textarea', { class: 'msg-editor-input', maxlength: 16000, 'aria-label': 'New version of the message' });
  input.value = original;
  const saveButton = h('button', { type: 'submit', class: 'msg-editor-save' }, 'Save');
  const cancel = h('button', { type: 'button', class: 'msg-editor-cancel' }, 'Cancel');
  const form = h('form', { class: 'msg-editor' }, input, h('div', { class: 'msg-editor-buttons' }, cancel, saveButton));

  const fit = () => (input.rows = Math.min(MAX_ROWS, Math.max(2, input.value.split('\n').length)));
  const close = () => {
    form.remove();
    body.hidden = false;
    el.removeAttribute('data-editing');
  };
  const submit = async () => {
    const text = input.value.trim();
    // The same words again would only make a copy of the branch.
    if (!text || text === original.trim()) return close();
    saveButton.disabled = true;
    if (await save(text)) close();
    else saveButton.disabled = false;
  };

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    void submit();
  });
  cancel.addEventListener('click', close);
  input.addEventListener('input', fit);
  // As in the composer: Enter saves, Shift+Enter is a new line; Escape gives up.
  input.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') close();
    else if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      void submit();
    }
  });

  fit();
  el.toggleAttribute('data-editing', true);
  body.hidden = true;
  body.after(form);
  input.focus();
  input.setSelectionRange(input.value.length, input.value.length);
}
