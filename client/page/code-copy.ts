// The copy button of a code block in a reply: copies the block's text, and
// says so on the button for a moment. One listener for the whole message
// list, so buttons redrawn while a reply streams need nothing of their own.

const SHOWN_MS = 1_500;

/** Copy `text`: the clipboard API where the page may use it (https, localhost), a selection and copy command elsewhere. */
async function copyText(text: string): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = document.createElement('textarea');
    area.value = text;
    area.setAttribute('readonly', '');
    area.className = 'visually-hidden';
    document.body.append(area);
    area.select();
    try {
      return document.execCommand('copy');
    } catch {
      return false;
    } finally {
      area.remove();
    }
  }
}

export function copyCodeOnClick(list: HTMLElement): void {
  list.addEventListener('click', (ev) => {
    const button = ev.target instanceof Element ? ev.target.closest<HTMLButtonElement>('.copy-code') : null;
    const code = button?.closest('.code-block')?.querySelector('pre code');
    if (!button || !code) return;
    void copyText(code.textContent ?? '').then((ok) => {
      button.textContent = ok ? 'Copied' : 'Copy failed';
      button.toggleAttribute('data-copied', ok);
      setTimeout(() => {
        button.textContent = 'Copy';
        button.removeAttribute('data-copied');
      }, SHOWN_MS);
    });
  });
}
