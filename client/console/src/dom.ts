// Building DOM nodes. Text goes in as text nodes, never as HTML, so that
// nothing the API returns can become markup. No element gets a style
// attribute: the Content-Security-Policy refuses inline styles, so looks
// come from console.css classes.

/** What h() accepts as children: nodes, text, and nothing (skipped). */
export type Child = Node | string | number | null | undefined | false | Child[];

/** Attributes of h(): strings, true for a bare attribute, on* handlers. */
export type Attrs = Record<string, string | number | boolean | null | undefined | ((e: Event) => void)>;

/** h makes an element with attributes and children. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs?: Attrs | null, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (typeof value === "function") {
      el.addEventListener(name.slice(2).toLowerCase(), value);
    } else if (name === "style") {
      throw new Error("h: no style attributes (the CSP refuses them); use a class");
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

/** append adds children to a node. */
export function append(parent: Node, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(parent, c);
    else parent.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
  }
}

/** replace sets a node's children. */
export function replace(parent: Node, ...children: Child[]): void {
  while (parent.firstChild) parent.removeChild(parent.firstChild);
  append(parent, children);
}

let ids = 0;

/** uid is a fresh element id, for label/aria references. */
export function uid(prefix: string): string {
  ids++;
  return `${prefix}-${ids}`;
}
