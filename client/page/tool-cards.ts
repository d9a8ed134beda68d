// A reply's tool calls as cards: the tool's name, and its arguments in a
// monospace block that fills in as the model writes them. Once the reply has
// ended, arguments that parse as JSON are shown pretty-printed; a call's
// result, when it comes, goes under its arguments in the same card. Model and
// tool output only ever go in as text, never as markup.
import type { ToolCall } from '../../shared/protocol.js';
import type { ToolResult } from '../index.js';
import { h } from './dom.js';

/** Show `calls` in the reply element `el`, reusing the cards already there (so a growing call does not flicker). */
export function paintToolCalls(el: HTMLElement, calls: readonly ToolCall[], final: boolean): void {
  const box = el.querySelector<HTMLElement>('.tool-calls');
  if (!box) return;
  calls.forEach((call, i) => paintCard(cardAt(box, i), call, final));
  // The final list replaces the growing one: a cancelled reply keeps no calls, as the server keeps none.
  while (box.childElementCount > calls.length) box.lastElementChild?.remove();
  // A reply that is only tool calls has no text: its empty body gives way to the cards.
  el.toggleAttribute('data-tools', calls.length > 0);
}

/** Show a result in the card of the call it answers; false when the reply shows no such call. */
export function paintToolResult(el: HTMLElement, result: ToolResult): boolean {
  const card = [...el.querySelectorAll<HTMLElement>('.tool-calls > .tool-call')].find((c) => c.dataset.callId === result.toolCallId);
  if (!card) return false;
  const name = card.querySelector('.tool-call-name')?.textContent || 'tool';
  const label = result.isError ? 'Error' : 'Result';
  const block = card.querySelector<HTMLElement>('.tool-result') ?? card.appendChild(resultBlock());
  block.toggleAttribute('data-error', result.isError);
  setText(block.querySelector('.tool-result-label'), label);
  setText(block.querySelector('.tool-result-by'), result.author.id === 'relay' ? 'from the relay' : `from ${result.author.name}`);
  block.querySelector('.tool-result-output')?.setAttribute('aria-label', `${label} of ${name}`);
  setText(block.querySelector('.tool-result-output code'), prettyArguments(result.output));
  card.dataset.result = result.isError ? 'error' : 'ok';
  card.setAttribute('aria-label', `Tool call: ${name}, ${result.isError ? 'failed' : 'answered'}`);
  return true;
}

/** Arguments (or a result) as indented JSON when they are JSON; as written otherwise (a model may write anything). */
export function prettyArguments(args: string): string {
  try {
    return JSON.stringify(JSON.parse(args), null, 2);
  } catch {
    return args;
  }
}

function cardAt(box: HTMLElement, index: number): HTMLElement {
  const existing = box.children[index];
  if (existing instanceof HTMLElement) return existing;
  const card = h(
    'div',
    { class: 'tool-call', role: 'group' },
    h('div', { class: 'tool-call-head' }, h('span', { class: 'tool-call-label' }, 'Tool call'), h('code', { class: 'tool-call-name' })),
    // Focusable so a keyboard can scroll long arguments.
    h('pre', { class: 'tool-call-args', tabindex: 0 }, h('code')),
  );
  box.append(card);
  return card;
}

function resultBlock(): HTMLElement {
  return h(
    'div',
    { class: 'tool-result' },
    h('div', { class: 'tool-result-head' }, h('span', { class: 'tool-result-label' }), h('span', { class: 'tool-result-by' })),
    // Focusable so a keyboard can scroll long output.
    h('pre', { class: 'tool-result-output', tabindex: 0 }, h('code')),
  );
}

function paintCard(card: HTMLElement, call: ToolCall, final: boolean): void {
  // A snapshot may put another call at this index: the result shown belonged to the old one.
  if (card.dataset.callId !== call.id) {
    card.querySelector('.tool-result')?.remove();
    delete card.dataset.result;
  }
  card.dataset.callId = call.id;
  // The name comes with a call's first piece; until then the card still says what it is.
  const name = call.name || 'tool';
  if (!card.dataset.result) card.setAttribute('aria-label', `Tool call: ${name}`);
  card.dataset.state = final ? 'done' : 'streaming';
  // The message list is a live region: a screen reader hears the call once it is whole, not every piece.
  card.setAttribute('aria-busy', String(!final));
  setText(card.querySelector('.tool-call-name'), name);
  card.querySelector('.tool-call-args')?.setAttribute('aria-label', `Arguments of ${name}`);
  setText(card.querySelector('.tool-call-args code'), final ? prettyArguments(call.arguments) : call.arguments);
}

/** Only when it changed: rewriting equal text would still cost a layout on every piece. */
function setText(node: Element | null, text: string): void {
  if (node && node.textContent !== text) node.textContent = text;
}
