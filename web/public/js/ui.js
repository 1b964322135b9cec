// DOM helpers. User text always goes in as text (textContent / text nodes), never as HTML.

/**
 * Creates an element. `attrs`: `class`, `text` (textContent), `on<event>` handlers, `dataset`,
 * booleans and other attributes. Children: nodes or strings (made into text nodes).
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export const $ = (selector, root = document) => root.querySelector(selector);

/** Toasts shown at once; older ones go when a new one would make the stack taller. */
const MAX_TOASTS = 3;

/**
 * A short message at the top of the screen, for `ms` milliseconds (errors stay twice as long), with a
 * button that dismisses it. The stack sits over the top bar's middle, away from the player's controls
 * (under the bar when its middle is too narrow: `placeStack`).
 */
export function toast(message, kind = "info", ms = 4000) {
  const box = toastBox();
  const t = h("div", { class: `toast toast-${kind}` }, h("span", { class: "toast-text", text: message }));
  const close = () => t.remove();
  t.append(h("button", { class: "toast-close", type: "button", "aria-label": "Dismiss", title: "Dismiss", text: "✕", onclick: close }));
  box.append(t);
  while (box.children.length > MAX_TOASTS) box.firstElementChild.remove();
  setTimeout(close, kind === "error" ? ms * 2 : ms);
}

/**
 * The toasts' stack, inside the open modal dialog if there is one (back in the page once it
 * closes): outside it the page is inert and drawn under the dialog's backdrop, so a toast said
 * there (the settings' "New invite link made", an error in the library picker) was neither seen,
 * nor read out, nor dismissible.
 */
function toastBox() {
  let box = $("#toasts");
  if (!box) {
    box = h("div", { id: "toasts", role: "status", "aria-live": "polite" });
    // The bar's middle narrows when its pills grow ("Reconnecting in 5 s", Retry now) and with
    // the window: the stack moves then, not only when a toast is said.
    const middle = $(".topbar .grow");
    if (middle && typeof ResizeObserver === "function") new ResizeObserver(() => placeStack(box)).observe(middle);
  }
  const modal = [...document.querySelectorAll("dialog:modal")].at(-1);
  const home = modal ?? document.body;
  if (box.parentElement !== home) {
    home.append(box);
    modal?.addEventListener("close", () => {
      document.body.append(box);
      placeStack(box);
    }, { once: true });
  }
  placeStack(box);
  return box;
}

/**
 * Where the stack goes outside a dialog: over the top bar when the bar's middle (`.grow`: the
 * room's name, or the empty space of the other pages) is wide enough for it; else just under the
 * bar, over the top of the player's column in the room (`.stage`), of the window elsewhere.
 * Centred over a narrow bar, it hid the bar's status and buttons (on a phone, all of them: the
 * "In sync" pill, Invite, Settings). Inside a dialog: where the style sheet puts it. Placed when
 * a toast is said, and again whenever the bar's middle changes size.
 *
 * Once under the bar, the stack goes back over it only when no toast is up: while reconnecting,
 * each attempt shortens the pill and hides Retry now for a few milliseconds, and the toast being
 * read jumped up and down the page once a second.
 */
function placeStack(box) {
  const over = () => { box.style.top = box.style.left = ""; };
  const bar = $(".topbar");
  const middle = bar && $(".grow", bar);
  if (box.parentElement !== document.body || !middle) return over();
  // Its width does not depend on where it is (the style sheet's).
  const width = box.getBoundingClientRect().width;
  const room = middle.getBoundingClientRect();
  const left = (document.documentElement.clientWidth - width) / 2;
  const fits = left >= room.left && left + width <= room.right;
  const under = box.style.top !== "";
  if (fits && !(under && box.childElementCount > 0)) return over();
  box.style.top = `${Math.ceil(bar.getBoundingClientRect().bottom) + 6}px`;
  const column = $(".stage")?.getBoundingClientRect();
  box.style.left = column && column.width >= width ? `${column.left + column.width / 2}px` : "";
}

/** Whether keyboard focus is in a field that takes text. */
export function typingInField() {
  const el = document.activeElement;
  return !!el && (el.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(el.tagName));
}

/**
 * Whether a page-wide shortcut key may act: focus is on the page itself (nothing focused) or
 * inside `area` (the player). A focused button, tab, link or field keeps its own keys: Space on
 * a button presses that button, it never plays or pauses the room.
 */
export function shortcutsAllowed(area) {
  const el = document.activeElement;
  if (!el || el === document.body || el === document.documentElement) return true;
  return !!area && area.contains(el) && !["INPUT", "TEXTAREA", "SELECT", "BUTTON", "A"].includes(el.tagName);
}

/** A thumbnail image, or `placeholder` text when there is none or it fails to load. */
export function thumbnail(src, placeholder) {
  const fallback = () => h("div", { class: "thumb", "aria-hidden": "true", text: placeholder });
  if (!src) return fallback();
  const img = h("img", { class: "thumb", src, alt: "", loading: "lazy", referrerpolicy: "no-referrer" });
  img.addEventListener("error", () => img.replaceWith(fallback()), { once: true });
  return img;
}

const ICONS = {
  star: '<polygon points="12 2 15.09 8.26 22 9.27 17 14.14 18.18 21.02 12 17.77 5.82 21.02 7 14.14 2 9.27 8.91 8.26 12 2"/>',
  clock: '<circle cx="12" cy="12" r="10"/><polyline points="12 6 12 12 16 14"/>',
};

/** A line icon (the same style as the page's inline SVGs), hidden from screen readers. */
export function icon(name) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", "i");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  // Fixed markup from ICONS above, never user text.
  svg.innerHTML = ICONS[name];
  return svg;
}
