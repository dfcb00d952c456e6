// Model checkpoints (admins): upload with progress, validation status and figures beside the active
// model's, activate, roll back, shadow results. API: /api/checkpoints (CONTRACT.md).
import { el, fetchJSON, makeTranslator, notify, readJsonScript } from "./dom.js";

const boot = readJsonScript("checkpoints-bootstrap");
const api = boot.api || "/api/checkpoints";
const t = makeTranslator({
  translation: "Translation",
  sentiment: "Sentiment",
  version: "Version",
  status: "Status",
  languages: "Languages",
  figures: "Evaluation",
  shadow: "Shadow results",
  created: "Uploaded",
  actions: "Actions",
  activate: "Activate",
  rollback: "Roll back",
  shadowOn: "Run in shadow",
  shadowOff: "Stop shadow",
  confirmShadow: "Shadow mode updated for version {version}",
  activeModel: "active",
  none: "No checkpoints yet.",
  uploading: "Uploading… {pct}",
  uploaded: "Uploaded: version {version}, {status}",
  confirmActivate: "Activated version {version}",
  confirmRollback: "Rolled back from version {version}",
  loadFailed: "Could not load the checkpoints",
});
const POLL_MS = 3000;
const container = document.getElementById("checkpoints");
const noticeBox = document.getElementById("notice");
const form = document.getElementById("upload-form");
const kindSelect = document.getElementById("ckpt-kind");
const languagesInput = document.getElementById("ckpt-languages");
const progress = document.getElementById("upload-progress");
const uploadStatus = document.getElementById("upload-status");
const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
let pollTimer = null;

/** Evaluation figures as flat [name, number-or-text] pairs; nested groups ("en-es": {bleu}) become "en-es bleu". */
function flatFigures(checkpoint) {
  const source = checkpoint.metrics ?? checkpoint.evaluation ?? checkpoint.figures ?? {};
  const out = new Map();
  const walk = (prefix, value) => {
    if (value && typeof value === "object" && !Array.isArray(value)) {
      for (const [key, inner] of Object.entries(value)) walk(prefix ? `${prefix} ${key}` : key, inner);
    } else if (prefix) out.set(prefix, value);
  };
  walk("", source);
  return out;
}

const formatValue = (value) =>
  typeof value === "number" ? (Number.isInteger(value) ? String(value) : value.toFixed(3)) : String(value ?? "—");

function figuresNode(checkpoint, active) {
  const figures = flatFigures(checkpoint);
  if (!figures.size) return el("span", { class: "muted" }, "—");
  const activeFigures = active && active !== checkpoint ? flatFigures(active) : new Map();
  return el(
    "dl",
    { class: "figures" },
    ...[...figures].flatMap(([name, value]) => {
      const reference = activeFigures.get(name);
      const beside =
        typeof value === "number" && typeof reference === "number"
          ? el(
              "span",
              { class: `delta ${value >= reference ? "delta-up" : "delta-down"}` },
              ` (${t("activeModel")} ${formatValue(reference)}, ${value >= reference ? "+" : "−"}${formatValue(Math.abs(value - reference))})`,
            )
          : null;
      return [el("dt", {}, name), el("dd", {}, formatValue(value), beside)];
    }),
  );
}

function shadowNode(checkpoint) {
  const shadow = checkpoint.shadow ?? checkpoint.shadow_results;
  if (!shadow || (typeof shadow === "object" && !Object.keys(shadow).length)) return null;
  if (typeof shadow !== "object") return el("p", { class: "shadow" }, `${t("shadow")}: ${shadow}`);
  return el(
    "details",
    { class: "shadow" },
    el("summary", {}, t("shadow")),
    el("dl", { class: "figures" }, ...Object.entries(shadow).flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, typeof v === "object" ? JSON.stringify(v) : formatValue(v))])),
  );
}

function actionButtons(checkpoint) {
  const buttons = [];
  if (["ready", "retired"].includes(checkpoint.status)) {
    buttons.push(el("button", { type: "button", class: "btn btn-primary btn-small", dataset: { action: "activate", id: checkpoint.id, version: checkpoint.version } }, t("activate")));
  }
  if (checkpoint.kind === "sentiment" && checkpoint.status === "ready") {
    const running = Boolean(checkpoint.shadow && checkpoint.shadow.enabled);
    buttons.push(el("button", { type: "button", class: "btn btn-small", dataset: { action: "shadow", enabled: String(!running), id: checkpoint.id, version: checkpoint.version } }, t(running ? "shadowOff" : "shadowOn")));
  }
  if (checkpoint.status === "active") {
    buttons.push(el("button", { type: "button", class: "btn btn-small", dataset: { action: "rollback", id: checkpoint.id, version: checkpoint.version } }, t("rollback")));
  }
  return buttons;
}

function kindSection(kind, checkpoints) {
  const active = checkpoints.find((c) => c.status === "active") || null;
  const rows = checkpoints.map((checkpoint) =>
    el(
      "tr",
      { class: checkpoint.status === "active" ? "is-active" : null, dataset: { checkpointId: checkpoint.id } },
      el("td", {}, String(checkpoint.version ?? checkpoint.id)),
      el("td", {}, el("span", { class: `status status-${checkpoint.status}`, title: checkpoint.detail || checkpoint.reason || null }, checkpoint.status), checkpoint.detail || checkpoint.reason ? el("div", { class: "hint" }, checkpoint.detail || checkpoint.reason) : null),
      el("td", {}, Array.isArray(checkpoint.languages) ? checkpoint.languages.join(", ") : checkpoint.languages || "—"),
      el("td", {}, figuresNode(checkpoint, active), shadowNode(checkpoint)),
      el("td", {}, checkpoint.created ? dateFormat.format(new Date(checkpoint.created)) : "—"),
      el("td", { class: "row-actions" }, ...actionButtons(checkpoint)),
    ),
  );
  return el(
    "section",
    { class: "card", "aria-labelledby": `kind-${kind}` },
    el("h2", { id: `kind-${kind}` }, t(kind) === kind ? kind : t(kind)),
    el(
      "div",
      { class: "table-wrap" },
      el(
        "table",
        { class: "ckpt-table" },
        el("thead", {}, el("tr", {}, ...["version", "status", "languages", "figures", "created", "actions"].map((k) => el("th", { scope: "col" }, t(k))))),
        el("tbody", {}, ...rows),
      ),
    ),
  );
}

async function load() {
  container.setAttribute("aria-busy", "true");
  clearTimeout(pollTimer);
  try {
    const data = await fetchJSON(api);
    const checkpoints = data.checkpoints || [];
    const kinds = new Map();
    for (const checkpoint of checkpoints) {
      if (!kinds.has(checkpoint.kind)) kinds.set(checkpoint.kind, []);
      kinds.get(checkpoint.kind).push(checkpoint);
    }
    container.replaceChildren(
      ...(checkpoints.length ? [...kinds].map(([kind, list]) => kindSection(kind, list)) : [el("p", { class: "muted" }, t("none"))]),
    );
    // Validation runs in a worker: keep the page current until every upload has a verdict.
    if (checkpoints.some((c) => c.status === "validating")) pollTimer = setTimeout(load, POLL_MS);
  } catch (error) {
    container.replaceChildren(el("p", { class: "form-errors", role: "alert" }, `${t("loadFailed")}: ${error.message}`));
  } finally {
    container.setAttribute("aria-busy", "false");
  }
}

container.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  const { action, id, version } = button.dataset;
  button.disabled = true;
  try {
    const body = action === "shadow" ? { enabled: button.dataset.enabled === "true" } : {};
    await fetchJSON(`${api}/${encodeURIComponent(id)}/${action}`, { method: "POST", body, csrfToken: boot.csrf_token });
    const done = { activate: "confirmActivate", rollback: "confirmRollback", shadow: "confirmShadow" }[action];
    notify(noticeBox, t(done, { version }));
  } catch (error) {
    notify(noticeBox, error.message, { kind: "error" });
  }
  await load();
});

function syncLanguagesField() {
  const translation = kindSelect.value === "translation";
  languagesInput.disabled = !translation;
  languagesInput.required = translation;
}

// XMLHttpRequest, not fetch: only XHR reports upload progress, and checkpoints are large.
form.addEventListener("submit", (event) => {
  event.preventDefault();
  const body = new FormData(form);
  if (kindSelect.value !== "translation") body.delete("languages");
  const request = new XMLHttpRequest();
  request.open("POST", api);
  request.setRequestHeader("X-CSRFToken", boot.csrf_token);
  request.setRequestHeader("Accept", "application/json");
  request.responseType = "json";
  progress.hidden = false;
  progress.value = 0;
  form.querySelector("#upload-button").disabled = true;
  request.upload.addEventListener("progress", (e) => {
    if (!e.lengthComputable) return;
    progress.value = Math.round((e.loaded / e.total) * 100);
    uploadStatus.textContent = t("uploading", { pct: `${progress.value}%` });
  });
  request.addEventListener("loadend", () => {
    form.querySelector("#upload-button").disabled = false;
    const payload = request.response || {};
    if (request.status >= 200 && request.status < 300) {
      progress.value = 100;
      uploadStatus.textContent = t("uploaded", { version: payload.version ?? payload.id, status: payload.status });
      form.reset();
      syncLanguagesField();
    } else {
      progress.hidden = true;
      uploadStatus.textContent = payload?.error?.detail || `${request.status} ${request.statusText || "error"}`;
      uploadStatus.classList.add("field-error");
    }
    load();
  });
  uploadStatus.classList.remove("field-error");
  request.send(body);
});

kindSelect.addEventListener("change", syncLanguagesField);
document.getElementById("refresh-checkpoints")?.addEventListener("click", load);
syncLanguagesField();
load();
