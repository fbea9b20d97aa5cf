// Switchboard chat widget: <script src="/web/widget.js" data-chat="ws://host/chat/ws" data-api="https://router"
//   data-title="Support" data-greeting="Hi! How can we help?"></script>
// A launcher button opens a chat panel (the launcher steps aside while it is open); a greeting opens the log;
// each message shows who wrote it and when; the conversation survives page reloads (visitor token, transcript and
// the last reply seen are kept in localStorage, and the server replays replies after it); a satisfaction card
// arrives after the agent resolves. While the visitor waits for an agent, a line under the log tells their place in
// the queue and the expected wait (or when the queue opens), asked of the router every few seconds.
(function () {
  "use strict";
  const script = document.currentScript;
  const wsUrl = (script && script.dataset.chat) || `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/chat/ws`;
  const apiBase = (script && script.dataset.api) || "";
  const title = (script && script.dataset.title) || "Support";
  const greeting = (script && script.dataset.greeting) || "Hi! How can we help? Write us here and someone from our team will answer.";
  const store = {
    get(k, d) { try { return JSON.parse(localStorage.getItem(`switchboard.chat.${k}`)) ?? d; } catch (_) { return d; } },
    set(k, v) { localStorage.setItem(`switchboard.chat.${k}`, JSON.stringify(v)); },
  };

  const css = `
  .sbw-launch{position:fixed;right:1rem;bottom:1rem;z-index:9999;font:15px system-ui,sans-serif;padding:.7rem 1.1rem;border-radius:999px;border:0;background:#0b5cad;color:#fff;cursor:pointer}
  .sbw-panel{position:fixed;right:1rem;bottom:1rem;z-index:9999;width:min(22rem,calc(100vw - 2rem));height:min(32rem,calc(100vh - 2rem));display:flex;flex-direction:column;background:#fff;border:1px solid #d6dbe1;border-radius:10px;box-shadow:0 8px 24px rgba(0,0,0,.15);font:15px/1.4 system-ui,sans-serif;color:#1b1f24}
  .sbw-panel[hidden]{display:none}
  .sbw-head{padding:.6rem .8rem;border-bottom:1px solid #d6dbe1;display:flex;justify-content:space-between;align-items:center}
  .sbw-head h2{font-size:1rem;margin:0}
  .sbw-log{flex:1;overflow-y:auto;padding:.6rem .8rem;margin:0;list-style:none}
  .sbw-log li{margin:.3rem 0;padding:.4rem .6rem;border-radius:8px;max-width:85%;word-wrap:break-word}
  .sbw-me{background:#0b5cad;color:#fff;margin-left:auto!important}
  .sbw-them{background:#eef1f4}
  .sbw-launch[hidden]{display:none}
  .sbw-meta{display:block;font-size:.72rem;opacity:.75;margin-bottom:.1rem}
  .sbw-greet{background:#f4f8fd;border:1px solid #d9e6f5}
  .sbw-form{display:flex;gap:.4rem;padding:.6rem;border-top:1px solid #d6dbe1}
  .sbw-form input{flex:1;font:inherit;padding:.4rem;border:1px solid #d6dbe1;border-radius:6px}
  .sbw-form button,.sbw-card button{font:inherit;padding:.35rem .7rem;border:1px solid #0b5cad;border-radius:6px;background:#0b5cad;color:#fff;cursor:pointer}
  .sbw-card{background:#fff8e6;border:1px solid #f0d9a8}
  .sbw-card fieldset{border:0;padding:0;margin:.3rem 0 0;display:flex;gap:.3rem;flex-wrap:wrap}
  .sbw-close{background:none;border:0;font-size:1.3rem;cursor:pointer}
  .sbw-wait{margin:0;padding:.35rem .8rem;font-size:.8rem;background:#f4f8fd;border-top:1px solid #d9e6f5}
  .sbw-wait[hidden]{display:none}
  .sbw-panel :focus-visible,.sbw-launch:focus-visible{outline:3px solid #7ab7ff;outline-offset:1px}`;
  const style = document.createElement("style");
  style.textContent = css;
  document.head.append(style);

  const launch = document.createElement("button");
  launch.className = "sbw-launch";
  launch.type = "button";
  launch.textContent = "Chat with us";
  launch.setAttribute("aria-controls", "sbw-panel");
  launch.setAttribute("aria-expanded", "false");

  const panel = document.createElement("section");
  panel.className = "sbw-panel";
  panel.id = "sbw-panel";
  panel.hidden = true;
  panel.setAttribute("aria-label", "Chat with support");
  panel.innerHTML = `
    <div class="sbw-head"><h2></h2><button type="button" class="sbw-close" aria-label="Close chat">×</button></div>
    <ol class="sbw-log" aria-live="polite" aria-label="Messages"></ol>
    <p class="sbw-wait" role="status" hidden></p>
    <form class="sbw-form"><label for="sbw-text" style="position:absolute;left:-9999px">Your message</label>
      <input id="sbw-text" name="text" autocomplete="off" placeholder="Write a message…" required maxlength="20000">
      <button type="submit">Send</button></form>`;
  document.body.append(launch, panel);
  panel.querySelector(".sbw-head h2").textContent = title;
  const log = panel.querySelector(".sbw-log");
  const input = panel.querySelector("#sbw-text");
  const waitLine = panel.querySelector(".sbw-wait");
  const WAIT_POLL_MS = 5000;
  let waitTimer = null;

  let transcript = store.get("transcript", []);
  let ws = null;
  let pending = store.get("pending", []);  // sent, not acknowledged yet: resent after a reconnect

  function time(iso) {
    const d = iso ? new Date(iso) : null;
    return d && !isNaN(d) ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : "";
  }

  function bubble(className, who, at, text) {
    const li = document.createElement("li");
    li.className = className;
    const meta = document.createElement("span");
    meta.className = "sbw-meta";
    meta.textContent = [who, time(at)].filter(Boolean).join(" · ");
    li.append(meta, document.createTextNode(text));
    return li;
  }

  function render() {
    const greet = bubble("sbw-them sbw-greet", title, null, greeting);
    log.replaceChildren(greet, ...transcript.map((m) => {
      if (m.survey) return surveyCard(document.createElement("li"), m);
      return m.me ? bubble("sbw-me", "You", m.at, m.text) : bubble("sbw-them", m.agent || title, m.at, m.text);
    }));
    log.scrollTop = log.scrollHeight;
  }

  function surveyCard(li, m) {
    li.className = "sbw-them sbw-card";
    const q = document.createElement("p");
    q.style.margin = "0";
    q.textContent = m.survey.question;
    li.append(q);
    if (m.answered != null) {
      const thanks = document.createElement("p");
      thanks.style.margin = ".3rem 0 0";
      thanks.textContent = `Thank you! You rated us ${m.answered}.`;
      li.append(thanks);
      return li;
    }
    const set = document.createElement("fieldset");
    const legend = document.createElement("legend");
    legend.textContent = "Your rating";
    legend.style.cssText = "position:absolute;left:-9999px";
    set.append(legend);
    for (let n = m.survey.min; n <= m.survey.max; n++) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = String(n);
      b.setAttribute("aria-label", `Rate ${n} of ${m.survey.max}`);
      b.addEventListener("click", () => answer(m, n));
      set.append(b);
    }
    li.append(set);
    return li;
  }

  async function answer(m, score) {
    const response = await fetch(`${apiBase}/v1/surveys/${encodeURIComponent(m.survey.token)}`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ score }),
    });
    if (response.ok || response.status === 409) {
      m.answered = score;
      store.set("transcript", transcript);
      render();
    }
  }

  function minutes(seconds) {
    const m = Math.max(1, Math.round(seconds / 60));
    return m === 1 ? "about 1 minute" : `about ${m} minutes`;
  }

  function waitText(w) {
    if (w.state !== "waiting") return null;
    if (w.queue_open === false && w.opens_at) {
      const at = new Date(w.opens_at).toLocaleString([], { weekday: "long", hour: "2-digit", minute: "2-digit" });
      return `We are closed now and open again ${at}. We will answer then.`;
    }
    const place = w.position ? (w.position === 1 ? "You are next in line" : `You are number ${w.position} in line`) : "You are in line";
    return w.expected_wait_s != null ? `${place} · expected wait ${minutes(w.expected_wait_s)}` : place;
  }

  // Asks where the visitor stands until an agent has the conversation (or there is none), then stops; a new
  // message from the visitor starts it again.
  async function pollWait() {
    clearTimeout(waitTimer);
    waitTimer = null;
    const token = store.get("token", null);
    if (!token) return;
    let w = null;
    let again = true;
    try {
      const response = await fetch(`${apiBase}/v1/chat/wait?token=${encodeURIComponent(token)}`);
      if (response.ok) w = await response.json();
      else again = response.status >= 500 || response.status === 429;  // not set up here: stop asking
    } catch (_) { /* offline: try again later */ }
    const text = w ? waitText(w) : null;
    waitLine.textContent = text || "";
    waitLine.hidden = !text;
    if (w ? w.state === "waiting" : again) waitTimer = setTimeout(pollWait, WAIT_POLL_MS);
  }

  function connect() {
    const token = store.get("token", null);
    const lastSeen = store.get("lastSeen", null);
    const params = new URLSearchParams();
    if (token) params.set("token", token);
    if (lastSeen) params.set("last_seen", lastSeen);
    ws = new WebSocket(`${wsUrl}${params.toString() ? "?" + params : ""}`);
    ws.onmessage = (e) => {
      const frame = JSON.parse(e.data);
      if (frame.type === "welcome") {
        store.set("token", frame.visitor_token);
        if (transcript.length) pollWait();
        for (const m of pending) ws.send(JSON.stringify({ type: "message", id: m.id, text: m.text }));
      } else if (frame.type === "ack") {
        pending = pending.filter((m) => m.id !== frame.id);
        store.set("pending", pending);
      } else if (frame.type === "reply") {
        if (!transcript.some((m) => m.id === frame.id)) {
          // the agent's name when the channel sends one (agent_name), else the desk's title
          transcript.push({ id: frame.id, text: frame.text, me: false, survey: frame.survey || null,
            at: frame.at || new Date().toISOString(), agent: frame.agent_name || null });
          store.set("transcript", transcript);
        }
        store.set("lastSeen", frame.id);
        render();
        pollWait();  // an answer: the line goes once an agent has the conversation
      }
    };
    ws.onclose = () => setTimeout(connect, 1500);
  }

  panel.querySelector(".sbw-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    const id = (crypto.randomUUID && crypto.randomUUID()) || String(Date.now()) + Math.random();
    const m = { id, text, me: true, at: new Date().toISOString() };
    transcript.push(m);
    pending.push(m);
    store.set("transcript", transcript);
    store.set("pending", pending);
    render();
    input.value = "";
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "message", id, text }));
    setTimeout(pollWait, 1000);  // once routing has placed the new conversation
  });

  function toggle(open) {
    panel.hidden = !open;
    launch.hidden = open;  // the panel has its own close button; the launcher would cover the page for nothing
    launch.setAttribute("aria-expanded", String(open));
    store.set("open", open);
    if (open) input.focus();
  }
  launch.addEventListener("click", () => toggle(panel.hidden));
  panel.querySelector(".sbw-close").addEventListener("click", () => { toggle(false); launch.focus(); });
  panel.addEventListener("keydown", (e) => { if (e.key === "Escape") { toggle(false); launch.focus(); } });

  render();
  connect();
  if (store.get("open", false)) toggle(true);
})();
