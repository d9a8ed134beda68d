// What the owner of a room can do to it from the room list, in place of its
// row: rename it (a title field with Save and Cancel) or delete it (the
// question asked in the row, with Delete and Cancel, because a deletion is
// for everyone and cannot be undone). The row stays open while the request
// runs and after a refusal, so what was typed is not lost; the list reports
// the refusal.
import { h } from './dom.js';

/** As the settings panel's title field. */
const MAX_TITLE = 200;

/**
 * A row with the room's title in a field. `save` gets the new title (null: no
 * title, the room goes by its name) and resolves true once it is done;
 * `close` puts the ordinary row back.
 */
export function renameRow(room: string, title: string | undefined, save: (title: string | null) => Promise<boolean>, close: () => void): HTMLLIElement {
  const input = h('input', { class: 'room-edit-input', maxlength: MAX_TITLE, placeholder: room, autocomplete: 'off', 'aria-label': `New title for #${room}` });
  input.value = title ?? '';
  const saveButton = h('button', { type: 'submit', class: 'room-edit-save' }, 'Save');
  const cancel = h('button', { type: 'button', class: 'room-edit-cancel' }, 'Cancel');
  const form = h('form', { class: 'room-edit' }, input, h('div', { class: 'room-edit-buttons' }, cancel, saveButton));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const typed = input.value.trim();
    // The same title again would be a request that changes nothing.
    if (typed === (title ?? '')) return close();
    saveButton.disabled = true;
    void save(typed || null).then((done) => (done ? close() : (saveButton.disabled = false)));
  });
  cancel.addEventListener('click', close);
  input.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') {
      // The drawer also closes on Escape; here Escape means "not this rename".
      ev.stopPropagation();
      close();
    }
  });
  return h('li', { class: 'room-row', 'data-room': room, 'data-editing': 'rename' }, form);
}

/** A row asking whether to delete the room for everyone; `remove` resolves true once it is gone. */
export function deleteRow(room: string, label: string, remove: () => Promise<boolean>, close: () => void): HTMLLIElement {
  const yes = h('button', { type: 'button', class: 'room-delete-yes' }, 'Delete');
  const no = h('button', { type: 'button', class: 'room-edit-cancel' }, 'Cancel');
  yes.addEventListener('click', () => {
    yes.disabled = no.disabled = true;
    void remove().then((done) => {
      if (!done) yes.disabled = no.disabled = false;
    });
  });
  no.addEventListener('click', close);
  const box = h(
    'div',
    { class: 'room-delete', role: 'group', 'aria-label': `Delete ${label}` },
    h('p', { class: 'room-delete-question' }, `Delete “${label}” for everyone? This cannot be undone.`),
    h('div', { class: 'room-edit-buttons' }, no, yes),
  );
  box.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') {
      ev.stopPropagation();
      close();
    }
  });
  return h('li', { class: 'room-row', 'data-room': room, 'data-editing': 'delete' }, box);
}
