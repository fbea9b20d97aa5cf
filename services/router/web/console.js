// Switchboard reference agent console: plain JS over the router's REST API, the agent's SSE feed and, for
// supervisors, the desk-wide SSE feed. Inbox rows come from GET /v1/desk/... (entrypoints/http/desk_views.py);
// a router without those routes still works, with the feed's channel and short id as the rows.
"use strict";

const state = {
  key: null, agent: null, agentName: "", supervisor: false, deskApi: true,
  offers: new Map(), mine: new Map(), rows: new Map(), unread: new Set(), waiting: [],
  open: null, conv: null, agents: [], queues: [], listGen: 0, feed: null, supFeed: null,
  slaRisks: new Map(), dismissed: new Set(),
};
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children.flat(Infinity)) {
    if (child == null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// -- the API: errors are RFC 9457 problems; people read their title and detail, never "409: …" ----------
class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}
const PLAIN = {
  401: "Your key is unknown, expired or revoked. Sign out and sign in again.",
  403: "Your key's role does not allow this.",
  404: "Not found: it may be gone, or belong to someone else.",
  409: "Not possible in the conversation's current state.",
  429: "Too many requests just now; try again in a moment.",
  503: "The desk is unavailable for a moment; try again.",
};
function problemText(status, body) {
  const detail = Array.isArray(body && body.detail)
    ? body.detail.map((d) => d.msg || String(d)).join("; ") : body && body.detail;
  const title = body && body.title;
  let text = detail || title || PLAIN[status] || "Something went wrong; try again.";
  if (detail && title && !/^(Not found|Conflict|Bad Request)$/i.test(title) && !detail.startsWith(title)) {
    text = `${title}: ${detail}`;
  }
  return text.charAt(0).toUpperCase() + text.slice(1);
}

async function api(method, path, body, key = state.key) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: { Authorization: `Bearer ${key}`, ...(body ? { "Content-Type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
  } catch (_) {
    throw new ApiError(0, "The desk cannot be reached; check your connection.");
  }
  if (!response.ok) {
    let problem = null;
    try { problem = await response.json(); } catch (_) { /* not JSON */ }
    throw new ApiError(response.status, problemText(response.status, problem));
  }
  if (response.status === 204) return null;
  try { return await response.json(); } catch (_) { return null; }
}

let toastTimer = null;
function toast(text) {
  $("toast").textContent = text;
  $("toast").hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { $("toast").hidden = true; }, 6000);
}

// -- formatting ------------------------------------------------------------------------------------------
function short(id) { return id ? id.slice(0, 8) : ""; }
function when(iso) { return iso ? new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : ""; }
function day(iso) { return iso ? new Date(iso).toLocaleDateString([], { day: "numeric", month: "short" }) : ""; }
function duration(s) {
  const a = Math.abs(Math.round(s));
  if (a < 60) return `${a}s`;
  if (a < 3600) return `${Math.floor(a / 60)}m ${String(a % 60).padStart(2, "0")}s`;
  if (a < 86400) return `${Math.floor(a / 3600)}h ${String(Math.floor((a % 3600) / 60)).padStart(2, "0")}m`;
  return `${Math.floor(a / 86400)}d ${Math.floor((a % 86400) / 3600)}h`;
}
function agentName(id) { const a = state.agents.find((x) => x.id === id); return a ? a.name : id; }
function queueName(id) { const q = state.queues.find((x) => x.id === id); return q ? q.name : id; }
// what a work item is when the desk views are not there: a conversation on a channel, a call, a callback
function label(item) {
  if (item.task === "callback") return `Call back ${item.phone || ""}`;
  if (item.task === "call") return `Call · ${short(item.conversation_id)}`;
  return `${item.channel} · ${short(item.conversation_id)}`;
}

// Deadlines count down on the client: remaining_s is read against the page's clock when it arrived, so a
// skewed client clock does not move them.
function stamp(row) {
  const now = Date.now();
  if (row.sla && row.sla.remaining_s != null && !row.sla.paused) row.sla.dueLocal = now + row.sla.remaining_s * 1000;
  if (row.waiting_s != null) row.waitingFromLocal = now - row.waiting_s * 1000;
  return row;
}
function slaChip(sla) {
  if (!sla) return null;
  const what = sla.kind.replace(/_/g, " ");
  if (sla.paused) return el("span", { class: "sla paused", title: `${what}: paused, waiting on the customer` }, "SLA paused");
  const left = (sla.dueLocal - Date.now()) / 1000;
  const stage = left <= 0 ? "breach" : sla.stage === "warning" || sla.stage === "breach" ? "warning" : "ok";
  const text = left <= 0 ? `SLA over by ${duration(left)}` : `SLA ${duration(left)}`;
  return el("span", { class: `sla ${stage}`, "data-due": sla.dueLocal, title: `${what} due ${when(sla.due_at)}` }, text);
}
function waitChip(row) {
  if (row.waitingFromLocal == null) return null;
  return el("span", { class: "wait", "data-from": row.waitingFromLocal }, `waiting ${duration((Date.now() - row.waitingFromLocal) / 1000)}`);
}
function tickClocks() {
  for (const node of document.querySelectorAll(".sla[data-due]")) {
    const left = (Number(node.dataset.due) - Date.now()) / 1000;
    node.textContent = left <= 0 ? `SLA over by ${duration(left)}` : `SLA ${duration(left)}`;
    if (left <= 0) node.className = "sla breach";
  }
  for (const node of document.querySelectorAll(".wait[data-from]")) {
    node.textContent = `waiting ${duration((Date.now() - Number(node.dataset.from)) / 1000)}`;
  }
}

// -- sign in ----------------------------------------------------------------------------------------------
$("load-agents").addEventListener("click", async () => {
  const key = $("key").value.trim();
  $("sign-in-error").textContent = "";
  try {
    const agents = await api("GET", "/v1/agents", null, key);
    const select = $("agent");
    select.replaceChildren(...agents.map((a) => el("option", { value: a.id }, `${a.name} (${a.presence})`)));
    select.disabled = false;
  } catch (e) {
    $("sign-in-error").textContent = `Could not load agents. ${e.message}`;
  }
});

$("sign-in-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const agent = $("agent").value;
  if (!agent) { $("sign-in-error").textContent = "Choose an agent."; return; }
  sessionStorage.setItem("switchboard.console", JSON.stringify({ key: $("key").value.trim(), agent }));
  start();
});

$("sign-out").addEventListener("click", () => {
  sessionStorage.removeItem("switchboard.console");
  location.hash = "";
  location.reload();
});

// -- presence ---------------------------------------------------------------------------------------------
$("presence-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    await api("PUT", `/v1/agents/${state.agent}/presence`, { presence: $("presence").value });
    $("who").textContent = `${state.agentName} · ${$("presence").value}`;
  } catch (e) { toast(`Presence not changed. ${e.message}`); }
});

// -- the conversation list: offers, mine, waiting ------------------------------------------------------------
function rowFor(id, fallback) { return state.rows.get(id) || fallback; }

function itemButton(row, fallback, onclick) {
  const id = row.conversation_id;
  const name = row.redacted ? "Customer (details hidden)"
    : "customer_name" in row ? row.customer_name || "Unnamed customer" : label(fallback || row);
  const preview = row.last_message
    ? `${row.last_message.direction === "outbound" ? "You: " : ""}${row.last_message.text || ""}` : null;
  const cls = ["item", state.open === id ? "open" : "", state.unread.has(id) ? "unread" : ""].join(" ").trim();
  const facts = [
    el("span", { class: "chan" }, row.channel || (fallback && fallback.channel) || ""),
    row.queue_name ? el("span", {}, row.queue_name) : null,
    waitChip(row), slaChip(row.sla), fallback && fallback.note ? el("span", { class: "sla warning" }, fallback.note) : null,
  ];
  const body = [el("span", { class: "name" }, name), el("span", { class: "meta" }, when(row.last_message_at || row.queued_at)),
    preview ? el("span", { class: "preview" }, preview) : null, el("span", { class: "facts" }, facts)];
  return onclick ? el("button", { type: "button", class: cls, onclick }, body) : el("div", { class: cls }, body);
}

function renderLists() {
  const offers = [...state.offers.values()];
  $("offers").replaceChildren(...offers.map((o) => el("li", { "data-conversation": o.conversation_id },
    itemButton(rowFor(o.conversation_id, o), o, null),
    el("div", { class: "item-actions" },
      el("span", { class: "meta" }, o.expires_at ? `until ${when(o.expires_at)}` : ""),
      el("button", { type: "button", onclick: () => decide(o, "accept") }, "Accept"),
      el("button", { type: "button", class: "secondary", onclick: () => decide(o, "decline") }, "Decline")),
  )));
  const mine = [...state.mine.values()];
  $("mine").replaceChildren(...mine.map((c) => el("li", { "data-conversation": c.conversation_id },
    itemButton(rowFor(c.conversation_id, c), c, () => openConversation(c.conversation_id)))));
  if (!mine.length) $("mine").append(el("li", { class: "empty-row" }, "Nothing assigned to you."));
  $("mine-count").textContent = mine.length ? `(${mine.length})` : "";
  renderWaiting();
}

function renderWaiting() {
  $("waiting").replaceChildren(...state.waiting.map((w) => el("li", { "data-conversation": w.conversation_id },
    itemButton(w, w, null),
    el("div", { class: "item-actions" },
      el("span", { class: "meta" }, `#${w.position}`),
      el("button", { type: "button", onclick: () => claim(w) }, "Claim")),
  )));
  if (!state.waiting.length) $("waiting").append(el("li", { class: "empty-row" }, "Nobody is waiting in this queue."));
  $("waiting-count").textContent = state.waiting.length ? `(${state.waiting.length})` : "";
}

async function decide(offer, verb) {
  try {
    await api("POST", `/v1/agents/${state.agent}/${verb}`, { conversation_id: offer.conversation_id });
  } catch (e) { toast(`Could not ${verb}. ${e.message}`); }
}

async function claim(row) {
  try {
    await api("POST", `/v1/agents/${state.agent}/claim`, { conversation_id: row.conversation_id });
    state.waiting = state.waiting.filter((w) => w.conversation_id !== row.conversation_id);
    renderWaiting();
    selectTab("mine");
    await refreshInbox();
    openConversation(row.conversation_id);
  } catch (e) { toast(`Could not claim. ${e.message}`); refreshWaiting(); }
}

function selectTab(which) {
  for (const name of ["mine", "waiting"]) {
    $(`tab-${name}`).setAttribute("aria-selected", String(name === which));
    $(`${name}-box`).hidden = name !== which;
  }
  if (which === "waiting") refreshWaiting();
}
$("tab-mine").addEventListener("click", () => selectTab("mine"));
$("tab-waiting").addEventListener("click", () => selectTab("waiting"));
$("waiting-queue").addEventListener("change", () => refreshWaiting());

// The desk view is the list's truth; the feed says when to read it again. A read started before a local
// change (listGen) is dropped, so a resolved conversation does not come back from a stale answer.
let inboxTimer = null;
function scheduleInbox() { clearTimeout(inboxTimer); inboxTimer = setTimeout(refreshInbox, 150); }
async function refreshInbox() {
  if (!state.deskApi) { renderLists(); return; }
  const gen = state.listGen;
  let page;
  try {
    page = await api("GET", `/v1/desk/agents/${encodeURIComponent(state.agent)}/conversations`);
  } catch (e) {
    if (e.status === 404 && !state.rows.size) state.deskApi = false;  // a router without the desk views
    renderLists();
    return;
  }
  if (gen !== state.listGen) return;
  state.rows = new Map(page.items.map((r) => [r.conversation_id, stamp(r)]));
  const offers = new Map(), mine = new Map();
  for (const r of page.items) {
    const known = state.offers.get(r.conversation_id) || state.mine.get(r.conversation_id) || {};
    (r.offered ? offers : mine).set(r.conversation_id, { ...known, ...r, expires_at: r.offer_expires_at || known.expires_at });
  }
  state.offers = offers;
  state.mine = mine;
  renderLists();
}

async function refreshWaiting() {
  const queue = $("waiting-queue").value;
  if (!queue) { state.waiting = []; renderWaiting(); return; }
  try {
    const page = state.deskApi
      ? await api("GET", `/v1/desk/queues/${encodeURIComponent(queue)}/waiting`)
      : await api("GET", `/v1/queues/${encodeURIComponent(queue)}/waiting`);
    if ($("waiting-queue").value !== queue) return;
    state.waiting = page.items.map(stamp);
  } catch (e) {
    if (e.status === 404 && state.deskApi) { state.deskApi = false; return refreshWaiting(); }
    state.waiting = [];
    $("waiting").replaceChildren(el("li", { class: "empty-row" }, e.message));
    return;
  }
  renderWaiting();
}

function onFeed(type, data) {
  const id = data.conversation_id;
  if (type === "offer" || type === "assignment" || type === "unassignment") refreshLoad();
  if (type === "offer") state.offers.set(id, data);
  else if (type === "assignment") { state.offers.delete(id); state.mine.set(id, { ...state.mine.get(id), ...data }); }
  else if (type === "unassignment") {
    state.offers.delete(id); state.mine.delete(id); state.unread.delete(id);
    state.listGen++;
    // a resolve's own answer and its feed event race: either order ends on "Resolved…", read-only
    if (state.open === id) {
      if (data.reason === "resolved") {
        if (!$("conv-status").textContent.startsWith("Resolved")) $("conv-status").textContent = "Resolved.";
        setReadOnly("This conversation is resolved. It reopens if the customer writes again.", "resolved");
      } else {
        $("conv-status").textContent = `No longer yours (${data.reason.replace(/_/g, " ")}).`;
        setReadOnly("This conversation is no longer yours.", data.reason);
      }
    }
  } else if (type === "message") {
    if (state.open === id) loadTimeline(); else state.unread.add(id);
  } else if (type === "presence" && data.agent === state.agent) {
    // routing may change it too: say why, so an agent set away knows what to do
    const why = { missed_offer: " — an offer ran out unanswered; set yourself online to get work again",
      disconnected: " — your console lost its connection", supervisor: " — set by a supervisor" }[data.reason] || "";
    $("who").textContent = `${state.agentName} · ${data.presence}${why}`;
    $("presence").value = data.presence;
  } else if (type.startsWith("sla.")) {
    const mine = state.mine.get(id);
    if (mine) mine.note = `SLA ${data.stage}: ${data.kind.replace(/_/g, " ")}`;
  }
  renderLists();
  scheduleInbox();
  if (!$("waiting-box").hidden) refreshWaiting();
}

function connectFeed() {
  // EventSource reconnects by itself and sends Last-Event-ID: the router replays exactly what was missed.
  const feed = new EventSource(`/v1/agents/${encodeURIComponent(state.agent)}/feed?access_token=${encodeURIComponent(state.key)}`);
  for (const type of ["offer", "assignment", "unassignment", "message", "sla.warning", "sla.breach", "presence"]) {
    feed.addEventListener(type, (e) => onFeed(type, JSON.parse(e.data)));
  }
  feed.onopen = () => document.body.setAttribute("data-feed", "open");
  state.feed = feed;
}

// -- one conversation ---------------------------------------------------------------------------------------
function showConversationPane(open) {
  $("conv-empty").hidden = open;
  $("conv-body").hidden = !open;
  document.querySelector(".inbox").classList.toggle("reading", open);
}
$("conv-back").addEventListener("click", () => { showConversationPane(false); state.open = null; renderLists(); });

// A conversation is writable only while it is open and this agent holds it; otherwise the console shows it
// read-only (the forms disabled and folded away) and says why.
function setReadOnly(note, badge) {
  $("actions").disabled = !!note;
  $("actions").hidden = !!note;
  $("readonly-note").hidden = !note;
  $("readonly-note").textContent = note || "";
  if (badge) {
    $("conv-state").textContent = badge.replace(/_/g, " ");
    $("conv-state").className = `badge ${badge === "open" ? "" : "resolved"}`;
  }
}

async function openConversation(id) {
  state.open = id;
  state.unread.delete(id);
  renderLists();
  showConversationPane(true);
  $("conv-status").textContent = "";
  $("timeline").replaceChildren();
  let conv, customer;
  try {
    conv = await api("GET", `/v1/conversations/${id}`);
    customer = await api("GET", `/v1/customers/${conv.customer_id}`);
  } catch (e) {
    setReadOnly("This conversation cannot be shown.", null);
    $("conv-status").textContent = e.message;
    return;
  }
  if (state.open !== id) return;
  state.conv = conv;
  state.customer = customer;
  $("conv-title").textContent = `${customer.name || "Unnamed customer"} · ${conv.channel}`;
  const mineNow = conv.status === "open" && conv.agent_id === state.agent;
  if (conv.status !== "open") setReadOnly("This conversation is resolved. It reopens if the customer writes again.", conv.status);
  else if (!mineNow) setReadOnly(conv.agent_id ? `${agentName(conv.agent_id)} holds this conversation.` : "This conversation is waiting in a queue.", "open");
  else setReadOnly(null, "open");
  renderProfile(customer, conv);
  const channels = new Set((customer.identities || []).map((i) => KIND_CHANNEL[i.kind]).filter(Boolean));
  $("reply-channel").replaceChildren(el("option", { value: "" }, `Where they last wrote (${conv.channel})`),
    ...[...channels].map((c) => el("option", { value: c }, c)));
  $("transfer-to").replaceChildren(
    ...state.agents.filter((a) => a.id !== state.agent).map((a) => el("option", { value: `agent:${a.id}` }, `Agent: ${a.name}`)),
    ...state.queues.map((q) => el("option", { value: `queue:${q.id}` }, `Queue: ${q.name}`)),
  );
  await loadTimeline();
}

const KIND_CHANNEL = { email: "email", phone: "sms", chat_visitor: "chat", messenger_psid: "messenger",
  instagram_id: "instagram", telegram_id: "telegram" };

// WhatsApp's 24-hour customer service window: how long free text can still go, or that only a template can.
function whatsappWindow(closesAt, now = Date.now()) {
  if (!closesAt) return null;
  const left = new Date(closesAt).getTime() - now;
  if (!(left > 0)) return "Closed: only an approved template can be sent";
  const minutes = Math.floor(left / 60000);
  return minutes >= 60 ? `${Math.floor(minutes / 60)} h ${minutes % 60} min left` : `${minutes} min left`;
}

function renderProfile(customer, conv) {
  const facts = [
    ["Tier", customer.tier], ["Email", customer.email], ["Phone", customer.phone], ["Language", customer.language],
    ["Owner", customer.owner_agent_id ? agentName(customer.owner_agent_id) : "None"],
    ["Tags", (customer.tags || []).join(", ")],
    ["Customer since", day(customer.created_at)],
    ["WhatsApp window", whatsappWindow(conv.whatsapp_window_closes_at)],
    ...Object.entries(customer.attributes || {}).slice(0, 6),
  ].filter(([, v]) => v != null && v !== "");
  $("profile").replaceChildren(...[
    el("p", { class: "big" }, customer.name || "Unnamed customer"),
    el("dl", {}, facts.map(([k, v]) => [el("dt", {}, k), el("dd", {}, String(v))])),
    (customer.suggestions || []).length
      ? el("p", { class: "meta" }, `Possibly the same person as ${customer.suggestions.length} other customer(s).`) : null,
  ].filter(Boolean));
  const others = (customer.conversations || []).filter((c) => c.id !== conv.id);
  $("history").replaceChildren(...others.map((c) => el("li", {},
    el("button", { type: "button", class: "item", onclick: () => openConversation(c.id) },
      el("span", { class: "name" }, `${c.channel} · ${day(c.opened_at)}`),
      el("span", { class: "meta" }, c.status),
      el("span", { class: "facts" }, c.agent_id ? `with ${agentName(c.agent_id)}` : "no agent")))));
  if (!others.length) $("history").append(el("li", { class: "empty-row" }, "None."));
}

async function loadTimeline() {
  if (!state.conv) return;
  const conv = state.conv;
  let page;
  try { page = await api("GET", `/v1/customers/${conv.customer_id}/timeline?limit=100`); }
  catch (e) { $("conv-status").textContent = e.message; return; }
  const name = (state.customer && state.customer.name) || "Customer";
  const items = page.items.slice().reverse();
  $("timeline").replaceChildren(...items.map((item) => {
    if (item.kind === "message") {
      return el("li", { class: `msg ${item.direction}` },
        el("span", { class: "who" }, item.direction === "inbound" ? name : "Agent", " · ",
          el("span", { class: "chan" }, item.channel), " ", when(item.at)),
        item.text);
    }
    return el("li", { class: "event" + (item.kind.startsWith("sla") ? " sla-event" : "") },
      `${when(item.at)} · ${item.kind.replace(/_/g, " ")}`);
  }));
  $("timeline").scrollTop = $("timeline").scrollHeight;
}

$("reply-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = $("reply-text").value.trim();
  if (!text || !state.open || $("actions").disabled) return;
  try {
    const body = { text, pending: $("reply-pending").checked };
    if ($("reply-channel").value) body.channel = $("reply-channel").value;
    await api("POST", `/v1/conversations/${state.open}/reply`, body);
    $("reply-text").value = "";
    $("conv-status").textContent = "Reply sent.";
    await loadTimeline();
    scheduleInbox();
  } catch (e) { $("conv-status").textContent = `Not sent. ${e.message}`; }
});

$("resolve-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!state.open || $("actions").disabled) return;
  const id = state.open;
  try {
    await api("POST", `/v1/conversations/${id}/resolve`, { note: $("resolve-note").value || null });
    $("resolve-note").value = "";
    $("conv-status").textContent = "Resolved. The customer was asked for feedback.";
    setReadOnly("This conversation is resolved. It reopens if the customer writes again.", "resolved");
    state.mine.delete(id);
    state.listGen++;
    renderLists();
    await loadTimeline();
  } catch (e) { $("conv-status").textContent = `Not resolved. ${e.message}`; }
});

$("transfer-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!state.open || $("actions").disabled) return;
  const [kind, id] = $("transfer-to").value.split(/:(.*)/s);
  try {
    await api("POST", `/v1/conversations/${state.open}/transfer`, kind === "agent" ? { agent_id: id } : { queue_id: id });
    $("conv-status").textContent = "Transferred.";
    setReadOnly(`Transferred to ${kind === "agent" ? agentName(id) : queueName(id)}.`, "open");
    scheduleInbox();
  } catch (e) { $("conv-status").textContent = `Not transferred. ${e.message}`; }
});

// -- load and the desk's queues --------------------------------------------------------------------------------
async function refreshLoad() {
  // what the agent holds now, in the units of their routing profile (or conversations without one)
  try {
    const load = (await api("GET", `/v1/agents/${state.agent}`)).load;
    $("load").textContent = load.capacity_units == null
      ? `Load: ${load.units} conversations`
      : `Load: ${load.units} of ${load.capacity_units} units`;
  } catch (_) { /* shown again at the next refresh */ }
}

async function refreshQueues() {
  let stats;
  try { stats = await api("GET", "/v1/stats/queues"); } catch (_) { return; }
  const cells = (q) => [el("td", { class: "num" }, q.waiting), el("td", { class: "num" }, duration(q.longest_wait_s))];
  $("queues").tBodies[0].replaceChildren(...stats.items.map((q) => el("tr", {},
    el("th", { scope: "row" }, q.name), cells(q),
    el("td", { class: "num" }, q.agents_online), el("td", { class: "num" }, q.agents_available),
    el("td", { class: "num" }, q.expected_wait_s == null ? "–" : duration(q.expected_wait_s)))));
  $("sup-queues").tBodies[0].replaceChildren(...stats.items.map((q) => el("tr", { class: q.waiting ? "warn-row" : null },
    el("th", { scope: "row" }, q.name), cells(q), el("td", { class: "num" }, `${q.agents_available} / ${q.agents_online}`))));
  // the waiting picker shows each of the agent's queues with its count
  const select = $("waiting-queue");
  for (const option of select.options) {
    const q = stats.items.find((s) => s.queue_id === option.value);
    if (q) option.textContent = `${queueName(option.value)} (${q.waiting})`;
  }
  if (!state.supervisor) return;
  try {
    const k = (await api("GET", "/v1/stats/kpis")).items[0];
    $("kpis").textContent = k ? `Last 7 days: ${k.conversations} conversations · CSAT ${k.csat_avg ?? "–"}` +
      ` (${k.csat_response_rate == null ? "–" : Math.round(100 * k.csat_response_rate) + "%"} answered)` : "";
  } catch (_) { /* supervisors only */ }
}

// -- the supervisor screen --------------------------------------------------------------------------------------
async function refreshSupervisor() {
  if (!state.supervisor) return;
  refreshQueues();
  try {
    const [agents, risks] = await Promise.all([api("GET", "/v1/stats/agents"), state.deskApi ? api("GET", "/v1/desk/sla") : { items: [] }]);
    $("sup-agents").tBodies[0].replaceChildren(...agents.items.map((a) => {
      const held = Object.values(a.load || {}).reduce((n, x) => n + x, 0);
      const capacity = (state.agents.find((x) => x.id === a.agent_id) || {}).capacity || {};
      const room = Math.max(1, capacity.default || 3);
      return el("tr", { "data-agent": a.agent_id },
        el("th", { scope: "row" }, a.name),
        el("td", {}, el("span", { class: `presence ${a.presence}` }), a.presence),
        el("td", {}, el("span", { class: "bar-meter", "aria-hidden": "true" }, el("span", { style: `width:${Math.min(100, 100 * held / room)}%` })),
          held ? Object.entries(a.load).map(([c, n]) => `${n} ${c}`).join(", ") : "idle"),
        el("td", { class: "num" }, a.handled));
    }));
    state.slaRisks = new Map(risks.items.map((r) => [`${r.conversation_id}:${r.kind}`, stamp({ ...r, sla: { ...r, paused: false } })]));
    renderRisks();
  } catch (e) { toast(e.message); }
  refreshSuggestions();
}

function renderRisks() {
  const rows = [...state.slaRisks.values()].sort((a, b) => (a.sla.dueLocal || 0) - (b.sla.dueLocal || 0));
  $("sup-sla").replaceChildren(...rows.map((r) => el("li", { "data-conversation": r.conversation_id },
    el("div", { class: "item" },
      el("span", { class: "name" }, r.customer_name || `Conversation ${short(r.conversation_id)}`),
      el("span", { class: "meta" }, r.kind.replace(/_/g, " ")),
      el("span", { class: "facts" }, el("span", { class: "chan" }, r.channel || ""),
        r.queue_id ? el("span", {}, queueName(r.queue_id)) : null,
        el("span", {}, r.agent_id ? `with ${agentName(r.agent_id)}` : "unassigned"), slaChip(r.sla))))));
  if (!rows.length) $("sup-sla").append(el("li", { class: "empty-row" }, "No SLA at risk."));
}

function onSupervisorFeed(type, data) {
  const key = `${data.conversation_id}:${data.kind}`;
  const known = state.slaRisks.get(key) || {};
  const remaining = data.due_at ? (new Date(data.due_at) - Date.now()) / 1000 : 0;
  state.slaRisks.set(key, stamp({ ...known, conversation_id: data.conversation_id, kind: data.kind, queue_id: data.queue_id,
    sla: { kind: data.kind, stage: data.stage, due_at: data.due_at, remaining_s: remaining, paused: false } }));
  renderRisks();
  scheduleSupervisor();  // names, agents and stopped timers come from the next read
}
let supTimer = null;
function scheduleSupervisor() { clearTimeout(supTimer); supTimer = setTimeout(refreshSupervisor, 500); }

function connectSupervisorFeed() {
  const feed = new EventSource(`/v1/supervisors/feed?access_token=${encodeURIComponent(state.key)}`);
  for (const type of ["sla.warning", "sla.breach"]) feed.addEventListener(type, (e) => onSupervisorFeed(type, JSON.parse(e.data)));
  feed.onopen = () => { $("sla-live").classList.add("on"); document.body.setAttribute("data-supervisor-feed", "open"); };
  feed.onerror = () => $("sla-live").classList.remove("on");
  state.supFeed = feed;
}

// Dismissed suggestions are remembered in this browser only: the API has no dismissal yet.
function dismissedKey() { return `switchboard.console.dismissed.${state.key.slice(0, 12)}`; }
function pairKey(item) { return item.customers.map((c) => c.id).sort().join("+"); }

async function refreshSuggestions() {
  if (!state.deskApi) { $("sup-dupes").replaceChildren(el("li", { class: "empty-row" }, "Suggestions need the desk views.")); return; }
  let page;
  try { page = await api("GET", "/v1/desk/suggestions"); } catch (e) { $("dupes-status").textContent = e.message; return; }
  const items = page.items.filter((i) => !state.dismissed.has(pairKey(i)));
  $("sup-dupes").replaceChildren(...items.map((item) => {
    const [a, b] = item.customers;
    const who = (c) => el("div", { class: "who" }, el("strong", {}, c.name || "Unnamed customer"),
      [c.email, c.phone].filter(Boolean).join(" · ") || "no email or phone",
      el("br"), el("span", { class: "meta" }, `${c.identities} identities · ${c.open_conversations} open · since ${day(c.created_at)}`));
    return el("li", { "data-pair": pairKey(item) },
      el("p", { class: "meta" }, `Both claim ${item.shared.map((s) => `${s.kind} ${s.value}`).join(", ")} (unverified)`),
      el("div", { class: "pair" }, who(a), who(b)),
      el("div", { class: "item-actions" },
        // the older customer survives (the API lists them oldest first)
        el("button", { type: "button", onclick: () => merge(a, b) }, `Merge into ${a.name || "the first"}`),
        el("button", { type: "button", class: "secondary", onclick: () => dismiss(item) }, "Dismiss")));
  }));
  if (!items.length) $("sup-dupes").append(el("li", { class: "empty-row" }, "No possible duplicates."));
}

async function merge(survivor, merged) {
  if (!confirm(`Merge ${merged.name || "this customer"} into ${survivor.name || "the other"}? It can be undone (unmerge).`)) return;
  try {
    await api("POST", `/v1/customers/${survivor.id}/merge`, { customer_id: merged.id });
    $("dupes-status").textContent = `Merged ${merged.name || "the customer"} into ${survivor.name || "the other"}.`;
  } catch (e) { $("dupes-status").textContent = `Not merged. ${e.message}`; }
  refreshSuggestions();
}

function dismiss(item) {
  state.dismissed.add(pairKey(item));
  localStorage.setItem(dismissedKey(), JSON.stringify([...state.dismissed]));
  $("dupes-status").textContent = "Dismissed in this browser.";
  refreshSuggestions();
}

// -- the simulations screen: what if (POST /v1/simulations, then GET /v1/simulations/{id} until done) ----------
// The shipped example (docs/examples/simulation/), so a supervisor can run one at once and edit from there.
const SIM_DESK = `{
  "timezone": "Europe/Paris",
  "profiles": [{"id": "chat", "name": "Chat", "capacity": 2, "weights": {"default": 1, "email": 1}}],
  "queues": [
    {"id": "billing", "name": "Billing", "channels": ["chat"],
     "routing": {"rule": {"attr": "tags", "has": "billing"}, "sla": {"first_response_s": {"chat": 60}}}},
    {"id": "care", "name": "Care", "is_default": true,
     "routing": {"sla": {"first_response_s": {"chat": 120, "email": 3600}}}}
  ],
  "agents": [
    {"id": "billing", "name": "Billing team", "count": 2, "queue_ids": ["billing"], "profile_id": "chat",
     "shifts": ["08:00-18:00"]},
    {"id": "care", "name": "Care team", "count": 4, "queue_ids": ["care"], "profile_id": "chat",
     "shifts": ["07:00-20:00"]}
  ]
}`;
const SIM_EXAMPLE = {
  desk: SIM_DESK,
  // the same desk but for what the proposal changes: Billing overflows to Care after a minute; Care has a fifth agent
  proposal: SIM_DESK
    .replace('"sla": {"first_response_s": {"chat": 60}}}},',
      '"sla": {"first_response_s": {"chat": 60}},\n                 "overflow_after_s": 60, "overflow_to": "care"}},')
    .replace('"name": "Care team", "count": 4,', '"name": "Care team", "count": 5,'),
  traffic: `{
  "start": "2026-01-05T00:00:00+01:00",
  "hours": 24,
  "streams": [
    {"channel": "chat", "tags": ["billing"],
     "per_hour": [0, 0, 0, 0, 0, 0, 0, 0, 10, 20, 28, 30, 26, 22, 26, 28, 22, 14, 6, 0, 0, 0, 0, 0],
     "handle": {"distribution": "lognormal", "mean_s": 420, "sd_s": 300},
     "patience": {"distribution": "exponential", "mean_s": 600}},
    {"channel": "chat",
     "per_hour": [0, 0, 0, 0, 0, 0, 0, 6, 24, 40, 50, 48, 40, 36, 44, 48, 40, 30, 18, 10, 0, 0, 0, 0],
     "handle": {"distribution": "lognormal", "mean_s": 360, "sd_s": 240},
     "patience": {"distribution": "exponential", "mean_s": 600}},
    {"channel": "email",
     "per_hour": [0, 0, 0, 0, 0, 0, 0, 2, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 2, 0, 0, 0, 0, 0],
     "handle": 600}
  ]
}`,
};
const SIM_FILES = ["desk", "proposal", "traffic"];
// The figures compared per queue, and which way is better: SLA up, waits and abandonment down. Occupancy is
// shown without a verdict: busier agents are cheaper and more tired.
const SIM_FIGURES = [
  { key: "sla_attainment", label: "SLA attainment", kind: "share", better: 1 },
  { key: "wait_p50_s", label: "Wait p50", kind: "seconds", better: -1 },
  { key: "wait_p90_s", label: "Wait p90", kind: "seconds", better: -1 },
  { key: "abandonment_rate", label: "Abandonment", kind: "share", better: -1 },
  { key: "occupancy", label: "Occupancy", kind: "share", better: 0 },
];
const sim = { gen: 0, inputs: null, report: null, started: false };

function percent(x) { return x == null ? "–" : `${(100 * x).toFixed(1)}%`; }
function simValue(x, kind) { return x == null ? "–" : kind === "share" ? percent(x) : duration(x); }
function simDifference(d, kind) {
  if (d == null) return "–";
  const sign = d > 0 ? "+" : d < 0 ? "−" : "±";
  return kind === "share" ? `${sign}${Math.abs(100 * d).toFixed(1)} pts` : `${sign}${duration(d)}`;
}

function showSimulations() {
  if (!sim.started) { sim.started = true; resetSimulation(); }
  if (sim.report) drawSimChart();  // drawn at the screen's width, which is 0 while it is hidden
}

function resetSimulation() {
  for (const name of SIM_FILES) { $(`sim-${name}`).value = SIM_EXAMPLE[name]; $(`sim-${name}`).removeAttribute("aria-invalid"); }
  $("sim-seed").value = "1";
  $("sim-error").textContent = "";
}
$("sim-reset").addEventListener("click", resetSimulation);

// The request body from the three text areas; a text that is not JSON is named before anything is sent.
function simulationBody() {
  const body = { seed: Number($("sim-seed").value || 1) };
  for (const name of SIM_FILES) {
    const area = $(`sim-${name}`);
    area.removeAttribute("aria-invalid");
    const text = area.value.trim();
    if (!text && name === "proposal") continue;
    let value;
    try { value = JSON.parse(text); } catch (e) {
      area.setAttribute("aria-invalid", "true");
      throw new ApiError(0, `The ${name} is not valid JSON: ${text ? e.message : "it is empty"}.`);
    }
    body[name] = value;
  }
  if (!Number.isInteger(body.seed)) throw new ApiError(0, "The seed is a whole number.");
  return body;
}

// A 422 names the field first ("desk: agents[0].queue_ids: …", or "body.traffic: …"): mark that text area.
function markRefusedInput(message) {
  const found = /(?:^|[\s.])(desk|proposal|traffic)[:.[]/.exec(message);
  if (!found) return;
  $(`sim-${found[1]}`).setAttribute("aria-invalid", "true");
}

$("sim-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const gen = ++sim.gen;
  $("sim-error").textContent = "";
  $("sim-status").textContent = "";
  let body;
  try { body = simulationBody(); } catch (e) { $("sim-error").textContent = e.message; return; }
  $("sim-run").disabled = true;
  $("sim-results").hidden = true;  // the last run's figures are not this one's
  sim.report = null;
  const began = Date.now();  // the page's clock, not the server's created_at: a skewed clock would show here
  try {
    const run = await api("POST", "/v1/simulations", body);
    $("sim-status").textContent = "Queued…";
    const done = await pollSimulation(run.id, gen, began);
    if (!done || gen !== sim.gen) return;
    if (done.status === "failed") { $("sim-error").textContent = `The run failed. ${done.error || ""}`.trim(); $("sim-status").textContent = ""; return; }
    sim.inputs = body;
    sim.report = done.report;
    $("sim-status").textContent = `Done in ${duration((Date.now() - began) / 1000)}.`;
    renderSimulation();
  } catch (e) {
    if (gen !== sim.gen) return;
    markRefusedInput(e.message);
    $("sim-error").textContent = `The simulation did not run. ${e.message}`;
    $("sim-status").textContent = "";
  } finally {
    if (gen === sim.gen) $("sim-run").disabled = false;
  }
});

// Polls quickly at first (the example takes well under a second), then every 2 s; a network blip is retried.
async function pollSimulation(id, gen, since) {
  let wait = 300, blips = 0;
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, wait));
    if (gen !== sim.gen) return null;
    let run;
    try { run = await api("GET", `/v1/simulations/${encodeURIComponent(id)}`); } catch (e) {
      if (e.status === 0 && ++blips < 5) continue;
      if (e.status === 404) throw new ApiError(404, "The run is gone: the router restarted, or another replica answered. Run it again.");
      throw e;
    }
    if (run.status === "done" || run.status === "failed") return run;
    const label = run.status === "running" ? "Running" : "Queued behind other runs";
    $("sim-status").textContent = `${label}… ${duration((Date.now() - since) / 1000)}`;
    wait = Math.min(2000, wait * 1.5);
  }
}

// Queues carry no occupancy: it is their agents'. Each agent of the lines serving the queue (ids `<line>` or
// `<line>-<n>`, docs/simulation.md), weighted by their hours at work.
function queueOccupancy(report, desk, queueId) {
  const lines = ((desk && desk.agents) || []).filter((a) => (a.queue_ids || []).includes(queueId)).map((a) => String(a.id));
  let held = 0, hours = 0;
  for (const [id, agent] of Object.entries(report.agents || {})) {
    const ofLine = lines.some((line) => id === line || (id.startsWith(`${line}-`) && /^\d+$/.test(id.slice(line.length + 1))));
    if (!ofLine || agent.occupancy == null || !agent.at_work_h) continue;
    held += agent.occupancy * agent.at_work_h;
    hours += agent.at_work_h;
  }
  return hours ? held / hours : null;
}

function simScopes() {
  const { baseline, proposal } = sim.report;
  const names = new Map();
  for (const desk of [sim.inputs.desk, sim.inputs.proposal]) {
    for (const q of (desk && desk.queues) || []) if (!names.has(q.id)) names.set(q.id, q.name || q.id);
  }
  const ids = [...new Set([...Object.keys(baseline.queues || {}), ...Object.keys((proposal && proposal.queues) || {})])];
  return [
    { id: "", name: "All queues", figures: (r) => r.total, hours: (r) => r.hours || [] },
    ...ids.map((id) => ({
      id, name: names.get(id) || id,
      figures: (r, desk) => r.queues && r.queues[id] ? { ...r.queues[id], occupancy: queueOccupancy(r, desk, id) } : null,
      hours: (r) => (r.queue_hours && r.queue_hours[id]) || [],
    })),
  ];
}

function renderSimulation() {
  const { baseline, proposal } = sim.report;
  const scopes = simScopes();
  const total = baseline.total;
  const unrouted = baseline.unrouted ? ` ${baseline.unrouted} conversation(s) matched no queue.` : "";
  $("sim-summary").textContent = `${total.arrived} conversations over ${baseline.window.hours} h.` + (proposal
    ? ` All queues: SLA attainment ${percent(total.sla_attainment)} now, ${percent(proposal.total.sla_attainment)} with the proposal.`
    : " No proposal: the desk alone.") + unrouted;
  $("sim-queues").replaceChildren(...scopes.map((scope) => simCard(scope, baseline, proposal)));
  const picked = $("sim-scope").value;
  $("sim-scope").replaceChildren(...scopes.map((s) => el("option", { value: s.id }, s.name)));
  if (scopes.some((s) => s.id === picked)) $("sim-scope").value = picked;
  $("sim-results").hidden = false;
  drawSimChart();
}

function simCard(scope, baseline, proposal) {
  const a = scope.figures(baseline, sim.inputs.desk) || {};
  const b = proposal ? scope.figures(proposal, sim.inputs.proposal) || {} : null;
  const rows = SIM_FIGURES.map((f) => {
    const cells = [el("th", { scope: "row" }, f.label), el("td", { class: "num" }, simValue(a[f.key], f.kind))];
    if (b) {
      const d = a[f.key] == null || b[f.key] == null ? null : Math.round((b[f.key] - a[f.key]) * 1e4) / 1e4;
      // a change too small to show in the figures' own precision is no change
      const shown = d == null || Math.abs(d) < (f.kind === "share" ? 0.0005 : 0.5) ? 0 : Math.sign(d) * f.better;
      const verdict = d == null ? "" : shown > 0 ? "better" : shown < 0 ? "worse" : "same";
      cells.push(el("td", { class: "num" }, simValue(b[f.key], f.kind)),
        el("td", { class: `num diff ${verdict}`, "data-figure": f.key },
          simDifference(d, f.kind), verdict === "better" || verdict === "worse" ? el("span", { class: "visually-hidden" }, ` (${verdict})`) : null));
    }
    return el("tr", { "data-figure": f.key }, cells);
  });
  const arrived = a.arrived == null ? "" : `${a.arrived} conversations`;
  return el("section", { class: "sim-card", "data-scope": scope.id || "total", "aria-label": scope.name },
    el("h3", {}, scope.name, " ", el("span", { class: "meta" }, arrived)),
    el("div", { class: "scroll" }, el("table", {},
      el("thead", {}, el("tr", {}, el("th", { scope: "col" }, el("span", { class: "visually-hidden" }, "Figure")),
        el("th", { scope: "col" }, "Baseline"), b ? [el("th", { scope: "col" }, "Proposal"), el("th", { scope: "col" }, "Change")] : null)),
      el("tbody", {}, rows))));
}

function hourLabel(at, timeZone) {
  const options = { hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
  try { return new Date(at).toLocaleTimeString([], { ...options, timeZone: timeZone || "UTC" }); }
  catch (_) { return new Date(at).toLocaleTimeString([], { ...options, timeZone: "UTC" }); }  // an unknown zone
}

// A line per run over the hours of the window, in inline SVG drawn at the screen's width; an hour without
// arrivals (no figure) breaks the line.
const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

function drawSimChart() {
  const box = $("sim-chart");
  if (!sim.report || $("simulations").hidden) return;
  const { baseline, proposal } = sim.report;
  const scope = simScopes().find((s) => s.id === $("sim-scope").value) || simScopes()[0];
  const metric = SIM_FIGURES.find((f) => f.key === $("sim-metric").value);
  const runs = [{ name: "Baseline", cls: "baseline", hours: scope.hours(baseline) }];
  if (proposal) runs.push({ name: "Proposal", cls: "proposal", hours: scope.hours(proposal) });
  const n = Math.max(...runs.map((r) => r.hours.length), 1);
  const values = runs.flatMap((r) => r.hours.map((h) => h[metric.key])).filter((v) => v != null);
  const top = metric.kind === "share" ? (metric.key === "sla_attainment" ? 1 : Math.max(0.05, Math.ceil(20 * Math.max(0, ...values)) / 20))
    : Math.max(60, Math.ceil(Math.max(0, ...values) / 60) * 60);
  const width = Math.max(280, box.clientWidth), height = width < 500 ? 200 : 240;
  const pad = { left: 52, right: 10, top: 10, bottom: 26 };
  const x = (i) => pad.left + (i + 0.5) * (width - pad.left - pad.right) / n;
  const y = (v) => pad.top + (1 - v / top) * (height - pad.top - pad.bottom);
  const zone = sim.inputs.desk && sim.inputs.desk.timezone;
  const at = (i) => (baseline.hours[i] || {}).at;
  const chart = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": `${metric.label} per hour, ${scope.name}: ${runs.map((r) => r.name.toLowerCase()).join(" and ")}` });
  for (let k = 0; k <= 4; k++) {
    const v = top * k / 4;
    chart.append(svg("line", { class: "grid", x1: pad.left, x2: width - pad.right, y1: y(v), y2: y(v) }),
      svg("text", { class: "tick", x: pad.left - 6, y: y(v) + 4, "text-anchor": "end" }, simValue(v, metric.kind).replace(".0%", "%")));
  }
  const every = width < 500 ? 6 : 3;
  for (let i = 0; i < n; i += every) {
    if (at(i)) chart.append(svg("text", { class: "tick", x: x(i), y: height - 8, "text-anchor": "middle" }, hourLabel(at(i), zone)));
  }
  for (const run of runs) {
    let d = "", pen = "M";
    const dots = [];
    run.hours.forEach((h, i) => {
      const v = h[metric.key];
      if (v == null) { pen = "M"; return; }
      d += `${pen}${x(i).toFixed(1)},${y(Math.min(v, top)).toFixed(1)} `;
      pen = "L";
      dots.push(svg("circle", { class: run.cls, cx: x(i).toFixed(1), cy: y(Math.min(v, top)).toFixed(1), r: 3 },
        svg("title", {}, `${at(i) ? hourLabel(at(i), zone) : `hour ${i}`} · ${run.name}: ${simValue(v, metric.kind)}`)));
    });
    chart.append(svg("path", { class: `line ${run.cls}`, d: d.trim() || "M0,0" }), ...dots);
  }
  box.replaceChildren(chart);
  $("sim-legend").replaceChildren(...runs.map((r) => el("span", { class: `key ${r.cls}` }, r.name)));
}
$("sim-metric").addEventListener("change", drawSimChart);
$("sim-scope").addEventListener("change", drawSimChart);
let simResize = null;
window.addEventListener("resize", () => { clearTimeout(simResize); simResize = setTimeout(drawSimChart, 150); });

// -- screens --------------------------------------------------------------------------------------------------
function route() {
  const wanted = location.hash.slice(1);
  const screen = state.supervisor && ["supervisor", "simulations"].includes(wanted) ? wanted : "inbox";
  $("desk").hidden = screen !== "inbox";
  $("supervisor").hidden = screen !== "supervisor";
  $("simulations").hidden = screen !== "simulations";
  for (const name of ["inbox", "supervisor", "simulations"]) {
    if (name === screen) $(`nav-${name}`).setAttribute("aria-current", "page");
    else $(`nav-${name}`).removeAttribute("aria-current");
  }
  if (screen === "supervisor") refreshSupervisor();
  if (screen === "simulations") showSimulations();
}
window.addEventListener("hashchange", route);

// -- start ------------------------------------------------------------------------------------------------------
async function start() {
  const saved = JSON.parse(sessionStorage.getItem("switchboard.console") || "null");
  if (!saved) return;
  state.key = saved.key;
  state.agent = saved.agent;
  let me;
  try {
    me = await api("GET", `/v1/agents/${state.agent}`);
  } catch (e) {
    sessionStorage.removeItem("switchboard.console");
    $("sign-in-error").textContent = `Sign-in failed. ${e.message}`;
    return;
  }
  state.agentName = me.name;
  $("who").textContent = `${me.name} · ${me.presence}`;
  $("presence").value = me.presence;
  [state.agents, state.queues] = await Promise.all([
    api("GET", "/v1/agents").catch(() => []), api("GET", "/v1/queues").catch(() => [])]);
  // supervisors and admins may read agents' stats: that is what the supervisor screen shows
  state.supervisor = await api("GET", "/v1/stats/agents").then(() => true, () => false);
  try { state.dismissed = new Set(JSON.parse(localStorage.getItem(dismissedKey()) || "[]")); } catch (_) { /* none */ }
  $("waiting-queue").replaceChildren(...(me.queue_ids || []).map((q) => el("option", { value: q }, queueName(q))));
  $("sign-in").hidden = true;
  $("views").hidden = false;
  $("nav-supervisor").hidden = !state.supervisor;
  $("nav-simulations").hidden = !state.supervisor;  // POST /v1/simulations is for supervisors and admins
  $("presence-form").hidden = false;
  $("sign-out").hidden = false;
  route();
  renderLists();
  connectFeed();
  if (state.supervisor) connectSupervisorFeed();
  refreshInbox();
  refreshQueues();
  refreshLoad();
  setInterval(() => {
    refreshQueues(); refreshLoad(); refreshInbox();
    if (!$("waiting-box").hidden) refreshWaiting();
    if (!$("supervisor").hidden) refreshSupervisor();
  }, 5000);
  setInterval(tickClocks, 1000);
}

start();
