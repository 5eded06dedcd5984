// nctool review: the page. Plain DOM, no build step; a card is drawn by cards.js (loaded first,
// shared with the static gallery). Every text from the data is set with textContent (never
// innerHTML): captions are untrusted. The keys, the help and the filter choices come from the
// server (/api/config, nctool.curate.review.page).
"use strict";

const PAGE_SIZE = 25;
const LABEL_COLOURS = {noisy: "#d1495b", ambiguous: "#edae49", clean: "#00798c"};
let CONFIG = null;  // /api/config: {keys, labels, states, actions, action_names}

const state = {filters: {}, offset: 0, total: 0, cards: [], focus: 0, decided: [], editing: false, deciding: false};
// the launch's secret, from the URL nctool printed: sent with every request to /api (a header for
// fetches, ?token= where the page cannot set one: images and the export link)
const TOKEN = new URLSearchParams(location.search).get("token");

function svg(tag, attributes) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  return node;
}

function withToken(path) {
  return TOKEN ? path + (path.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(TOKEN) : path;
}

function imageUrl(pairId, imageId, size) {
  return withToken("/api/image/" + encodeURIComponent(pairId) + (size ? "?size=" + size : ""));
}

function say(message) {
  document.getElementById("status").textContent = message;
}

async function api(path, body) {
  const headers = TOKEN ? {"X-Nctool-Token": TOKEN} : {};
  const options = body === undefined ? {headers} : {method: "POST", body: JSON.stringify(body),
                                                    headers: {...headers, "Content-Type": "application/json"}};
  const response = await fetch(path, options);
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

// ---- header ----

function showSummary(summary) {
  document.getElementById("detector").textContent = "detector " + summary.detector;
  document.getElementById("progress-text").textContent =
    `reviewed ${summary.reviewed} / left ${summary.left}  (kept ${summary.actions.keep}, ` +
    `dropped ${summary.actions.drop}, fixed ${summary.actions.fix})`;
  document.getElementById("progress-bar").style.width =
    (summary.pairs ? 100 * summary.reviewed / summary.pairs : 0) + "%";
  let noise = summary.noise_text;
  if (summary.true_noise_share !== null) noise += ` (ground truth ${(100 * summary.true_noise_share).toFixed(1)} %)`;
  document.getElementById("noise-share").textContent = noise;
  drawHistogram(summary);
}

function drawHistogram(summary) {
  const plot = document.getElementById("histogram");
  plot.replaceChildren();
  const width = 260, height = 46, counts = summary.histogram.counts, bins = summary.histogram.edges.length - 1;
  const totals = Array.from({length: bins}, (_, i) => Object.values(counts).reduce((sum, c) => sum + c[i], 0));
  const top = Math.max(1, ...totals), barWidth = width / bins;
  for (let i = 0; i < bins; i++) {
    let y = height;
    for (const label of CONFIG.labels) {
      const h = height * counts[label][i] / top;
      if (h > 0) plot.append(svg("rect", {x: i * barWidth + 0.5, y: y - h, width: barWidth - 1, height: h,
                                          fill: LABEL_COLOURS[label]}));
      y -= h;
    }
  }
  for (const [name, value] of Object.entries(summary.thresholds)) {
    if (value === null) continue;
    const x = width * value;
    const line = svg("line", {x1: x, x2: x, y1: 0, y2: height, stroke: "#333", "stroke-dasharray": "3,2"});
    const title = svg("title", {});
    title.textContent = `${name.replace(/_/g, " ")} ${value.toFixed(3)}`;
    line.append(title);
    plot.append(line);
  }
  const axis = svg("text", {x: 0, y: 56, "font-size": 9});
  axis.textContent = "reliability 0";
  const end = svg("text", {x: width, y: 56, "font-size": 9, "text-anchor": "end"});
  end.textContent = "1";
  plot.append(axis, end);
}

async function loadSummary() {
  const summary = await api("/api/summary");
  showSummary(summary);
  const select = document.querySelector("#filters select[name=category]");
  if (select.options.length === 1) {
    for (const category of summary.categories) select.append(el("option", {}, category));
    select.value = state.filters.category || "";
  }
}

// ---- cards ----

function describe(decision) {
  return decisionText(decision, CONFIG.action_names);
}

function keyOf(command) {
  return CONFIG.keys.find(key => key.command === command).shown;
}

function cardView(index) {
  return {imageUrl, actionNames: CONFIG.action_names, lazy: {loading: "lazy"}, controls: {
    focus: () => setFocus(index), enlarge, accept: acceptSuggestion,
    buttons: ["keep", "drop", "fix", "skip", "undo"].map(command => [command, keyOf(command), COMMANDS[command]])}};
}

function showCard(card, index) {
  return renderCard(card, index, cardView(index));
}

function showCards() {
  const main = document.getElementById("cards");
  main.replaceChildren(...state.cards.map(showCard));
  if (!state.cards.length) main.append(el("p", {class: "empty"}, "no pairs match these filters"));
  const last = Math.min(state.offset + state.cards.length, state.total);
  document.getElementById("position").textContent =
    state.total ? `${state.offset + 1}\u2013${last} of ${state.total}` : "0 of 0";
  setFocus(Math.min(state.focus, Math.max(state.cards.length - 1, 0)));
}

function replaceCard(index) {
  const old = document.querySelector(`#cards .card[data-index="${index}"]`);
  if (old) old.replaceWith(showCard(state.cards[index], index));
  setFocus(state.focus);
}

function setFocus(index) {
  state.focus = index;
  document.querySelectorAll("#cards .card.focused").forEach(node => node.classList.remove("focused"));
  const node = document.querySelector(`#cards .card[data-index="${index}"]`);
  if (node) {
    node.classList.add("focused");
    node.scrollIntoView({block: "nearest"});
  }
}

function queueQuery(extra) {
  const params = new URLSearchParams({limit: PAGE_SIZE, ...extra});
  for (const [name, value] of Object.entries(state.filters)) if (value) params.set(name, value);
  return "/api/queue?" + params.toString();
}

async function loadPage(offset, focus, resume = false) {
  const page = await api(queueQuery(resume ? {resume: 1} : {offset}));
  state.offset = page.offset;
  state.total = page.total;
  state.cards = page.cards;
  state.focus = resume ? page.focus - page.offset : focus;
  showCards();
}

// ---- actions ----

function current() {
  return state.cards[state.focus];
}

async function move(step) {
  const target = state.focus + step;
  if (target >= 0 && target < state.cards.length) return setFocus(target);
  if (step > 0 && state.offset + state.cards.length < state.total) return loadPage(state.offset + PAGE_SIZE, 0);
  if (step < 0 && state.offset > 0) return loadPage(Math.max(state.offset - PAGE_SIZE, 0), PAGE_SIZE - 1);
}

function showDecision(response) {
  const index = state.cards.findIndex(card => card.pair_id === response.pair_id);
  if (index >= 0) {
    state.cards[index].decision = response.decision;
    replaceCard(index);
  }
  showSummary(response.summary);
}

async function decide(action, newCaption) {
  const card = current();
  if (!card || state.deciding) return;  // a second press while the first decision is posted is ignored
  state.deciding = true;
  try {
    const response = await api("/api/decision", {pair_id: card.pair_id, action, new_caption: newCaption ?? null});
    state.decided.push(card.pair_id);
    showDecision(response);
    say(`${card.pair_id}: ${describe(response.decision)}`);
    await move(1);
  } catch (error) {
    say("not saved: " + error.message);
  } finally {
    state.deciding = false;
  }
}

function acceptSuggestion(number) {
  const card = current();
  const suggestion = card && card.suggested_captions && card.suggested_captions[number];
  if (suggestion) decide("fix", suggestion.caption);
}

function editCaption() {
  const card = current();
  if (!card) return;
  const node = document.querySelector(`#cards .card[data-index="${state.focus}"] .caption`);
  const editor = el("textarea", {class: "editor", rows: 2});
  editor.value = card.decision && card.decision.action === "fix" ? card.decision.new_caption : card.caption;
  state.editing = true;
  editor.addEventListener("keydown", event => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      state.editing = false;
      decide("fix", editor.value);
    } else if (event.key === "Escape") {
      state.editing = false;
      replaceCard(state.focus);
    }
    event.stopPropagation();
  });
  node.replaceWith(editor);
  editor.focus();
}

async function undo() {
  try {
    const response = await api("/api/undo", state.decided.length ? {pair_id: state.decided.pop()} : {});
    if (response.pair_id === null) return say("nothing to undo");
    showDecision(response);
    const index = state.cards.findIndex(card => card.pair_id === response.pair_id);
    if (index >= 0) setFocus(index);
    say(`undone: ${response.pair_id} is ${describe(response.decision)}`);
  } catch (error) {
    say("undo failed: " + error.message);
  }
}

// ---- overlays, filters, keys ----

function enlarge(pairId) {
  document.getElementById("overlay-image").src = imageUrl(pairId, null, "large");
  document.getElementById("overlay").hidden = false;
}

function closeOverlays() {
  document.getElementById("overlay").hidden = true;
  document.getElementById("help").hidden = true;
}

function toggleHelp() {
  const help = document.getElementById("help");
  help.hidden = !help.hidden;
}

function readFilters() {
  const form = document.getElementById("filters");
  state.filters = {};
  for (const name of ["label", "category", "state", "q"]) {
    const value = form.elements[name].value.trim();
    if (value) state.filters[name] = value;
  }
  location.hash = new URLSearchParams(state.filters).toString();
}

function restoreFilters() {
  const form = document.getElementById("filters");
  state.filters = Object.fromEntries(new URLSearchParams(location.hash.slice(1)));
  for (const name of ["label", "state", "q"]) form.elements[name].value = state.filters[name] || "";
}

// what each command of the key table (CONFIG.keys) does; a handler gets the key pressed
const COMMANDS = {
  next: () => move(1), previous: () => move(-1), keep: () => decide("keep"), drop: () => decide("drop"),
  fix: () => editCaption(), accept: key => acceptSuggestion(Number(key) - 1), skip: () => move(1), undo: () => undo(),
  enlarge: () => current() && enlarge(current().pair_id), help: toggleHelp, close: closeOverlays,
  next_page: () => state.offset + PAGE_SIZE < state.total && loadPage(state.offset + PAGE_SIZE, 0),
  previous_page: () => state.offset > 0 && loadPage(Math.max(state.offset - PAGE_SIZE, 0), 0),
  search: () => document.querySelector("#filters input[name=q]").focus(),
};
const KEYS = Object.create(null);  // key -> command, from CONFIG.keys

function useConfig(config) {
  CONFIG = config;
  for (const entry of config.keys) for (const key of entry.keys) KEYS[key] = entry.command;
  const help = document.querySelector("#help table");
  help.replaceChildren(...config.keys.map(entry => {
    const row = el("tr");
    row.append(el("td", {}, entry.shown), el("td", {}, entry.help));
    return row;
  }));
  for (const [name, choices] of [["label", config.labels], ["state", config.states]]) {
    const select = document.querySelector(`#filters select[name=${name}]`);
    select.replaceChildren(el("option", {value: ""}, "any"), ...choices.map(choice => el("option", {}, choice)));
  }
}

document.addEventListener("keydown", event => {
  if (state.editing || event.ctrlKey || event.metaKey || event.altKey) return;
  if (["INPUT", "SELECT", "TEXTAREA"].includes(event.target.tagName)) {
    if (event.key === "Escape") event.target.blur();
    return;
  }
  const command = KEYS[event.key];
  if (command) {
    event.preventDefault();
    COMMANDS[command](event.key);
  }
});

document.getElementById("filters").addEventListener("change", () => { readFilters(); loadPage(0, 0, true); });
document.getElementById("filters").addEventListener("submit", event => {
  event.preventDefault();
  readFilters();
  loadPage(0, 0, true);
});
document.getElementById("previous-page").addEventListener("click", () => COMMANDS.previous_page());
document.getElementById("next-page").addEventListener("click", () => COMMANDS.next_page());
document.getElementById("help-button").addEventListener("click", toggleHelp);
document.getElementById("overlay").addEventListener("click", closeOverlays);
document.getElementById("help").addEventListener("click", closeOverlays);
// another tab may have decided in the meantime: the last write wins, so show what the server holds
window.addEventListener("focus", () => {
  if (CONFIG && !state.editing) Promise.all([loadSummary(), loadPage(state.offset, state.focus)]).catch(e => say(e.message));
});

document.getElementById("export").href = withToken("/api/export");
api("/api/config").then(config => {
  useConfig(config);
  restoreFilters();
  return Promise.all([loadSummary(), loadPage(0, 0, true)]);
}).catch(error => say("cannot load the queue: " + error.message));
