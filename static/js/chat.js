// Bridge chat page: history, live websocket, local echo, translations, emotion cues, reconnect.
// Protocol: docs/protocol (CONTRACT.md). All text is rendered with textContent via el(); never as HTML.
import { el, fetchJSON, makeTranslator, notify, readJsonScript } from "./dom.js";

const boot = readJsonScript("bridge-bootstrap");
const t = makeTranslator({
  original: "Original",
  translation: "Translation",
  translating: "translating…",
  notTranslated: "not translated",
  edit: "Edit",
  save: "Save",
  cancel: "Cancel",
  edited: "edited",
  sending: "sending…",
  failed: "not sent",
  discard: "Discard",
  retry: "Retry",
  isTyping: "{names} is typing…",
  areTyping: "{names} are typing…",
  connecting: "Connecting…",
  online: "Connected",
  reconnecting: "Reconnecting in {s} s…",
  offline: "Offline — messages will be sent when the connection is back",
  refused: "Access refused",
  rateLimited: "Slow down: your message will be retried shortly.",
  emotion: "Emotion",
  confidence: "confidence",
  engine: "Translated by",
  translatedFrom: "translated from",
  noMore: "No older messages",
  you: "you",
  hiddenByModerator: "A moderator hid this message. Only you see this notice.",
  appeal: "Appeal",
  appealReason: "Why should it be shown again?",
  sendAppeal: "Send appeal",
  appealSent: "Appeal sent: a moderator will look at it again.",
});

const PAGE_SIZE = 50;
const SHORT_MESSAGE_CHARS = 140; // at or under this, the original is shown inline next to the translation
const CUE_MIN_SCORE = 0.5;
const TYPING_SEND_EVERY_MS = 2000;
const TYPING_SHOW_MS = 3000;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 10000;
const RATE_LIMIT_RETRY_MS = 4000;
const GAP_CHECK_DELAY_MS = 600;

const EMOJI = {
  joy: "😊",
  love: "❤️",
  surprise: "😮",
  sadness: "😢",
  fear: "😨",
  anger: "😠",
  disgust: "🤢",
  neutral: "😐",
};

const $ = (id) => document.getElementById(id);
const list = $("messages");
const scroller = $("scroller");
const composer = $("composer");
const composerForm = $("composer-form");
const statusBox = $("conn-status");
const noticeBox = $("notice");
const typingBox = $("typing");
const presenceBox = $("presence");
const languageSelect = $("language-select");
const cuesToggle = $("cues-toggle");
const originalsToggle = $("originals-toggle");
const loadOlderButton = $("load-older");
const outboxKey = `bridge.outbox.${boot.room}`;

const state = {
  language: boot.language,
  messages: new Map(), // id -> Message (as in the contract)
  nodes: new Map(), // id -> <li>
  seenSeqs: new Set(),
  hiddenIds: new Set(),
  lastSeq: 0, // highest seq seen: the resume point
  oldestSeq: null,
  gapCheckedUpTo: 0, // every seq at or under this is known or was fetched once
  gapTimer: null,
  hasOlder: true,
  loadingOlder: false,
  historyLoaded: false,
  outbox: new Map(), // client_id -> {clientId, text, status, detail, node, retryTimer}
  showOriginal: new Set(), // message ids the reader flipped to the original
  editing: null, // {id, draft}
  socket: null,
  attempt: 0,
  reconnectTimer: null,
  refused: false,
  lastTypingSent: 0,
  typers: new Map(), // username -> timeout id
  // Follow-ups (translation, emotion) that arrived before their message: a worker can beat the web process's
  // message.new, since they travel through the channel layer from different processes. Applied on arrival.
  early: new Map(), // id -> {translations, sentiment}
};
const MAX_EARLY_FOLLOW_UPS = 500;

// ---------------------------------------------------------------------------------------------- helpers

function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  // randomUUID only exists in secure contexts; a plain-http LAN deployment still needs unique ids.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

const LANG_CODE = /^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$/;
const langAttr = (code) => (typeof code === "string" && LANG_CODE.test(code) ? code : null);

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

function timeNode(iso) {
  const date = iso ? new Date(iso) : null;
  if (!date || Number.isNaN(date.getTime())) return el("time", { class: "msg-time" }, "");
  return el("time", { class: "msg-time", datetime: date.toISOString(), title: fullFormat.format(date) }, timeFormat.format(date));
}

function emotionLabel(emotion) {
  const key = `emotion${String(emotion).charAt(0).toUpperCase()}${String(emotion).slice(1)}`;
  const label = t(key);
  return label === key ? String(emotion) : label;
}

function historyUrl(params) {
  const url = new URL(boot.history_url, location.origin);
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
  return url.toString();
}

function isNearBottom() {
  return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
}

function scrollToBottom() {
  scroller.scrollTop = scroller.scrollHeight;
}

function socketReady() {
  return state.socket !== null && state.socket.readyState === WebSocket.OPEN;
}

function sendFrame(frame) {
  if (!socketReady()) return false;
  state.socket.send(JSON.stringify(frame));
  return true;
}

// -------------------------------------------------------------------------------------------- rendering

function translationFor(msg) {
  return msg.translations ? msg.translations[state.language] : undefined;
}

function expectsTranslation(msg) {
  // The author reads their own words; nobody translates them back for them.
  return Boolean(msg.language) && msg.language !== state.language && msg.author !== boot.username;
}

function cueNode(sentiment) {
  if (!sentiment || typeof sentiment.score !== "number" || sentiment.score < CUE_MIN_SCORE) return null;
  const label = emotionLabel(sentiment.emotion);
  const confidence = `${Math.round(sentiment.score * 100)}%`;
  return el(
    "span",
    {
      class: `cue cue-${sentiment.polarity || "neutral"}`,
      dataset: { emotion: String(sentiment.emotion) },
      title: `${label} — ${t("confidence")} ${confidence}`,
    },
    el("span", { class: "cue-emoji", "aria-hidden": "true" }, EMOJI[sentiment.emotion] || "💬"),
    el("span", { class: "cue-label", "aria-hidden": "true" }, label),
    el("span", { class: "sr-only" }, `${t("emotion")}: ${label} (${t("confidence")} ${confidence})`),
  );
}

function textBlock(text, { lang, className, title }) {
  return el("div", { class: `msg-text ${className}`, lang: langAttr(lang), dir: "auto", title }, text ?? "");
}

function fillMessage(li, msg) {
  const mine = msg.author === boot.username;
  const translation = translationFor(msg);
  const translated = translation && translation.status === "ok" && typeof translation.text === "string";
  const flipped = state.showOriginal.has(msg.id);
  const cue = cueNode(msg.sentiment);

  li.className = `msg${mine ? " mine" : ""}${translated ? " translated" : ""}`;
  li.dataset.id = msg.id;
  li.dataset.seq = msg.seq;
  if (msg.client_id) li.dataset.clientId = msg.client_id;
  if (cue) li.dataset.tone = msg.sentiment.polarity || "neutral";
  else delete li.dataset.tone;
  // Known emotion, even below the display threshold (styling hooks and tests read it).
  if (msg.sentiment && msg.sentiment.emotion) li.dataset.emotion = msg.sentiment.emotion;
  else delete li.dataset.emotion;

  const head = el(
    "div",
    { class: "msg-head" },
    el("span", { class: "msg-author" }, msg.author),
    mine ? el("span", { class: "msg-you" }, `(${t("you")})`) : null,
    timeNode(msg.created),
    msg.edited || msg.edited_at ? el("span", { class: "msg-edited" }, t("edited")) : null,
    cue,
  );

  const body = el("div", { class: "msg-body" });
  const meta = el("div", { class: "msg-meta" });

  if (state.editing && state.editing.id === msg.id) {
    body.append(editorNode(msg));
  } else if (translated) {
    const engineTitle = translation.engine ? `${t("engine")} ${translation.engine}` : null;
    const originalTitle = `${t("original")} (${msg.language})`;
    if (flipped) {
      body.append(textBlock(msg.text, { lang: msg.language, className: "primary original", title: originalTitle }));
    } else {
      body.append(textBlock(translation.text, { lang: state.language, className: "primary translation", title: engineTitle }));
      const showInline = originalsToggle.checked || (msg.text || "").length <= SHORT_MESSAGE_CHARS;
      if (showInline) {
        body.classList.add("with-original");
        body.append(
          el(
            "div",
            { class: "msg-text secondary original", lang: langAttr(msg.language), dir: "auto", title: originalTitle },
            el("span", { class: "original-tag" }, `${t("original")} · ${msg.language}`),
            el("span", { class: "original-text" }, msg.text),
          ),
        );
      }
    }
    meta.append(
      el(
        "button",
        {
          type: "button",
          class: "btn-link",
          dataset: { action: "toggle-original" },
          "aria-pressed": flipped ? "true" : "false",
          title: engineTitle,
        },
        flipped ? t("translation") : t("original"),
      ),
    );
    if (!flipped) meta.append(el("span", { class: "badge badge-route", title: engineTitle }, `${t("translatedFrom")} ${msg.language}`));
  } else {
    body.append(textBlock(msg.text, { lang: msg.language, className: "primary original" }));
    if (translation && (translation.status === "untranslated" || translation.status === "failed")) {
      const reason = translation.reason || translation.status;
      meta.append(
        el(
          "span",
          { class: `badge badge-untranslated badge-${translation.status}`, title: reason },
          `${t("notTranslated")}: ${reason}`,
        ),
      );
    } else if (expectsTranslation(msg)) {
      meta.append(el("span", { class: "badge badge-pending", title: t("translating") }, t("translating")));
    }
  }

  if (mine && msg.id !== undefined && !(state.editing && state.editing.id === msg.id)) {
    meta.append(el("button", { type: "button", class: "btn-link", dataset: { action: "edit" } }, t("edit")));
  }
  li.replaceChildren(head, body, meta);
}

function editorNode(msg) {
  const area = el("textarea", { class: "edit-box", rows: "2", "aria-label": t("edit") });
  area.value = state.editing.draft ?? msg.text;
  area.addEventListener("input", () => {
    state.editing.draft = area.value;
  });
  area.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      saveEdit(msg.id, area.value);
    } else if (event.key === "Escape") {
      event.preventDefault();
      cancelEdit(msg.id);
    }
  });
  return el(
    "div",
    { class: "editor" },
    area,
    el("button", { type: "button", class: "btn btn-primary btn-small", dataset: { action: "save-edit" } }, t("save")),
    el("button", { type: "button", class: "btn btn-small", dataset: { action: "cancel-edit" } }, t("cancel")),
  );
}

function rerender(id) {
  const li = state.nodes.get(id);
  const msg = state.messages.get(id);
  if (!li || !msg) return;
  // Re-rendering replaces the buttons; put keyboard focus back where it was.
  const focused = li.contains(document.activeElement) ? document.activeElement.dataset.action : null;
  fillMessage(li, msg);
  if (focused) li.querySelector(`[data-action="${focused}"]`)?.focus();
}

function rerenderAll() {
  for (const id of state.nodes.keys()) rerender(id);
}

/** Insert a confirmed message by seq; local echoes (no seq yet) always stay at the end. */
function place(li, seq) {
  for (let node = list.lastElementChild; node; node = node.previousElementSibling) {
    if (node === li) continue;
    if (node.dataset.seq && Number(node.dataset.seq) < seq) {
      node.after(li);
      return;
    }
  }
  list.prepend(li);
}

// ------------------------------------------------------------------------------------------ the model

function noteSeq(seq) {
  if (typeof seq !== "number") return;
  state.seenSeqs.add(seq);
  if (seq > state.lastSeq) state.lastSeq = seq;
  if (state.oldestSeq === null || seq < state.oldestSeq) state.oldestSeq = seq;
}

function mergeMessage(existing, incoming) {
  return {
    ...existing,
    ...incoming,
    translations: { ...(existing.translations || {}), ...(incoming.translations || {}) },
    sentiment: incoming.sentiment ?? existing.sentiment ?? null,
  };
}

/** The holder for follow-ups of a message this page has not received yet (null for hidden ones). */
function rememberEarly(id) {
  if (!Number.isInteger(id) || state.hiddenIds.has(id)) return null;
  let early = state.early.get(id);
  if (!early) {
    if (state.early.size >= MAX_EARLY_FOLLOW_UPS) state.early.delete(state.early.keys().next().value);
    early = { translations: {}, sentiment: null };
    state.early.set(id, early);
  }
  return early;
}

/** Add or update a message; returns true when it was new to this page. */
function upsertMessage(msg) {
  if (!msg || msg.id === undefined) return false;
  if (msg.room && msg.room !== boot.room) return false; // never show another room's message here
  noteSeq(msg.seq);
  if (msg.hidden || state.hiddenIds.has(msg.id)) {
    removeMessage(msg.id);
    if (msg.client_id) dropOutbox(msg.client_id, { removeNode: true });
    return false;
  }
  const existing = state.messages.get(msg.id);
  if (existing) {
    state.messages.set(msg.id, mergeMessage(existing, msg));
    rerender(msg.id);
    if (msg.client_id) dropOutbox(msg.client_id, { removeNode: true });
    return false;
  }
  const early = state.early.get(msg.id);
  state.early.delete(msg.id);
  const fresh = { translations: {}, sentiment: null, ...msg };
  // Early follow-ups are newer than what message.new carries (it leaves before any worker has run).
  state.messages.set(msg.id, early ? mergeMessage(fresh, early) : fresh);
  const echo = msg.client_id && msg.author === boot.username ? state.outbox.get(msg.client_id) : null;
  const li = echo ? echo.node : el("li");
  if (echo) dropOutbox(msg.client_id, { removeNode: false });
  state.nodes.set(msg.id, li);
  fillMessage(li, state.messages.get(msg.id));
  place(li, msg.seq);
  return true;
}

/** The author's own hidden message: its text goes, a notice with an Appeal button takes its place. */
function showHiddenNotice(id, flagId) {
  const li = state.nodes.get(id);
  state.hiddenIds.add(id);
  state.messages.delete(id);
  if (!li) return;
  const note = el("p", { class: "msg-hidden-note" }, t("hiddenByModerator"));
  const appealButton = el("button", { type: "button", class: "btn btn-small", "data-action": "appeal" }, t("appeal"));
  li.className = "msg mine msg-hidden";
  li.replaceChildren(note, appealButton);
  appealButton.addEventListener("click", () => {
    const reason = el("textarea", { id: `appeal-${id}`, rows: "2", maxlength: "2000", dir: "auto" });
    const form = el(
      "form",
      { class: "appeal-form stack" },
      el("label", { for: `appeal-${id}` }, t("appealReason")),
      reason,
      el("button", { type: "submit", class: "btn btn-primary btn-small" }, t("sendAppeal")),
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        await fetchJSON(boot.appeal_url.replace("/0/", `/${flagId}/`), {
          method: "POST",
          body: { text: reason.value },
          csrfToken: boot.csrf_token,
        });
        li.replaceChildren(note, el("p", { class: "appeal-sent", role: "status" }, t("appealSent")));
      } catch (error) {
        notify(noticeBox, error.message, { kind: "error" });
      }
    });
    li.replaceChildren(note, form);
    reason.focus();
  });
}

function removeMessage(id) {
  state.hiddenIds.add(id);
  state.messages.delete(id);
  state.nodes.get(id)?.remove();
  state.nodes.delete(id);
}

function clearMessages() {
  for (const li of state.nodes.values()) li.remove();
  state.messages.clear();
  state.early.clear();
  state.nodes.clear();
  state.seenSeqs.clear();
  state.oldestSeq = null;
  state.gapCheckedUpTo = 0;
}

/** A live frame skipped some seqs (the channel layer may drop events): fetch the hole over HTTP. */
function scheduleGapCheck() {
  if (state.gapTimer) return;
  state.gapTimer = setTimeout(async () => {
    state.gapTimer = null;
    const floor = Math.max(state.gapCheckedUpTo, state.oldestSeq ?? 0);
    let firstMissing = null;
    for (let seq = floor + 1; seq < state.lastSeq; seq += 1) {
      if (!state.seenSeqs.has(seq)) {
        firstMissing = seq;
        break;
      }
    }
    const upTo = state.lastSeq;
    if (firstMissing === null) {
      state.gapCheckedUpTo = upTo;
      return;
    }
    try {
      const page = await fetchJSON(historyUrl({ after: firstMissing - 1, limit: 200 }));
      const keepBottom = isNearBottom();
      for (const msg of page.messages || []) upsertMessage(msg);
      if (keepBottom) scrollToBottom();
      // Seqs still missing now are hidden or deleted messages; do not ask again.
      state.gapCheckedUpTo = upTo;
    } catch {
      // The next live frame or the next reconnect's resume will try again.
    }
  }, GAP_CHECK_DELAY_MS);
}

// ----------------------------------------------------------------------------------------- history

async function loadLatest() {
  const page = await fetchJSON(historyUrl({ limit: PAGE_SIZE }));
  const messages = page.messages || [];
  // aria-busy: screen readers wait for the batch instead of reading fifty messages one by one.
  list.setAttribute("aria-busy", "true");
  // Live messages newer than this page (they arrived while it was loading) must survive the reset.
  const newestListed = messages.length ? messages[messages.length - 1].seq : 0;
  const newer = [...state.messages.values()].filter((msg) => msg.seq > newestListed);
  clearMessages();
  for (const msg of [...messages, ...newer]) upsertMessage(msg);
  list.setAttribute("aria-busy", "false");
  state.gapCheckedUpTo = state.lastSeq;
  state.hasOlder = messages.length >= PAGE_SIZE && (state.oldestSeq ?? 1) > 1;
  state.historyLoaded = true;
  updateOlderButton();
  scrollToBottom();
}

async function loadOlder() {
  if (state.loadingOlder || !state.hasOlder || state.oldestSeq === null) return;
  state.loadingOlder = true;
  loadOlderButton.setAttribute("aria-busy", "true");
  const heightBefore = scroller.scrollHeight;
  const topBefore = scroller.scrollTop;
  try {
    const page = await fetchJSON(historyUrl({ before: state.oldestSeq, limit: PAGE_SIZE }));
    const messages = page.messages || [];
    let added = 0;
    list.setAttribute("aria-busy", "true");
    for (const msg of messages) if (upsertMessage(msg)) added += 1;
    list.setAttribute("aria-busy", "false");
    if (messages.length < PAGE_SIZE || added === 0 || state.oldestSeq <= 1) state.hasOlder = false;
    // Keep the message the reader was looking at in place.
    scroller.scrollTop = scroller.scrollHeight - heightBefore + topBefore;
  } catch (error) {
    notify(noticeBox, error.message, { kind: "error" });
  } finally {
    state.loadingOlder = false;
    loadOlderButton.removeAttribute("aria-busy");
    updateOlderButton();
  }
}

function updateOlderButton() {
  loadOlderButton.disabled = !state.hasOlder;
  if (!state.hasOlder) loadOlderButton.textContent = t("noMore");
}

// ------------------------------------------------------------------------------------------ outbox

function persistOutbox() {
  const pending = [...state.outbox.values()].map(({ clientId, text }) => ({ clientId, text }));
  try {
    if (pending.length) sessionStorage.setItem(outboxKey, JSON.stringify(pending));
    else sessionStorage.removeItem(outboxKey);
  } catch {
    // Storage may be full or disabled; the in-memory outbox still works.
  }
}

function fillEcho(entry) {
  const li = entry.node;
  li.className = `msg mine echo ${entry.status}`;
  li.dataset.clientId = entry.clientId;
  delete li.dataset.seq;
  delete li.dataset.id;
  const meta = el("div", { class: "msg-meta" });
  if (entry.status === "failed") {
    meta.append(
      el("span", { class: "badge badge-failed", title: entry.detail || "" }, `${t("failed")}: ${entry.detail || ""}`),
      el("button", { type: "button", class: "btn-link", dataset: { action: "retry-send" } }, t("retry")),
      el("button", { type: "button", class: "btn-link", dataset: { action: "discard-send" } }, t("discard")),
    );
  } else {
    meta.append(el("span", { class: "badge badge-pending" }, t("sending")));
  }
  li.replaceChildren(
    el("div", { class: "msg-head" }, el("span", { class: "msg-author" }, boot.username), el("span", { class: "msg-you" }, `(${t("you")})`)),
    el("div", { class: "msg-body" }, textBlock(entry.text, { lang: state.language, className: "primary original" })),
    meta,
  );
}

function queueMessage(text, clientId = uuid()) {
  const entry = { clientId, text, status: "pending", detail: "", node: el("li"), retryTimer: null };
  state.outbox.set(clientId, entry);
  fillEcho(entry);
  list.append(entry.node);
  persistOutbox();
  transmit(entry);
  return entry;
}

function transmit(entry) {
  sendFrame({ type: "message.send", client_id: entry.clientId, text: entry.text });
}

function flushOutbox() {
  for (const entry of state.outbox.values()) if (entry.status === "pending" && !entry.retryTimer) transmit(entry);
}

function dropOutbox(clientId, { removeNode }) {
  const entry = state.outbox.get(clientId);
  if (!entry) return;
  clearTimeout(entry.retryTimer);
  state.outbox.delete(clientId);
  if (removeNode) entry.node.remove();
  persistOutbox();
}

function restoreOutbox() {
  let saved = [];
  try {
    saved = JSON.parse(sessionStorage.getItem(outboxKey) || "[]");
  } catch {
    saved = [];
  }
  // Same client_id as before the reload: the server stores each one only once.
  for (const item of saved) if (item && item.clientId && typeof item.text === "string") queueMessage(item.text, item.clientId);
}

function sendComposer() {
  const text = composer.value;
  if (!text.trim()) return;
  queueMessage(text);
  composer.value = "";
  autosize();
  scrollToBottom();
}

// ----------------------------------------------------------------------------------------- editing

function startEdit(id) {
  const msg = state.messages.get(id);
  if (!msg) return;
  if (state.editing) cancelEdit(state.editing.id);
  state.editing = { id, draft: msg.text };
  rerender(id);
  const area = state.nodes.get(id)?.querySelector(".edit-box");
  if (area) {
    area.focus();
    area.setSelectionRange(area.value.length, area.value.length);
  }
}

function cancelEdit(id) {
  state.editing = null;
  rerender(id);
  state.nodes.get(id)?.querySelector('[data-action="edit"]')?.focus();
}

function saveEdit(id, text) {
  const msg = state.messages.get(id);
  if (!msg || !text.trim() || text === msg.text) {
    cancelEdit(id);
    return;
  }
  if (!sendFrame({ type: "message.edit", id, text })) {
    notify(noticeBox, t("offline"), { kind: "error" });
    return;
  }
  cancelEdit(id);
}

// ------------------------------------------------------------------------------------------ frames

const handlers = {
  "message.new"(frame) {
    const keepBottom = isNearBottom();
    const before = state.lastSeq;
    upsertMessage(frame.message);
    if (frame.message && frame.message.seq > before + 1 && before > 0) scheduleGapCheck();
    if (keepBottom) scrollToBottom();
  },
  "message.ack"(frame) {
    const msg = frame.message;
    const entry = state.outbox.get(frame.client_id);
    if (msg && entry && msg.client_id !== frame.client_id) msg.client_id = frame.client_id;
    const before = state.lastSeq;
    upsertMessage(msg);
    if (entry) dropOutbox(frame.client_id, { removeNode: true });
    if (msg && msg.seq > before + 1 && before > 0) scheduleGapCheck();
  },
  "message.translated"(frame) {
    if (frame.language !== state.language) return;
    const translation = { status: frame.status, text: frame.text, engine: frame.engine, reason: frame.reason };
    const msg = state.messages.get(frame.id) || rememberEarly(frame.id);
    if (!msg) return;
    msg.translations = { ...(msg.translations || {}), [frame.language]: translation };
    rerender(frame.id);
  },
  "message.sentiment"(frame) {
    const msg = state.messages.get(frame.id) || rememberEarly(frame.id);
    if (!msg) return;
    const { emotion, polarity, score, flagged } = frame;
    msg.sentiment = { emotion, polarity, score, flagged };
    rerender(frame.id);
  },
  "message.hidden"(frame) {
    if (typeof frame.seq === "number") state.seenSeqs.add(frame.seq);
    const msg = state.messages.get(frame.id);
    if (msg && msg.author === boot.username && Number.isInteger(frame.flag_id)) {
      showHiddenNotice(frame.id, frame.flag_id);
      return;
    }
    removeMessage(frame.id);
  },
  "message.edited"(frame) {
    const msg = state.messages.get(frame.id);
    if (!msg) return;
    msg.text = frame.text;
    msg.edited = frame.edited || true;
    msg.translations = {}; // the old translations describe the old text
    if (frame.language) msg.language = frame.language;
    rerender(frame.id);
  },
  "resume.done"(frame) {
    if (typeof frame.seq === "number" && frame.seq > state.lastSeq) state.lastSeq = frame.seq;
    state.attempt = 0;
    setStatus("online");
  },
  typing(frame) {
    if (!frame.user || frame.user === boot.username) return;
    clearTimeout(state.typers.get(frame.user));
    state.typers.set(
      frame.user,
      setTimeout(() => {
        state.typers.delete(frame.user);
        renderTyping();
      }, TYPING_SHOW_MS),
    );
    renderTyping();
  },
  presence(frame) {
    const names = Array.isArray(frame.online) ? frame.online : [];
    presenceBox.replaceChildren(
      ...names.map((name) => el("span", { class: `presence-chip${name === boot.username ? " me" : ""}` }, name)),
    );
  },
  "language.changed"(frame) {
    applyLanguage(frame.language);
  },
  error(frame) {
    const entry = frame.client_id ? state.outbox.get(frame.client_id) : null;
    if (entry && frame.code === "rate_limited") {
      // Keep it pending and try again later, with jitter so a burst does not come back as a burst.
      clearTimeout(entry.retryTimer);
      entry.retryTimer = setTimeout(() => {
        entry.retryTimer = null;
        transmit(entry);
      }, RATE_LIMIT_RETRY_MS * (1 + Math.random()));
      notify(noticeBox, t("rateLimited"), { kind: "warn" });
    } else if (entry) {
      entry.status = "failed";
      entry.detail = frame.detail || frame.code;
      fillEcho(entry);
    } else {
      notify(noticeBox, frame.detail || frame.code || "error", { kind: "error" });
    }
  },
};

function handleFrame(raw) {
  let frame;
  try {
    frame = JSON.parse(raw);
  } catch {
    return;
  }
  const handler = frame && handlers[frame.type];
  if (handler) handler(frame);
}

function renderTyping() {
  const names = [...state.typers.keys()];
  if (!names.length) typingBox.textContent = "";
  else typingBox.textContent = t(names.length === 1 ? "isTyping" : "areTyping", { names: names.join(", ") });
}

// ---------------------------------------------------------------------------------------- language

async function applyLanguage(language) {
  if (!language) return;
  state.language = language;
  languageSelect.value = language;
  document.querySelectorAll(".lang-chip").forEach((chip) => {
    chip.textContent = language.toUpperCase();
  });
  state.showOriginal.clear();
  try {
    await loadLatest();
  } catch (error) {
    notify(noticeBox, error.message, { kind: "error" });
    rerenderAll();
  }
  for (const entry of state.outbox.values()) list.append(entry.node);
}

async function requestLanguage(language) {
  if (sendFrame({ type: "language.set", language })) return; // applied on language.changed
  try {
    await fetchJSON(boot.me_url, { method: "PATCH", body: { language }, csrfToken: boot.csrf_token });
    await applyLanguage(language);
  } catch (error) {
    languageSelect.value = state.language;
    notify(noticeBox, error.message, { kind: "error" });
  }
}

// -------------------------------------------------------------------------------------- connection

function setStatus(kind, delayMs) {
  statusBox.dataset.state = kind;
  statusBox.className = `conn conn-${kind}`;
  const text = kind === "reconnecting" ? t("reconnecting", { s: (delayMs / 1000).toFixed(1) }) : t(kind);
  statusBox.querySelector(".conn-text").textContent = text;
}

async function connect() {
  clearTimeout(state.reconnectTimer);
  state.reconnectTimer = null;
  if (state.socket || state.refused) return;
  setStatus("connecting");
  if (!state.historyLoaded) {
    try {
      await loadLatest();
      for (const entry of state.outbox.values()) list.append(entry.node);
    } catch (error) {
      if (error.status === 403 || error.status === 401) return refuse();
      return scheduleReconnect();
    }
  }
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const socket = new WebSocket(scheme + location.host + boot.ws_path);
  state.socket = socket;
  socket.addEventListener("open", () => {
    socket.send(JSON.stringify({ type: "resume", after: state.lastSeq }));
    flushOutbox();
  });
  socket.addEventListener("message", (event) => handleFrame(event.data));
  socket.addEventListener("close", (event) => {
    if (state.socket !== socket) return;
    state.socket = null;
    if (event.code === 4403) return refuse();
    scheduleReconnect();
  });
}

function refuse() {
  state.refused = true;
  setStatus("refused");
}

function scheduleReconnect() {
  if (state.reconnectTimer) return;
  const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** state.attempt);
  // "Equal jitter": half fixed, half random, so many clients dropped together do not return together.
  const delay = Math.max(BACKOFF_MIN_MS, ceiling / 2 + (Math.random() * ceiling) / 2);
  state.attempt += 1;
  setStatus(navigator.onLine === false ? "offline" : "reconnecting", delay);
  state.reconnectTimer = setTimeout(connect, delay);
}

// ---------------------------------------------------------------------------------------- controls

function autosize() {
  composer.style.height = "auto";
  composer.style.height = `${Math.min(composer.scrollHeight, 200)}px`;
}

function wireControls() {
  composer.addEventListener("keydown", (event) => {
    // isComposing: Enter also confirms an IME candidate (Chinese, Japanese); that must not send.
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      sendComposer();
    }
  });
  composer.addEventListener("input", () => {
    autosize();
    const now = Date.now();
    if (composer.value.trim() && now - state.lastTypingSent >= TYPING_SEND_EVERY_MS && sendFrame({ type: "typing" })) {
      state.lastTypingSent = now;
    }
  });
  composerForm.addEventListener("submit", (event) => {
    event.preventDefault();
    sendComposer();
    composer.focus();
  });

  list.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const li = button.closest("li");
    const id = li.dataset.id !== undefined ? Number(li.dataset.id) : null;
    const action = button.dataset.action;
    if (action === "toggle-original" && id !== null) {
      if (state.showOriginal.has(id)) state.showOriginal.delete(id);
      else state.showOriginal.add(id);
      rerender(id);
    } else if (action === "edit" && id !== null) startEdit(id);
    else if (action === "save-edit" && id !== null) saveEdit(id, li.querySelector(".edit-box").value);
    else if (action === "cancel-edit" && id !== null) cancelEdit(id);
    else if (action === "retry-send" || action === "discard-send") {
      const entry = state.outbox.get(li.dataset.clientId);
      if (!entry) return;
      if (action === "discard-send") dropOutbox(entry.clientId, { removeNode: true });
      else {
        entry.status = "pending";
        fillEcho(entry);
        transmit(entry);
      }
    }
  });

  languageSelect.addEventListener("change", () => requestLanguage(languageSelect.value));

  const cuesSaved = localStorage.getItem("bridge.cues");
  cuesToggle.checked = cuesSaved !== "off";
  document.body.classList.toggle("cues-off", !cuesToggle.checked);
  cuesToggle.addEventListener("change", () => {
    localStorage.setItem("bridge.cues", cuesToggle.checked ? "on" : "off");
    document.body.classList.toggle("cues-off", !cuesToggle.checked);
  });

  originalsToggle.checked = localStorage.getItem("bridge.originals") === "on";
  originalsToggle.addEventListener("change", () => {
    localStorage.setItem("bridge.originals", originalsToggle.checked ? "on" : "off");
    rerenderAll();
  });

  loadOlderButton.addEventListener("click", loadOlder);
  scroller.addEventListener("scroll", () => {
    if (scroller.scrollTop < 40) loadOlder();
  });

  window.addEventListener("online", () => {
    if (!state.socket) connect();
  });
  window.addEventListener("offline", () => {
    if (!state.socket) setStatus("offline");
  });
}

wireControls();
restoreOutbox();
connect();
composer.focus();
