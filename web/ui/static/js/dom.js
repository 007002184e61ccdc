// Building the page from nodes, never from HTML strings: every piece of text goes in as a
// text node, so notes holding "<script>" or HTML show as what they are.

// h creates an element. attrs sets properties and attributes ("on…" adds
// a listener, "class" the class, false/null leaves an attribute out);
// children are nodes, strings (as text) or arrays of them.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

// replace empties el and fills it with children.
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// announce reads a message to screen readers (and is the visual-alert
// hook for urgent requests).
export function announce(text) {
  const el = document.getElementById('announce');
  if (el) { el.textContent = ''; setTimeout(() => { el.textContent = text; }, 30); }
}
