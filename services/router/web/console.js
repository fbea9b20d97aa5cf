// Switchboard reference agent console: plain JS over the router's REST API and the agent's SSE feed.
"use strict";

const state = { key: null, agent: null, offers: new Map(), mine: new Map(), open: null, feed: null };
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

async function api(method, path, body, key = state.key) {
  const response = await fetch(path, {
    method,
    headers: { Authorization: `Bearer ${key}`, ...(body ? { "Content-Type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = (await response.json()).detail || detail; } catch (_) { /* not JSON */ }
    throw new Error(`${response.status}: ${detail}`);
  }
  return response.status === 204 ? null : response.json();
}

function short(id) { return id ? id.slice(0, 8) : ""; }
// what a work item is: a conversation on a channel, a live call, or a customer to call back
function label(item) {
  if (item.task === "callback") return `Call back ${item.phone || ""}`;
  if (item.task === "call") return `Call · ${short(item.conversation_id)}`;
  return `${item.channel} · ${short(item.conversation_id)}`;
}
function when(iso) { return iso ? new Date(iso).toLocaleTimeString() : ""; }

// -- sign in --------------------------------------------------------------------------------------------
$("load-agents").addEventListener("click", async () => {
  const key = $("key").value.trim();
  $("sign-in-error").textContent = "";
  try {
    const agents = await api("GET", "/v1/agents", null, key);
    const select = $("agent");
    select.replaceChildren(...agents.map((a) => el("option", { value: a.id }, `${a.name} (${a.presence})`)));
    select.disabled = false;
  } catch (e) {
    $("sign-in-error").textContent = `Could not load agents: ${e.message}`;
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
  location.reload();
});

// -- presence ------------------------------------------------------------------------------------------
$("presence-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    await api("PUT", `/v1/agents/${state.agent}/presence`, { presence: $("presence").value });
    $("who").textContent = `${state.agentName} · ${$("presence").value}`;
  } catch (e) { $("who").textContent = `Presence not changed: ${e.message}`; }
});

// -- offers and conversations ---------------------------------------------------------------------------------
function renderLists() {
  $("offers").replaceChildren(...[...state.offers.values()].map((o) => el("li", { "data-conversation": o.conversation_id },
    el("span", {}, label(o)),
    el("span", { class: "meta" }, `until ${when(o.expires_at)}`),
    el("button", { type: "button", onclick: () => decide(o, "accept") }, "Accept"),
    el("button", { type: "button", class: "secondary", onclick: () => decide(o, "decline") }, "Decline"),
  )));
  if (!state.offers.size) $("offers").append(el("li", { class: "meta" }, "No offers"));
  $("mine").replaceChildren(...[...state.mine.values()].map((c) => el("li", { "data-conversation": c.conversation_id },
    el("button", { type: "button", class: "secondary" + (c.unread ? " unread" : ""), onclick: () => openConversation(c.conversation_id) },
      label(c)),
    el("span", { class: "meta" }, c.note || ""),
  )));
  if (!state.mine.size) $("mine").append(el("li", { class: "meta" }, "Nothing assigned"));
}

async function decide(offer, verb) {
  try {
    await api("POST", `/v1/agents/${state.agent}/${verb}`, { conversation_id: offer.conversation_id });
  } catch (e) { alert(`Could not ${verb}: ${e.message}`); }
}

function onFeed(type, data) {
  const id = data.conversation_id;
  if (type === "offer" || type === "assignment" || type === "unassignment") refreshLoad();
  if (type === "offer") state.offers.set(id, data);
  else if (type === "assignment") { state.offers.delete(id); state.mine.set(id, { ...data, unread: false }); }
  else if (type === "unassignment") {
    state.offers.delete(id); state.mine.delete(id);
    // a resolve's own answer and its feed event race: either order ends on "Resolved…"
    const status = $("conv-status");
    if (state.open === id && data.reason === "resolved") {
      if (!status.textContent.startsWith("Resolved")) status.textContent = "Resolved.";
    } else if (state.open === id) status.textContent = `No longer yours (${data.reason}).`;
  } else if (type === "message") {
    const mine = state.mine.get(id);
    if (mine) mine.unread = state.open !== id;
    if (state.open === id) loadTimeline();
  } else if (type === "presence" && data.agent === state.agent) {
    // routing may change it too: say why, so an agent set away knows what to do
    const why = { missed_offer: " — an offer ran out unanswered; set yourself online to get work again",
      disconnected: " — your console lost its connection", supervisor: " — set by a supervisor" }[data.reason] || "";
    $("who").textContent = `${state.agentName} · ${data.presence}${why}`;
    $("presence").value = data.presence;
  } else if (type.startsWith("sla.")) {
    const mine = state.mine.get(id);
    if (mine) mine.note = `SLA ${data.stage}: ${data.kind.replace("_", " ")}`;
  }
  renderLists();
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

// -- one conversation ------------------------------------------------------------------------------------------
async function openConversation(id) {
  state.open = id;
  const mine = state.mine.get(id);
  if (mine) mine.unread = false;
  renderLists();
  $("conversation").hidden = false;
  $("conv-status").textContent = "";
  const conv = await api("GET", `/v1/conversations/${id}`);
  state.conv = conv;
  const customer = await api("GET", `/v1/customers/${conv.customer_id}`);
  $("conv-title").textContent = `Conversation ${short(id)} · ${conv.status}`;
  $("profile").replaceChildren(
    el("strong", {}, customer.name || "Unnamed customer"), " · ",
    `${customer.tier}`, customer.email ? ` · ${customer.email}` : "", customer.phone ? ` · ${customer.phone}` : "",
  );
  const channels = new Set((customer.identities || []).map((i) => channelOf(i.kind)).filter(Boolean));
  $("reply-channel").replaceChildren(el("option", { value: "" }, `Where they last wrote (${conv.channel})`),
    ...[...channels].map((c) => el("option", { value: c }, c)));
  const [agents, queues] = await Promise.all([api("GET", "/v1/agents"), api("GET", "/v1/queues")]);
  $("transfer-to").replaceChildren(
    ...agents.filter((a) => a.id !== state.agent).map((a) => el("option", { value: `agent:${a.id}` }, `Agent: ${a.name}`)),
    ...queues.map((q) => el("option", { value: `queue:${q.id}` }, `Queue: ${q.name}`)),
  );
  await loadTimeline();
}

const KIND_CHANNEL = { email: "email", phone: "sms", chat_visitor: "chat", messenger_psid: "messenger",
  instagram_id: "instagram", telegram_id: "telegram" };
function channelOf(kind) { return KIND_CHANNEL[kind]; }

async function loadTimeline() {
  if (!state.conv) return;
  const page = await api("GET", `/v1/customers/${state.conv.customer_id}/timeline?limit=100`);
  const items = page.items.slice().reverse();
  $("timeline").replaceChildren(...items.map((item) => {
    if (item.kind === "message") {
      return el("li", { class: item.direction },
        el("span", { class: "chan" }, item.channel), el("span", { class: "meta" }, `${when(item.at)} `),
        item.direction === "inbound" ? "Customer: " : "Us: ", item.text);
    }
    return el("li", { class: "event" + (item.kind.startsWith("sla") ? " sla" : "") }, `${when(item.at)} ${item.kind.replace("_", " ")}`);
  }));
  $("timeline").scrollTop = $("timeline").scrollHeight;
}

$("reply-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = $("reply-text").value.trim();
  if (!text || !state.open) return;
  try {
    const body = { text, pending: $("reply-pending").checked };
    if ($("reply-channel").value) body.channel = $("reply-channel").value;
    await api("POST", `/v1/conversations/${state.open}/reply`, body);
    $("reply-text").value = "";
    $("conv-status").textContent = "Reply sent.";
    await loadTimeline();
  } catch (e) { $("conv-status").textContent = `Not sent: ${e.message}`; }
});

$("resolve-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!state.open) return;
  try {
    await api("POST", `/v1/conversations/${state.open}/resolve`, { note: $("resolve-note").value || null });
    $("conv-status").textContent = "Resolved. The customer was asked for feedback.";
    $("conv-title").textContent = `Conversation ${short(state.open)} · resolved`;
    state.mine.delete(state.open);
    renderLists();
    await loadTimeline();
  } catch (e) { $("conv-status").textContent = `Not resolved: ${e.message}`; }
});

$("transfer-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const [kind, id] = $("transfer-to").value.split(/:(.*)/s);
  try {
    await api("POST", `/v1/conversations/${state.open}/transfer`, kind === "agent" ? { agent_id: id } : { queue_id: id });
    $("conv-status").textContent = "Transferred.";
  } catch (e) { $("conv-status").textContent = `Not transferred: ${e.message}`; }
});

// -- queues (supervisors) --------------------------------------------------------------------------------------
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
  try {
    const stats = await api("GET", "/v1/stats/queues");
    $("queues").tBodies[0].replaceChildren(...stats.items.map((q) => el("tr", {},
      el("th", { scope: "row" }, q.name), el("td", {}, q.waiting), el("td", {}, `${Math.round(q.longest_wait_s)} s`),
      el("td", {}, q.agents_online), el("td", {}, q.agents_available),
      el("td", {}, q.expected_wait_s == null ? "–" : `${Math.round(q.expected_wait_s)} s`))));
    const k = (await api("GET", "/v1/stats/kpis")).items[0];
    $("kpis").textContent = k ? `Last 7 days: ${k.conversations} conversations · CSAT ${k.csat_avg ?? "–"}` +
      ` (${k.csat_response_rate == null ? "–" : Math.round(100 * k.csat_response_rate) + "%"} answered)` : "";
  } catch (_) { /* a supervisor-only view: agents may not see it */ }
}

// -- start ---------------------------------------------------------------------------------------------------
async function start() {
  const saved = JSON.parse(sessionStorage.getItem("switchboard.console") || "null");
  if (!saved) return;
  state.key = saved.key;
  state.agent = saved.agent;
  try {
    const me = await api("GET", `/v1/agents/${state.agent}`);
    state.agentName = me.name;
    $("who").textContent = `${me.name} · ${me.presence}`;
    $("presence").value = me.presence;
  } catch (e) {
    sessionStorage.removeItem("switchboard.console");
    $("sign-in-error").textContent = `Sign-in failed: ${e.message}`;
    return;
  }
  $("sign-in").hidden = true;
  $("desk").hidden = false;
  $("presence-form").hidden = false;
  $("sign-out").hidden = false;
  renderLists();
  connectFeed();
  refreshQueues();
  refreshLoad();
  setInterval(() => { refreshQueues(); refreshLoad(); }, 5000);
}

start();
