// dom.js — the demo pages' DOM helpers (index.html's demo.js, train.html's train.js).

/** The element with this id. */
export const $ = (id) => document.getElementById(id);

/**
 * Control characters (but newline and tab) and bidirectional overrides as visible escapes
 * ("\u0007", "\u202e"): a name from a file shows what it holds, and cannot reorder the text
 * around it.
 */
export const visible = (text) =>
  text.replace(
    /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );

/**
 * Creates an element: el('td', { className: 'x', dataset: { value: '1' } }, 'text', child).
 * Must: the only way the pages put text from files, stored models and errors on the page —
 * strings become text nodes (through visible()), never markup; no innerHTML anywhere.
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key.startsWith('aria-') || key === 'scope') node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children)
    if (child !== null && child !== undefined) node.append(typeof child === 'string' ? visible(child) : child);
  return node;
}
