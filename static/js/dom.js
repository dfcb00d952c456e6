// Small helpers shared by the Bridge pages. Every piece of text goes through textContent:
// nothing here ever parses a string as HTML.

/** Build an element: el("span", {class: "x", title: "t"}, "text", otherNode). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name.startsWith("on") && typeof value === "function") node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Parse the JSON that Django's json_script filter wrote into <script type="application/json" id=...>. */
export function readJsonScript(id) {
  const node = document.getElementById(id);
  return node ? JSON.parse(node.textContent) : {};
}

/** UI strings rendered by Django i18n into data-* attributes of #bridge-i18n, with English fallbacks. */
export function makeTranslator(fallbacks) {
  const holder = document.getElementById("bridge-i18n");
  const data = holder ? holder.dataset : {};
  return (key, params = {}) => {
    let text = data[key] ?? fallbacks[key] ?? key;
    for (const [name, value] of Object.entries(params)) text = text.replace(`{${name}}`, String(value));
    return text;
  };
}

/** fetch() that sends the session cookie, speaks JSON and throws on a non-2xx answer. */
export async function fetchJSON(url, { method = "GET", body, csrfToken } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (csrfToken && method !== "GET") headers["X-CSRFToken"] = csrfToken;
  const response = await fetch(url, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const payload = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(payload?.error?.detail || `${response.status} ${response.statusText}`);
    error.status = response.status;
    error.code = payload?.error?.code;
    throw error;
  }
  return payload;
}

/** Show a short, non-blocking notice in a role=status region; it clears itself. */
export function notify(region, text, { kind = "info", ms = 6000 } = {}) {
  if (!region) return;
  const item = el("p", { class: `notice-item notice-${kind}` }, text);
  region.append(item);
  setTimeout(() => item.remove(), ms);
}
