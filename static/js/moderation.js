// Moderation queue: lists open flags and resolves them (approve / hide, with a note).
import { el, fetchJSON, makeTranslator, notify, readJsonScript } from "./dom.js";

const boot = readJsonScript("moderation-bootstrap");
const t = makeTranslator({
  empty: "Nothing to review.",
  approve: "Approve",
  hide: "Hide",
  note: "Note (optional)",
  original: "Original",
  translations: "Translations",
  emotion: "Emotion",
  score: "Score",
  reason: "Reason",
  model: "Model version",
  resolved: "Resolved",
  loadFailed: "Could not load the queue",
  trigger: "Trigger",
  hostile: "Hostility",
  appeal: "Appeal",
  audit: "Audit trail",
});
const container = document.getElementById("flags");
const noticeBox = document.getElementById("notice");
const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

const pct = (value) => (typeof value === "number" ? `${Math.round(value * 100)}%` : "—");

function fact(label, value) {
  return [el("dt", {}, label), el("dd", {}, value ?? "—")];
}

function translationsList(translations) {
  const entries = Object.entries(translations || {});
  if (!entries.length) return el("p", { class: "muted" }, "—");
  return el(
    "ul",
    { class: "flag-translations" },
    ...entries.map(([language, tr]) =>
      el(
        "li",
        { title: tr.engine || "" },
        el("span", { class: "lang-chip" }, language.toUpperCase()),
        " ",
        tr.status === "ok"
          ? el("span", { lang: language, dir: "auto" }, tr.text)
          : el("span", { class: "badge badge-untranslated" }, `${tr.status}: ${tr.reason || ""}`),
      ),
    ),
  );
}

/** Hostile-sentiment scores of the original and of each translation ("original 93% · en 88%"). */
function hostileScores(scores) {
  if (!scores) return "—";
  const parts = [];
  if (typeof scores.original === "number") parts.push(`${t("original").toLowerCase()} ${pct(scores.original)}`);
  for (const [language, value] of Object.entries(scores.translations || {})) parts.push(`${language} ${pct(value)}`);
  return parts.length ? parts.join(" · ") : "—";
}

function auditList(audit) {
  if (!Array.isArray(audit) || !audit.length) return null;
  return el(
    "details",
    { class: "flag-audit" },
    el("summary", {}, `${t("audit")} (${audit.length})`),
    el(
      "ol",
      {},
      ...audit.map((entry) =>
        el(
          "li",
          {},
          `${entry.created ? dateFormat.format(new Date(entry.created)) : ""} · ${entry.action} · ${entry.actor ?? "system"}`,
          entry.model_version ? ` · ${entry.model_version}` : "",
          typeof entry.score === "number" ? ` · ${pct(entry.score)}` : "",
          entry.note ? el("span", { class: "muted" }, ` — ${entry.note}`) : "",
        ),
      ),
    ),
  );
}

function flagCard(flag) {
  const message = flag.message || {};
  const sentiment = message.sentiment || {};
  const modelVersion = flag.model_version ?? sentiment.model_version ?? flag.model ?? "—";
  const note = el("textarea", { class: "flag-note", rows: "2", id: `note-${flag.id}` });
  const created = flag.created ? dateFormat.format(new Date(flag.created)) : "";
  const card = el(
    "article",
    { class: "card flag", dataset: { flagId: flag.id }, "aria-labelledby": `flag-title-${flag.id}` },
    el(
      "header",
      { class: "flag-head" },
      el("h2", { id: `flag-title-${flag.id}` }, `${message.author ?? "?"} · ${message.room ?? ""}`),
      el("span", { class: "muted" }, created),
    ),
    el("p", { class: "flag-original-label muted" }, `${t("original")} (${message.language ?? "?"})`),
    el("blockquote", { class: "flag-original", lang: message.language || null, dir: "auto" }, message.text ?? ""),
    el("p", { class: "muted" }, t("translations")),
    translationsList(message.translations),
    el(
      "dl",
      { class: "flag-facts" },
      ...fact(t("emotion"), sentiment.emotion ? `${sentiment.emotion} (${sentiment.polarity ?? "?"}, ${pct(sentiment.score)})` : "—"),
      ...fact(t("reason"), flag.reason),
      ...fact(t("score"), pct(flag.score)),
      ...fact(t("model"), String(modelVersion)),
      ...(flag.trigger ? fact(t("trigger"), flag.trigger) : []),
      ...fact(t("hostile"), hostileScores(flag.scores)),
    ),
    flag.appealed ? el("p", { class: "flag-appeal" }, `${t("appeal")}: `, el("q", { dir: "auto" }, flag.appeal_text || "")) : null,
    auditList(flag.audit),
    el("label", { for: `note-${flag.id}` }, t("note")),
    note,
    el(
      "div",
      { class: "flag-actions" },
      el("button", { type: "button", class: "btn btn-primary", dataset: { action: "approve" } }, t("approve")),
      el("button", { type: "button", class: "btn btn-danger", dataset: { action: "hide" } }, t("hide")),
    ),
  );
  card.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    card.querySelectorAll("button").forEach((b) => {
      b.disabled = true;
    });
    try {
      await fetchJSON(`/api/moderation/flags/${encodeURIComponent(flag.id)}/resolve`, {
        method: "POST",
        body: { action: button.dataset.action, note: note.value },
        csrfToken: boot.csrf_token,
      });
      card.remove();
      notify(noticeBox, `${t("resolved")}: ${button.textContent}`);
      if (!container.querySelector(".flag")) container.replaceChildren(el("p", { class: "muted" }, t("empty")));
    } catch (error) {
      card.querySelectorAll("button").forEach((b) => {
        b.disabled = false;
      });
      notify(noticeBox, error.message, { kind: "error" });
    }
  });
  return card;
}

async function load() {
  container.setAttribute("aria-busy", "true");
  try {
    const data = await fetchJSON("/api/moderation/flags?status=open");
    const flags = data.flags || [];
    container.replaceChildren(...(flags.length ? flags.map(flagCard) : [el("p", { class: "muted" }, t("empty"))]));
  } catch (error) {
    container.replaceChildren(el("p", { class: "form-errors", role: "alert" }, `${t("loadFailed")}: ${error.message}`));
  } finally {
    container.setAttribute("aria-busy", "false");
  }
}

document.getElementById("refresh-flags")?.addEventListener("click", load);
load();
