// A tiny element builder: text always goes in as text (never as HTML), so names are safe.
import { t } from "./i18n.js";

/**
 * h("button", {class: "x", t: "room.leave", onclick}, child...)
 * Options: `t` (translation key, kept in data-i18n), `tp` (its parameters),
 * `tattr` ({attribute: key}, translated attributes), `on*` (listeners), `dataset`,
 * others become attributes (false/null/undefined are left out, true is an empty attribute).
 */
export function h(tag, options = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(options)) {
    if (value === false || value === null || value === undefined) continue;
    if (name === "t") {
      el.dataset.i18n = value;
      if (options.tp) el.dataset.i18nParams = JSON.stringify(options.tp);
      el.textContent = t(value, options.tp);
    } else if (name === "tp") {
      continue;
    } else if (name === "tattr") {
      el.dataset.i18nAttr = Object.entries(value)
        .map(([attr, key]) => `${attr}:${key}`)
        .join(";");
      for (const [attr, key] of Object.entries(value)) el.setAttribute(attr, t(key));
    } else if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "dataset") {
      Object.assign(el.dataset, value);
    } else if (name === "text") {
      el.textContent = value;
    } else if (value === true) {
      el.setAttribute(name, "");
    } else {
      el.setAttribute(name, String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace all children of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** Set a translated text on an element (kept across a language switch). */
export function setText(el, key, params) {
  el.dataset.i18n = key;
  if (params) el.dataset.i18nParams = JSON.stringify(params);
  else delete el.dataset.i18nParams;
  el.textContent = t(key, params);
}

/** Tell screen-reader users (and everyone, in the status line) what just happened. */
export function announce(text) {
  const region = document.getElementById("announce");
  if (!region) return;
  region.textContent = "";
  // a fresh text node makes screen readers read it again
  setTimeout(() => {
    region.textContent = text;
  }, 50);
}

/** Move keyboard focus to the first heading of a newly shown screen. */
export function focusHeading(root) {
  const heading = root.querySelector("h1");
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: false });
  }
}
