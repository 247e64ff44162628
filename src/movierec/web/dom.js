// Small helpers every view shares: building elements (text by textContent, never innerHTML,
// so titles cannot inject markup), number formats, notes, and the parts of a listed movie.

const SVG = "http://www.w3.org/2000/svg";

export const K = 10; // length of every recommendation list

export const $ = (sel, root = document) => root.querySelector(sel);

/** Element with attributes (on*: listeners, dataset: data-*) and children (strings are text). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  setAttrs(node, attrs);
  node.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  setAttrs(node, attrs);
  node.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

function setAttrs(node, attrs) {
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
}

export const fmt = (x, digits = 3) => (typeof x === "number" && Number.isFinite(x) ? x.toFixed(digits) : "–");
export const count = (n) => (typeof n === "number" ? n.toLocaleString("en") : "–");
export const key = (id) => String(id); // raw ids may be numbers or strings; maps key them as text

export function note(node, text, isError = false) {
  node.textContent = text;
  node.classList.toggle("error", isError);
}

/** The predicted rating shown beside a listed movie ("" for a model without ratings). */
export function predicted(it) {
  return it.rating === null || it.rating === undefined
    ? null : el("span", { class: "score", title: "the rating you would likely give" }, `${fmt(it.rating, 1)}★`);
}

export function joinAnd(parts) {
  return parts.length < 2 ? parts.join("") : `${parts.slice(0, -1).join(", ")} and ${parts[parts.length - 1]}`;
}
