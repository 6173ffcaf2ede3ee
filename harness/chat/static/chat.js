// The chat page: draws the events the server gives (GET /api/events) and sends what the visitor or the human
// writes. Every text a bot or a visitor wrote is put in the page as text (textContent), never as markup; only
// http(s) addresses become links.
"use strict";

const log = document.getElementById("log");
const calls = document.getElementById("calls");
const choices = document.getElementById("choices");
const problem = document.getElementById("problem");
const typing = document.getElementById("typing");
let seen = 0;

function element(tag, className, text) {
  const made = document.createElement(tag);
  if (className) made.className = className;
  if (text !== undefined) made.textContent = text;
  return made;
}

function withLinks(text) {
  // the text as text nodes, its http(s) addresses as links (no other scheme: javascript: stays text)
  const span = element("span");
  const parts = String(text).split(/(https?:\/\/[^\s<>"]+)/);
  parts.forEach((part, i) => {
    if (i % 2 === 1) {
      const link = element("a", "", part);
      link.href = part;
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      span.appendChild(link);
    } else if (part) {
      span.appendChild(document.createTextNode(part));
    }
  });
  return span;
}

function bubble(side, who, body) {
  const row = element("div", "row " + side);
  const box = element("div", "bubble");
  box.appendChild(element("div", "who", who));
  box.appendChild(body);
  row.appendChild(box);
  log.appendChild(row);
  return row;
}

function card(payload) {
  const box = element("div", "card");
  box.appendChild(element("strong", "", payload.title || payload.name || ""));
  if (payload.text || payload.description) box.appendChild(withLinks(" " + (payload.text || payload.description)));
  return box;
}

function drawShown(event) {
  const payload = event.payload || {};
  let body;
  if (payload.contentType === "text") body = withLinks(payload.value);
  else if (payload.contentType === "card/content" || payload.contentType === "product-offer") body = card(payload);
  else if (payload.contentType === "bundle/card" || payload.contentType === "bundle/product-offer") {
    body = element("div");
    (payload.cards || payload.offers || []).forEach((item) => body.appendChild(card(item || {})));
  } else body = withLinks(event.text);
  const who = event.purpose === "proactive" ? "bot, through iAdvize's API" : "bot";
  const row = bubble("bot", who, body);
  if (event.kind === "dropped") row.classList.add("cancelled");
  // quick replies stay offered until one is used or the visitor writes, whatever the bot shows meanwhile
  if ((event.quickReplies || []).length && event.kind === "shown") offer(event.quickReplies);
}

function offer(values) {
  choices.replaceChildren();
  values.forEach((value) => {
    const button = element("button", "", value);
    button.type = "button";
    button.addEventListener("click", async () => {
      await send("/api/say", value);
      document.getElementById("visitor-text").focus();  // the keyboard goes on from the box
    });
    choices.appendChild(button);
  });
}

function drawCall(event) {
  const item = element("li");
  const details = element("details");
  const summary = element("summary");
  const latency = event.latency_ms === null ? "no answer" : Math.round(event.latency_ms) + " ms";
  const budget = " / " + event.budget_ms / 1000 + " s";
  summary.appendChild(element("span", "", event.purpose + ": " + event.text + " → " + (event.status ?? event.error) + ", "));
  summary.appendChild(element("span", event.latency_ms > event.budget_ms ? "over" : "", latency + budget));
  summary.appendChild(element("span", "", event.signed ? ", signed" : ", unsigned"));
  const errors = event.findings.filter((f) => f.severity === "error").length;
  if (event.findings.length) summary.appendChild(element("span", "finding " + (errors ? "error" : "warning"),
    " — " + event.findings.length + (event.findings.length === 1 ? " finding" : " findings")));
  if (event.recorded !== undefined) summary.appendChild(element("span", event.sameAsRecorded ? "" : "over",
    event.sameAsRecorded ? " — as recorded" : " — differs from the recording"));
  details.appendChild(summary);
  if (event.recorded !== undefined && !event.sameAsRecorded) {
    details.appendChild(element("pre", "", "recorded answer\n" + event.recorded));
  }
  event.findings.forEach((f) => {
    details.appendChild(element("p", "finding " + f.severity, f.rule + " (" + f.severity + "): " + f.message +
      (f.evidence ? ": " + f.evidence : "")));
  });
  details.appendChild(element("pre", "", "request\n" + JSON.stringify(event.request, null, 2)));
  details.appendChild(element("pre", "", "response\n" + JSON.stringify(event.response, null, 2)));
  item.appendChild(details);
  calls.appendChild(item);
}

function draw(event) {
  if (event.kind === "call") return drawCall(event);
  if (event.kind === "visitor") { offer([]); return bubble("visitor", "visitor", withLinks(event.text)); }
  if (event.kind === "human") return bubble("bot human", "human operator", withLinks(event.text));
  if (event.kind === "shown" || event.kind === "dropped") return drawShown(event);
  const marker = event.kind === "dropped" ? "not shown (the visitor wrote first)" : event.kind;
  log.appendChild(element("div", "marker", "[" + marker + "] " + event.text));
}

let lastAt = 0;
const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

let refreshing = Promise.resolve();

function refresh() {
  // one refresh at a time: a second one (a send while the typing indicator shows) waits for the first,
  // so no event is drawn twice
  refreshing = refreshing.then(drawNew, drawNew);
  return refreshing;
}

async function drawNew() {
  const answer = await fetch("/api/events?since=" + seen);
  const body = await answer.json();
  const realTime = document.getElementById("real-time").checked;
  for (const event of body.events) {
    // in real time, the bot's messages come after the time the bot took (its awaits): the typing indicator meanwhile
    if (realTime && event.kind === "shown" && event.at > lastAt) {
      typing.hidden = false;
      await sleep(Math.min(event.at - lastAt, 10) * 1000);
      typing.hidden = true;
    }
    lastAt = event.at;
    draw(event);
    seen = event.n + 1;
  }
  document.getElementById("human-form").hidden = !body.handedOver;
  document.getElementById("step").hidden = !body.stepsLeft;
  const scenarioProblem = document.getElementById("scenario-problem");
  scenarioProblem.hidden = !body.scenarioProblem;
  scenarioProblem.textContent = body.scenarioProblem ?
    "The bot's scenario files do not load (it goes on with the last good ones): " + body.scenarioProblem : "";
  log.scrollTop = log.scrollHeight;
  return body;
}

async function send(path, text) {
  problem.textContent = "";
  typing.hidden = false;
  try {
    const answer = await fetch(path, {
      method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({text}),
    });
    if (!answer.ok) problem.textContent = (await answer.json()).error;
  } finally {
    typing.hidden = true;
    await refresh();
  }
}

async function start() {
  log.replaceChildren(); calls.replaceChildren(); offer([]); seen = 0; lastAt = 0;
  await send("/api/new", "");
}

async function resume() {
  // a page opened (or reloaded) on a conversation under way shows it; else a new one starts
  const body = await refresh();
  if (!body.open) await start();
  document.getElementById("visitor-text").focus();
}

async function loadSettings() {
  const settings = await (await fetch("/api/settings")).json();
  const select = document.getElementById("scenario");
  select.replaceChildren();
  settings.scenarios.forEach((id) => {
    const option = element("option", "", id);
    option.value = id;
    option.selected = id === settings.scenario;
    select.appendChild(option);
  });
  document.getElementById("language").value = settings.language;
  document.getElementById("available").checked = settings.humanAvailable;
}

async function saveSettings() {
  const answer = await fetch("/api/settings", {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({scenario: document.getElementById("scenario").value,
      language: document.getElementById("language").value,
      humanAvailable: document.getElementById("available").checked})});
  problem.textContent = answer.ok ? "" : (await answer.json()).error;
}

for (const id of ["scenario", "language", "available"]) document.getElementById(id).addEventListener("change", saveSettings);
document.getElementById("file").addEventListener("click", () => send("/api/file", ""));
document.getElementById("recording").addEventListener("change", async (chosen) => {
  const file = chosen.target.files[0];
  if (!file) return;
  log.replaceChildren(); calls.replaceChildren(); offer([]); seen = 0; lastAt = 0;
  const answer = await fetch("/api/recording", {method: "POST", body: await file.arrayBuffer()});
  problem.textContent = answer.ok ? "" : (await answer.json()).error;
  document.getElementById("step").hidden = !answer.ok;
  await refresh();
});
document.getElementById("step").addEventListener("click", async () => {
  problem.textContent = "";
  const answer = await fetch("/api/step", {method: "POST"});
  if (!answer.ok) {
    problem.textContent = (await answer.json()).error;
    document.getElementById("step").hidden = true;
  }
  await refresh();
});
document.getElementById("new").addEventListener("click", start);
for (const [form, input, path] of [["visitor-form", "visitor-text", "/api/say"], ["human-form", "human-text", "/api/human"]]) {
  document.getElementById(form).addEventListener("submit", (submitted) => {
    submitted.preventDefault();
    const field = document.getElementById(input);
    if (field.value.trim()) send(path, field.value);
    field.value = "";
  });
}
loadSettings().then(resume);
