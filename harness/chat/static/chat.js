// The chat page: draws the events the server gives (GET /api/events) and sends what the visitor or the human
// writes. Every text a bot or a visitor wrote is put in the page as text (textContent), never as markup; only
// http(s) addresses become links.
"use strict";

const log = document.getElementById("log");
const calls = document.getElementById("calls");
const choices = document.getElementById("choices");
const problem = document.getElementById("problem");
const typing = document.getElementById("typing");
const waiting = document.getElementById("waiting");
let seen = 0;
let apiSeen = 0;
let waitTimer = null;

function safeUrl(url) {
  // only http(s) addresses are followed or loaded: a javascript: or data: one a bot sends stays text
  return typeof url === "string" && /^https?:\/\//i.test(url) ? url : null;
}

function link(text, url) {
  const made = element("a", "", text);
  made.href = url;
  made.target = "_blank";
  made.rel = "noopener noreferrer";
  return made;
}

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
      span.appendChild(link(part, part));
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

function image(described) {
  // a card's or an offer's image ({url, description}), loaded only from an http(s) address
  const url = safeUrl((described || {}).url);
  if (!url) return null;
  const img = element("img", "picture");
  img.alt = String((described || {}).description || "");
  img.referrerPolicy = "no-referrer";
  // an image that does not load (offline, a shop's address in a demo) says what it was, not a broken icon
  img.addEventListener("error", () => {
    img.replaceWith(element("div", "picture missing", "image not loaded: " + (img.alt || url)));
    log.scrollTop = log.scrollHeight;  // the bubble changed height after the log was scrolled to its end
  });
  img.src = url;
  return img;
}

function actions(payload) {
  // a card's or an offer's LINK actions, as links (only http(s) ones; another is shown as its name)
  const row = element("div", "actions");
  (Array.isArray(payload.actions) ? payload.actions : []).forEach((action) => {
    const url = safeUrl((action || {}).url);
    const name = String((action || {}).name || (action || {}).url || "link");
    row.appendChild(url ? link(name, url) : element("span", "", name));
  });
  return row;
}

function card(payload) {
  // a card (title, text, image, links) or a product offer (name, price, offer price, availability, links)
  const box = element("div", "card");
  const picture = image(payload.image);
  if (picture) box.appendChild(picture);
  box.appendChild(element("strong", "", String(payload.title || payload.name || "")));
  if (payload.price !== undefined) {
    const price = element("div", "price");
    if (payload.offerPrice) {
      price.appendChild(element("del", "", String(payload.price)));
      price.appendChild(element("span", "", " " + String(payload.offerPrice)));
    } else price.appendChild(element("span", "", String(payload.price)));
    const status = (payload.availability || {}).status;
    if (status) price.appendChild(element("span", "availability", status === "AVAILABLE" ? " — available" : " — unavailable"));
    box.appendChild(price);
  }
  const text = payload.text || payload.description;
  if (text) box.appendChild(withLinks(String(text)));
  box.appendChild(actions(payload));
  return box;
}

function attachment(payload) {
  // a file: an image shown, another file as a link to it
  const url = safeUrl(payload.url);
  const name = String(payload.fileName || "file");
  if (url && /^image\//.test(String(payload.mimeType))) {
    const box = element("div", "card");
    const picture = image({url, description: name});
    box.appendChild(picture);
    box.appendChild(link(name, url));
    return box;
  }
  return url ? link(name, url) : element("span", "", name);
}

function findings(found) {
  // what check's rules found on one reply, or one call, drawn where the visitor sees it
  const list = element("div", "findings");
  found.forEach((f) => list.appendChild(element("p", "finding " + f.severity,
    "⚠ " + f.rule + ": " + f.message + " — " + f.why)));
  return list;
}

function drawShown(event) {
  const payload = event.payload || {};
  let body;
  if (payload.contentType === "text") body = withLinks(payload.value);
  else if (payload.contentType === "card/content" || payload.contentType === "product-offer") body = card(payload);
  else if (payload.contentType === "bundle/card" || payload.contentType === "bundle/product-offer") {
    body = element("div", "carousel");
    const items = payload.contentType === "bundle/card" ? payload.cards : payload.offers;
    (Array.isArray(items) ? items : []).forEach((item) => body.appendChild(card(item || {})));
  } else if (payload.contentType === "file") body = attachment(payload);
  else body = withLinks(event.text);
  const who = event.purpose === "proactive" ? "bot, through iAdvize's API" : "bot";
  const row = bubble("bot", who, body);
  if (event.kind === "dropped") {
    row.classList.add("cancelled");
    row.querySelector(".who").textContent += " — not shown: " + (event.why || "dropped");
  }
  if ((event.findings || []).length) {
    row.classList.add("broken");
    row.querySelector(".bubble").appendChild(findings(event.findings));
  }
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
  const echoes = event.echoes === undefined ? "" : " (" + (event.purpose === "echo" ? "echo of" : "the human's") +
    " “" + clip(event.echoes, 60) + "”)";
  summary.appendChild(element("span", "", event.purpose + ": " + event.text + echoes + " → " + (event.status ?? event.error) + ", "));
  summary.appendChild(element("span", event.latency_ms > event.budget_ms ? "over" : "", latency + budget));
  summary.appendChild(element("span", "", event.signed ? ", signed" : ", unsigned"));
  const errors = event.findings.filter((f) => f.severity === "error").length;
  if (event.findings.length) summary.appendChild(element("span", "finding " + (errors ? "error" : "warning"),
    " — " + event.findings.length + (event.findings.length === 1 ? " finding" : " findings")));
  if (event.recorded !== undefined) summary.appendChild(element("span", event.sameAsRecorded ? "" : "over",
    event.sameAsRecorded ? " — as recorded" : " — differs from the recording"));
  details.appendChild(summary);
  const fates = element("ol", "fates");
  fates.setAttribute("aria-label", "what became of each reply");
  details.appendChild(fates);
  details.addEventListener("toggle", async () => {
    // asked each time the row opens: a reply waiting then may have been shown or cancelled since
    if (!details.open) return;
    const answer = await fetch("/api/calls/" + event.n + "/fates");
    if (!answer.ok) return;
    fates.replaceChildren(...(await answer.json()).fates.map((f) => element("li", "", clip(f.reply, 80) + " — " + f.fate)));
  });
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
  // what breaks the conversation for the visitor is said in the chat too, where it happens: a bot that did not
  // answer, an answer iAdvize cannot use, a bot answering its own echo (the findings on a reply the visitor
  // sees mark its bubble instead)
  const broken = event.unplaced;
  if (broken.length) {
    const marker = element("div", "marker broken", "the bot's answer to " + describe(event) + ":");
    marker.appendChild(findings(broken));
    log.appendChild(marker);
  }
}

function describe(call) {
  const what = {greeting: "the chat opening (the greeting)", visitor: "the visitor's message",
    echo: "its own message, posted back", human: "the human's message", create: "the conversation's start"};
  return what[call.purpose] || call.purpose + " " + call.text;
}

function clip(text, most) {
  const whole = String(text);
  return whole.length > most ? whole.slice(0, most) + "…" : whole;
}

function drawApiCall(call) {
  // a call the bot made to (the local) iAdvize's API, judged by check's platform rules
  const item = element("li", "api");
  const summary = element("p", "", "bot → iAdvize's API: " + call.text + " → " + call.status +
    (call.refused ? ", refused: " + call.refused : ""));
  item.appendChild(summary);
  if (call.findings.length) item.appendChild(findings(call.findings));
  calls.appendChild(item);
}

function draw(event) {
  if (event.kind === "call") return drawCall(event);
  if (event.kind === "webhook") return calls.appendChild(element("li", "webhook", "webhook: " + event.text));
  if (event.kind === "visitor") { offer([]); return bubble("visitor", "visitor", withLinks(event.text)); }
  if (event.kind === "human") return bubble("bot human", "human operator", withLinks(event.text));
  if (event.kind === "shown" || event.kind === "dropped") return drawShown(event);
  const marker = element("div", "marker", "[" + event.kind + "] " + event.text);
  if ((event.findings || []).length) {
    marker.classList.add("broken");
    marker.appendChild(findings(event.findings));
  }
  log.appendChild(marker);
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

let generation = 0;  // which conversation the page shows: a refresh begun for another one draws nothing more

async function drawNew() {
  const mine = generation;
  const answer = await fetch("/api/events?since=" + seen + "&apiSince=" + apiSeen);
  const body = await answer.json();
  const realTime = document.getElementById("real-time").checked;
  for (const event of body.events) {
    // in real time, the bot's messages come after the time the bot took (its awaits): the typing indicator meanwhile
    if (realTime && event.kind === "shown" && event.at > lastAt) {
      typing.hidden = false;
      await sleep(Math.min(event.at - lastAt, 10) * 1000);
      typing.hidden = true;
    }
    if (mine !== generation) return body;  // the page was cleared meanwhile (a new conversation, a recording)
    lastAt = event.at;
    draw(event);
    seen = event.n + 1;
  }
  if (mine !== generation) return body;
  for (const call of body.apiCalls) {
    drawApiCall(call);
    apiSeen = call.n + 1;
  }
  showWait(body.waiting);
  document.getElementById("human-form").hidden = !body.handedOver;
  document.getElementById("step").hidden = !body.stepsLeft;
  const scenarioProblem = document.getElementById("scenario-problem");
  scenarioProblem.hidden = !body.scenarioProblem;
  scenarioProblem.textContent = body.scenarioProblem ?
    "The bot's scenario files do not load (it goes on with the last good ones): " + body.scenarioProblem : "";
  log.scrollTop = log.scrollHeight;
  return body;
}

let shownWait = null;

function showWait(seconds) {
  // the bot's pending replies wait (a nudge "are you still there?"): the visitor writing first cancels them, or
  // the wait passes, at once with the button, in real time by itself
  clearTimeout(waitTimer);
  shownWait = seconds;
  waiting.hidden = seconds === null;
  if (seconds === null) return;
  const realTime = document.getElementById("real-time").checked;
  document.getElementById("waiting-text").textContent = "The bot waits " + seconds + " s before its next reply" +
    (realTime ? " (in real time): writing now cancels it." : ": writing now cancels it.");
  const button = document.getElementById("let-wait-pass");
  button.textContent = "Let the " + seconds + " s pass";
  button.onclick = () => letPass(seconds);
  if (realTime) waitTimer = setTimeout(() => letPass(seconds), seconds * 1000);
}

async function letPass(seconds) {
  clearTimeout(waitTimer);
  waiting.hidden = true;
  lastAt += seconds;  // the wait has passed: what comes after it is not delayed again
  await post("/api/wait", {headers: {"Content-Type": "application/json"}, body: JSON.stringify({seconds})});
}

async function post(path, init) {
  // one step of the conversation: the typing indicator meanwhile, the server's one line if it cannot be taken
  problem.textContent = "";
  typing.hidden = false;
  try {
    const answer = await fetch(path, {method: "POST", ...init});
    if (!answer.ok) problem.textContent = (await answer.json()).error;
  } finally {
    typing.hidden = true;
    await refresh();
  }
}

const send = (path, text) => post(path, {headers: {"Content-Type": "application/json"}, body: JSON.stringify({text})});

function cleared() {
  generation += 1;
  log.replaceChildren(); calls.replaceChildren(); offer([]); seen = 0; apiSeen = 0; lastAt = 0; showWait(null);
}

async function start() {
  cleared();
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
  showRules(settings.rules);
  document.getElementById("secret").textContent = settings.signed ?
    "Signature secret: set, every call is signed (X-iAdvize-Signature)" :
    "Signature secret: not set, calls are unsigned (set IADVIZE_SECRET, or --secret, to sign them)";
}

let rules = [];

function showRules(given) {
  rules = given;
  const list = document.getElementById("rule-list");
  list.replaceChildren();
  rules.forEach((rule, i) => {
    const item = element("li");
    const label = element("label");
    const box = element("input");
    box.type = "checkbox";
    box.checked = rule.available;
    box.addEventListener("change", () => { rules[i].available = box.checked; saveSettings(); });
    label.appendChild(box);
    label.appendChild(document.createTextNode(" " + rule.label + " (" + rule.id + ")"));
    item.appendChild(label);
    list.appendChild(item);
  });
}

async function saveSettings(added) {
  const answer = await fetch("/api/settings", {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({scenario: document.getElementById("scenario").value,
      language: document.getElementById("language").value, rules: added ? [...rules, added] : rules})});
  problem.textContent = answer.ok ? "" : (await answer.json()).error;
  return answer.ok;
}

document.getElementById("add-rule").addEventListener("click", async () => {
  const id = document.getElementById("rule-id");
  const label = document.getElementById("rule-label");
  if (await saveSettings({id: id.value, label: label.value, available: true})) {
    id.value = ""; label.value = "";
    showRules((await (await fetch("/api/settings")).json()).rules);
  }
});

document.getElementById("real-time").addEventListener("change", () => showWait(shownWait));
for (const id of ["scenario", "language"]) document.getElementById(id).addEventListener("change", () => saveSettings());
document.getElementById("visitor-file").addEventListener("change", async (chosen) => {
  const file = chosen.target.files[0];
  if (!file) return;
  chosen.target.value = "";  // the same file may be sent again
  await opening;
  await post("/api/file?name=" + encodeURIComponent(file.name),
    {headers: {"Content-Type": file.type || "application/octet-stream"}, body: file});
});
document.getElementById("recording").addEventListener("change", async (chosen) => {
  const file = chosen.target.files[0];
  if (!file) return;
  cleared();
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
// what is written while a conversation opens waits for it (sent before, it would find none)
let opening = Promise.resolve();
document.getElementById("new").addEventListener("click", () => { opening = start(); });
for (const [form, input, path] of [["visitor-form", "visitor-text", "/api/say"], ["human-form", "human-text", "/api/human"]]) {
  document.getElementById(form).addEventListener("submit", (submitted) => {
    submitted.preventDefault();
    const field = document.getElementById(input);
    const text = field.value;
    if (text.trim()) opening.then(() => send(path, text));
    field.value = "";
  });
}
opening = loadSettings().then(resume);
