// acnedata review page: keyboard-first decisions; every one is POSTed and committed at once.
"use strict";

const state = {
  view: "queue",
  classes: [],    // [{name, aliases, key}] in spec order; key "1".."9"
  items: [],      // the review queue, decided ones included so ← can go back to them
  index: 0,
  sheetClass: null,
  sheet: [],      // contact sheet items of sheetClass
  sheetIndex: -1,
  busy: false,    // one request at a time: a fast typist must not race two decisions
};

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

// Catalog text comes from the web: only http(s) links, and only ever set as text, never HTML.
function safeUrl(url) {
  return typeof url === "string" && /^https?:\/\//i.test(url) ? url : null;
}

function link(url, text) {
  const href = safeUrl(url);
  if (!href) return document.createTextNode(text || "—");
  return el("a", { href, target: "_blank", rel: "noopener noreferrer", text: text || href });
}

// The server's per-session token, in the page it served: POSTs without it are refused.
const TOKEN = document.querySelector('meta[name="acnedata-token"]').content;

async function api(path, body) {
  const opts = body === undefined ? {} : {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Acnedata-Token": TOKEN },
    body: JSON.stringify(body),
  };
  const res = await fetch(path, opts);
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(data.error || `${res.status} ${res.statusText}`);
  return data;
}

function say(message) {
  $("message").textContent = message || "";
}

function describe(decision) {
  if (!decision) return "undecided";
  return decision === "reject" ? "rejected" : decision;
}

// --- queue view ----------------------------------------------------------------------------
function progress() {
  if (state.view === "sheet") {
    const n = state.sheet.length;
    const moved = state.sheet.filter((s) => s.final_label !== state.sheetClass).length;
    const where = state.sheetIndex >= 0 ? ` · image ${state.sheetIndex + 1} selected` : "";
    $("progress").textContent =
      `${state.sheetClass}: ${n} image${n === 1 ? "" : "s"}` +
      (moved ? `, ${moved} moved out` : "") + where;
    return;
  }
  const total = state.items.length;
  const decided = state.items.filter((i) => i.decision).length;
  $("progress").textContent = total
    ? `${decided} of ${total} decided · item ${state.index + 1} of ${total}`
    : "Nothing to review";
}

function renderItem() {
  const item = state.items[state.index];
  $("empty").hidden = Boolean(item);
  $("item").hidden = !item;
  progress();
  if (!item) return;
  $("item").dataset.itemId = item.id;
  $("item").classList.toggle("decided", Boolean(item.decision));
  const img = $("main-img");
  img.src = item.image;
  img.alt = item.title || item.key;
  $("item-title").textContent = item.title || item.key;
  $("reason").textContent = item.review || "—";
  $("provisional").textContent = item.label
    ? `${item.label} — ${item.label_reason || ""}`
    : `none — ${item.label_reason || ""}`;
  showSuggestion(item.suggestion, item.label);
  const decision = $("decision");
  decision.textContent = describe(item.decision);
  decision.className = item.decision ? (item.decision === "reject" ? "bad" : "good") : "muted";
  $("found-for").textContent = item.found_for.join(", ") || "—";
  const lic = item.licence;
  $("licence").replaceChildren(
    link(lic.url, lic.spdx),
    lic.verdict_reason ? el("span", { class: "muted", text: ` — ${lic.verdict_reason}` }) : "",
  );
  $("author").textContent = item.author || "—";
  $("source").replaceChildren(
    link(item.page_url, item.page_url ? `${item.source}: source page` : item.source),
    el("span", { class: "muted", text: ` (${item.key})` }),
  );
  $("size").textContent = item.width ? `${item.width} × ${item.height} px` : "—";
  $("description").textContent = item.description || "—";
  $("description-box").hidden = !item.description;
  $("mates-title").textContent = item.mates.length
    ? `Cluster mates (${item.mates.length}) — the same picture elsewhere`
    : "No cluster mates";
  $("mates").replaceChildren(...item.mates.map(mateCard));
  markButtons(item.decision, item.label, item.suggestion);
  // Preload the next image so → feels instant.
  const next = state.items[state.index + 1];
  if (next) new Image().src = next.image;
}

// A classifier's suggestion (acnedata review --suggestions): class, confidence, and whether it
// agrees with the current label. Only text is set: the file came from another program.
function showSuggestion(s, label) {
  const box = $("suggestion");
  $("suggestion-label").hidden = !s;
  box.hidden = !s;
  if (!s) return box.replaceChildren();
  const pct = `${(100 * s.confidence).toFixed(1)}%`;
  const notes = [];
  if (s.low_confidence) notes.push("low confidence");
  if (s.label !== label) notes.push(`differs from the label ${label || "none"}`);
  box.replaceChildren(
    el("strong", { class: "suggested-class", text: s.label }),
    ` ${pct}`,
    notes.length ? el("span", { class: "muted", text: ` — ${notes.join(", ")}` }) : "",
  );
  box.dataset.confidence = String(s.confidence);
}

function mateCard(m) {
  return el(
    "li",
    { class: "mate" },
    el(
      "a",
      { href: m.image, target: "_blank", rel: "noopener", "aria-label": `Open ${m.title || m.key} full size` },
      el("img", { src: m.thumb, alt: m.title || m.key, loading: "lazy" }),
    ),
    el(
      "div",
      { class: "mate-text" },
      el("strong", { text: m.title || m.key }),
      el("span", { class: "muted", text: `${m.source} · found for ${m.found_for.join(", ") || "—"}` }),
      link(m.page_url, "source page"),
    ),
  );
}

function markButtons(decision, provisional, suggestion) {
  for (const b of document.querySelectorAll("[data-decision]")) {
    b.setAttribute("aria-pressed", String(b.dataset.decision === decision));
    b.classList.toggle("provisional", b.dataset.decision === provisional && !decision);
    b.classList.toggle("suggested", Boolean(suggestion) && b.dataset.decision === suggestion.label);
  }
}

function nextUndecided(from) {
  const n = state.items.length;
  for (let step = 1; step <= n; step++) {
    const i = (from + step) % n;
    if (!state.items[i].decision) return i;
  }
  return -1;
}

function go(delta) {
  if (state.view === "sheet") return selectSheet(state.sheetIndex + delta);
  const n = state.items.length;
  if (!n) return;
  state.index = Math.min(n - 1, Math.max(0, state.index + delta));
  say("");
  renderItem();
}

function replaceItem(item) {
  const i = state.items.findIndex((x) => x.id === item.id);
  if (i >= 0) state.items[i] = item;
  return i;
}

// --- decisions -----------------------------------------------------------------------------
async function decide(decision) {
  if (state.busy) return;
  const target = state.view === "queue" ? state.items[state.index] : state.sheet[state.sheetIndex];
  if (!target) return say(state.view === "queue" ? "Nothing to decide." : "Select an image first.");
  state.busy = true;
  try {
    const { item } = await api("/api/decide", { id: target.id, decision });
    const title = item.title || item.key;
    replaceItem(item);
    if (state.view === "queue") {
      const next = nextUndecided(state.index);
      say(`${title}: ${describe(item.decision)}.`);
      if (next >= 0) state.index = next;
      else say(`${title}: ${describe(item.decision)}. Every item in the queue is decided.`);
      renderItem();
    } else {
      Object.assign(state.sheet[state.sheetIndex], { decision: item.decision, final_label: item.final_label });
      renderSheet();
      say(`${title}: ${describe(item.decision)}.`);
      selectSheet(Math.min(state.sheetIndex + 1, state.sheet.length - 1));
    }
  } catch (err) {
    say(`Not saved: ${err.message}`);
  } finally {
    state.busy = false;
  }
}

async function undo() {
  if (state.busy) return;
  state.busy = true;
  try {
    const { item } = await api("/api/undo", {});
    const i = replaceItem(item);
    say(`Undone: ${item.title || item.key} is ${describe(item.decision)} again.`);
    if (state.view === "queue") {
      if (i >= 0) state.index = i;
      renderItem();
    } else {
      const s = state.sheet.findIndex((x) => x.id === item.id);
      if (s >= 0) {
        Object.assign(state.sheet[s], { decision: item.decision, final_label: item.final_label });
        renderSheet();
        selectSheet(s);
      }
    }
  } catch (err) {
    say(err.message);
  } finally {
    state.busy = false;
  }
}

// --- contact sheets ------------------------------------------------------------------------
async function openSheet(name) {
  state.sheetClass = name;
  for (const b of $("sheet-classes").children) {
    b.setAttribute("aria-pressed", String(b.dataset.class === name));
  }
  try {
    const data = await api(`/api/sheet?class=${encodeURIComponent(name)}`);
    state.sheet = data.items;
    state.sheetIndex = -1;
    renderSheet();
    say("");
    progress();
  } catch (err) {
    say(err.message);
  }
}

function renderSheet() {
  const cards = state.sheet.map((s, i) => {
    const moved = s.final_label !== state.sheetClass;
    const note = moved ? (s.decision === "reject" || !s.final_label ? "rejected" : `→ ${s.final_label}`) : "";
    return el(
      "li",
      {},
      el(
        "button",
        {
          type: "button",
          class: "thumb" + (moved ? " moved" : ""),
          "data-item-id": s.id,
          "aria-pressed": String(i === state.sheetIndex),
          "aria-label": `${s.title || s.key}${note ? ", " + note : ""}`,
          title: `${s.title || s.key}\n${s.label_reason || ""}`,
          onclick: () => selectSheet(i),
        },
        el("img", { src: s.thumb, alt: "", loading: "lazy" }),
        el("span", { class: "thumb-text", text: note || s.title || s.key }),
      ),
    );
  });
  $("sheet").replaceChildren(...cards);
  if (!cards.length) $("sheet").append(el("li", { class: "empty", text: "No images in this class." }));
}

function selectSheet(i) {
  if (!state.sheet.length) return;
  state.sheetIndex = Math.min(state.sheet.length - 1, Math.max(0, i));
  const buttons = $("sheet").querySelectorAll("button.thumb");
  buttons.forEach((b, j) => b.setAttribute("aria-pressed", String(j === state.sheetIndex)));
  const current = buttons[state.sheetIndex];
  if (current) current.focus();
  const item = state.sheet[state.sheetIndex];
  markButtons(item.decision, item.final_label);
  progress();
}

// --- views and keys ------------------------------------------------------------------------
function show(view) {
  state.view = view;
  $("queue-view").hidden = view !== "queue";
  $("sheet-view").hidden = view !== "sheet";
  $("tab-queue").setAttribute("aria-selected", String(view === "queue"));
  $("tab-sheet").setAttribute("aria-selected", String(view === "sheet"));
  say("");
  if (view === "sheet") openSheet(state.sheetClass || state.classes[0].name);
  else renderItem();
}

function onKey(e) {
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  if (/^(INPUT|TEXTAREA|SELECT)$/.test(e.target.tagName)) return;
  const k = e.key;
  const cls = state.classes.find((c) => c.key === k);
  if (cls) decide(cls.name);
  else if (k === "x" || k === "X") decide("reject");
  else if (k === "u" || k === "U") undo();
  else if (k === "ArrowRight") go(1);
  else if (k === "ArrowLeft") go(-1);
  else return;
  e.preventDefault();
}

async function init() {
  const [{ classes }, queue] = await Promise.all([api("/api/classes"), api("/api/queue")]);
  state.classes = classes;
  state.items = queue.items;
  $("dataset").textContent = `— ${queue.name}`;
  document.title = `acnedata review — ${queue.name}`;
  $("class-buttons").replaceChildren(
    ...classes.map((c) =>
      el(
        "button",
        {
          type: "button",
          "data-decision": c.name,
          "aria-keyshortcuts": c.key,
          "aria-label": `Assign class ${c.name}${c.key ? ` (key ${c.key})` : ""}`,
          onclick: () => decide(c.name),
        },
        c.key ? el("kbd", { text: c.key }) : null,
        ` ${c.name}`,
      ),
    ),
  );
  $("sheet-classes").replaceChildren(
    ...classes.map((c) =>
      el("button", { type: "button", "data-class": c.name, onclick: () => openSheet(c.name) }, c.name),
    ),
  );
  $("btn-reject").addEventListener("click", () => decide("reject"));
  $("btn-undo").addEventListener("click", undo);
  $("btn-prev").addEventListener("click", () => go(-1));
  $("btn-next").addEventListener("click", () => go(1));
  $("tab-queue").addEventListener("click", () => show("queue"));
  $("tab-sheet").addEventListener("click", () => show("sheet"));
  document.addEventListener("keydown", onKey);
  const first = state.items.findIndex((i) => !i.decision);
  state.index = first >= 0 ? first : 0;
  renderItem();
  document.body.dataset.ready = "true"; // tests wait for this
}

init().catch((err) => {
  $("progress").textContent = `Could not load the review queue: ${err.message}`;
});
