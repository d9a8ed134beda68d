// Joining a room by name: what a typed name becomes is shown as it is typed
// ("Café crème → #cafe-creme"), so nobody lands somewhere they did not
// expect; a name with nothing to make an id of is refused in place.
import { byId } from './dom.js';
import { roomIdFor } from './room-name.js';

export function joinByName(join: (room: string) => void): void {
  const form = byId<HTMLFormElement>('join-form');
  const input = byId<HTMLInputElement>('join-input');
  const preview = byId('join-preview');

  const show = () => {
    const typed = input.value.trim();
    const id = roomIdFor(typed);
    preview.dataset.state = !typed ? 'empty' : !id ? 'invalid' : id === typed ? 'same' : 'mapped';
    preview.textContent = !typed ? '' : !id ? 'A room name needs a letter or a digit' : id === typed ? '' : `${typed} → #${id}`;
  };
  input.addEventListener('input', show);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const room = roomIdFor(input.value);
    if (!room) {
      show();
      input.focus();
      return;
    }
    input.value = '';
    show();
    join(room);
  });
}
