// nctool review: the page. Plain DOM, no build step; a card is drawn by cards.js (loaded first,
// shared with the static gallery), a grid tile by grid.js. Every text from the data is set with
// textContent (never innerHTML): captions are untrusted. The keys, the help and the filter choices
// come from the server (/api/config, nctool.curate.review.page).
//
// Two views of the same queue: the cards (one pair at a time) and the grid (many tiles, selected
// with clicks and keys; `a` / `d` decide the selection as one bulk action). The filters, the order
// and the view live in the URL's hash.
"use strict";

const PAGE_SIZES = {cards: 25, grid: 60};
const LABEL_COLOURS = {noisy: "#d1495b", ambiguous: "#edae49", clean: "#00798c"};
let CONFIG = null;  // /api/config: {keys, labels, states, orders, order_help, actions, action_names}

const state = {filters: {}, view: "cards", offset: 0, total: 0, cards: [], focus: 0, decided: [], editing: false,
               deciding: false, selected: new Set(), anchor: null, rule: null, blind: null};
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
  if (!response.ok) {
    const error = new Error(data.error || response.statusText);
    error.status = response.status;
    throw error;
  }
  return data;
}

function pairs(count) {
  return `${count} pair${count === 1 ? "" : "s"}`;
}

function percent(share, digits = 1) {
  return (100 * share).toFixed(digits);
}

function linkButton(text, onClick) {
  const button = el("button", {type: "button", class: "link"}, text);
  button.addEventListener("click", onClick);
  return button;
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
  // the lines are the server's (nctool.curate.review.queue: audit_text, audit_labels_text, learned_text,
  // agreement_text)
  showAudit(summary.audit, summary.audit_text, summary.audit_labels_text);
  showLearned(summary.learned, summary.learned_text);
  showAgreement(summary.agreement, summary.agreement_text);
  const blind = document.getElementById("blind");
  state.blind = summary.blind;
  blind.hidden = summary.blind === null;
  blind.textContent = summary.blind === null ? "" : "blind review: " + summary.blind;
  blind.title = "only your own decisions are shown; the other reviewer's page reports how you agree";
  drawHistogram(summary);
}

// the noise share audited from the audit order's random sample (nctool.curate.review.audit): the figure to quote
function showAudit(audit, text, labelsText) {
  const line = document.getElementById("audit");
  for (const name of ["estimate", "low", "high", "decided", "skipped", "sample"]) line.dataset[name] = audit[name];
  line.replaceChildren(text);
  if (audit.estimate === null) line.append(" ", linkButton("open the audit order", () => setFilter("order", "audit")));
  line.title = `a uniform random sample: the audit order's first ${audit.sample} of ${audit.population} pairs ` +
               `(${audit.noisy} noisy of ${audit.decided} decided); the interval holds the share with ` +
               `${percent(audit.level, 0)} % confidence`;
  // each label's audited pairs against the rate it was stated with; hidden until the audit states a share
  const checked = document.getElementById("audit-labels");
  checked.textContent = labelsText;
  checked.hidden = !labelsText;
  checked.title = "the audit sample's decided pairs of each label: the share of noise among them, against the " +
                  "rate the label was stated with";
}

// the curator's model (nctool.curate.review.learning): what the learned order and its estimate stand on
function showLearned(learned, text) {
  const line = document.getElementById("learned");
  line.dataset.estimate = learned.estimate;
  line.textContent = text;
  line.title = "a model of your decisions re-ranks the learned and uncertain orders; its estimate leans on the " +
               "model where you have not looked, so quote the audit";
}

// two reviewers' agreement on noise against keep, with the way to their disagreements
function showAgreement(agreement, text) {
  const line = document.getElementById("agreement");
  line.hidden = agreement === null;
  if (agreement === null) return line.replaceChildren();
  line.dataset.kappa = agreement.kappa;
  line.dataset.agree = agreement.agree;
  line.replaceChildren(text);
  if (agreement.disagree) line.append(" ", linkButton("show them", () => setFilter("state", "disagreed")));
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
  if (summary.blind !== null) {  // a blind review has no other reviewer's decisions to disagree with
    for (const option of document.querySelectorAll("#filters select[name=state] option")) {
      if (option.value === "disagreed") option.remove();
    }
  }
}

// ---- cards and tiles ----

function describe(decision) {
  return decisionText(decision, CONFIG.action_names);
}

function keyOf(command) {
  return CONFIG.keys.find(key => key.command === command).shown;
}

function pageSize() {
  return PAGE_SIZES[state.view];
}

function cardView(index) {
  return {imageUrl, actionNames: CONFIG.action_names, lazy: {loading: "lazy"}, controls: {
    focus: () => setFocus(index), enlarge, accept: acceptSuggestion,
    buttons: ["keep", "drop", "fix", "skip", "undo"].map(command => [command, keyOf(command), COMMANDS[command]])}};
}

function tileView(card) {
  return {imageUrl, actionNames: CONFIG.action_names, selected: state.selected.has(card.pair_id), click: clickTile,
          open: index => { setFocus(index); enlarge(state.cards[index].pair_id); }};
}

function drawItem(index) {
  const card = state.cards[index];
  return state.view === "grid" ? renderTile(card, index, tileView(card)) : renderCard(card, index, cardView(index));
}

function itemNode(index) {
  return document.querySelector(`#cards > [data-index="${index}"]`);
}

function showCards() {
  const main = document.getElementById("cards");
  main.className = state.view;
  main.replaceChildren(...state.cards.map((card, index) => drawItem(index)));
  if (!state.cards.length) main.append(el("p", {class: "empty"}, "no pairs match these filters"));
  const last = Math.min(state.offset + state.cards.length, state.total);
  document.getElementById("position").textContent =
    state.total ? `${state.offset + 1}\u2013${last} of ${state.total}` : "0 of 0";
  document.getElementById("view-toggle").textContent =
    `${state.view === "grid" ? "cards" : "grid"} (${keyOf("grid")})`;
  setFocus(Math.min(state.focus, Math.max(state.cards.length - 1, 0)));
  showSelection();
}

function replaceCard(index) {
  const old = itemNode(index);
  if (old) old.replaceWith(drawItem(index));
}

function setFocus(index) {
  state.focus = index;
  document.querySelectorAll("#cards > .focused").forEach(node => node.classList.remove("focused"));
  const node = itemNode(index);
  if (node) {
    node.classList.add("focused");
    node.scrollIntoView({block: "nearest"});
  }
}

function queueQuery(extra) {
  const params = new URLSearchParams({limit: pageSize(), ...extra});
  for (const [name, value] of Object.entries(state.filters)) if (value) params.set(name, value);
  return "/api/queue?" + params.toString();
}

// `keepSelection`: the same page drawn again (another tab may have decided): what is still on it stays selected
async function loadPage(offset, focus, resume = false, keepSelection = false) {
  const page = await api(queueQuery(resume ? {resume: 1} : {offset}));
  state.offset = page.offset;
  state.total = page.total;
  state.cards = page.cards;
  state.focus = resume ? page.focus - page.offset : focus;
  const shown = new Set(page.cards.map(card => card.pair_id));
  state.selected = keepSelection ? new Set([...state.selected].filter(id => shown.has(id))) : new Set();
  if (!keepSelection) state.anchor = null;
  showCards();
}

function toggleView() {
  const place = state.offset + state.focus;  // the focused pair stays focused in the other view
  state.view = state.view === "grid" ? "cards" : "grid";
  writeHash();
  const offset = place - place % pageSize();
  return loadPage(offset, place - offset);
}

// ---- the grid's selection ----

function showSelection() {
  const bar = document.getElementById("selection");
  bar.hidden = state.view !== "grid";
  for (const node of document.querySelectorAll("#cards > .tile")) {
    node.classList.toggle("selected", state.selected.has(node.dataset.pairId));
  }
  document.getElementById("selection-count").textContent = `${state.selected.size} selected`;
  for (const button of document.querySelectorAll("#selection-buttons .needs-selection")) {
    button.disabled = state.selected.size === 0;
  }
}

function clickTile(index, event) {
  const pairId = state.cards[index].pair_id;
  if (event.shiftKey && state.anchor !== null && state.anchor < state.cards.length) {
    const [from, to] = [Math.min(state.anchor, index), Math.max(state.anchor, index)];
    for (let i = from; i <= to; i++) state.selected.add(state.cards[i].pair_id);
  } else if (!state.selected.delete(pairId)) {
    state.selected.add(pairId);
  }
  state.anchor = index;
  setFocus(index);
  showSelection();
}

function inGrid() {
  if (state.view !== "grid") say(`select in the grid: ${keyOf("grid")} shows it`);
  return state.view === "grid";
}

function toggleFocused() {
  const card = current();
  if (!card || !inGrid()) return;
  if (!state.selected.delete(card.pair_id)) state.selected.add(card.pair_id);
  state.anchor = state.focus;
  showSelection();
}

function selectUndecided() {
  if (!inGrid()) return;
  for (const card of state.cards) if (!card.decision) state.selected.add(card.pair_id);
  showSelection();
}

function invertSelection() {
  if (!inGrid()) return;
  for (const card of state.cards) if (!state.selected.delete(card.pair_id)) state.selected.add(card.pair_id);
  showSelection();
}

// the tiles per row of the grid as laid out now (j / k move by a row)
function columns() {
  const tiles = [...document.querySelectorAll("#cards > .tile")];
  const first = tiles.length ? tiles[0].offsetTop : 0;
  return Math.max(1, tiles.filter(tile => tile.offsetTop === first).length);
}

// ---- actions ----

function current() {
  return state.cards[state.focus];
}

async function move(step) {
  const target = state.focus + step;
  if (target >= 0 && target < state.cards.length) return setFocus(target);
  if (step > 0 && state.offset + state.cards.length < state.total) return loadPage(state.offset + pageSize(), 0);
  if (step < 0 && state.offset > 0) return loadPage(Math.max(state.offset - pageSize(), 0), pageSize() - 1);
}

// the decisions a write answered with ({pair_id: decision or null}): each pair shown is drawn again
function showDecisions(decisions, summary) {
  for (const [pairId, decision] of Object.entries(decisions)) {
    const index = state.cards.findIndex(card => card.pair_id === pairId);
    if (index >= 0) {
      state.cards[index].decision = decision;
      replaceCard(index);
    }
  }
  setFocus(state.focus);
  showSelection();
  showSummary(summary);
}

async function decide(action, newCaption) {
  const card = current();
  if (!card || state.deciding) return;  // a second press while the first decision is posted is ignored
  state.deciding = true;
  try {
    const response = await api("/api/decision", {pair_id: card.pair_id, action, new_caption: newCaption ?? null});
    state.decided.push(card.pair_id);
    showDecisions({[response.pair_id]: response.decision}, response.summary);
    say(`${card.pair_id}: ${describe(response.decision)}`);
    await move(1);
  } catch (error) {
    say("not saved: " + error.message);
  } finally {
    state.deciding = false;
  }
}

// `a` / `d`: the grid's selection as one bulk action when tiles are selected, else the focused pair
function keepOrDrop(action) {
  return state.view === "grid" && state.selected.size ? decideSelected(action) : decide(action);
}

async function decideSelected(action) {
  if (state.deciding) return;
  const pairIds = state.cards.map(card => card.pair_id).filter(pairId => state.selected.has(pairId));
  state.deciding = true;
  try {
    const response = await api("/api/bulk", {action, pair_ids: pairIds});
    state.decided.push(response.pair_ids[0]);  // undoing one pair of a bulk action undoes all of it
    state.selected.clear();
    showDecisions(response.decisions, response.summary);
    say(`${CONFIG.action_names[action]} ${pairs(response.pair_ids.length)} as one bulk action ` +
        `(${response.batch.batch}); ${keyOf("undo")} takes all of them back`);
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

async function editCaption() {
  if (state.view === "grid") await toggleView();  // a caption is edited on its card
  const card = current();
  if (!card) return;
  const node = itemNode(state.focus).querySelector(".caption");
  const editor = el("textarea", {class: "editor", rows: 2});
  editor.value = shownCaption(card);
  state.editing = true;
  editor.addEventListener("keydown", event => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      state.editing = false;
      decide("fix", editor.value);
    } else if (event.key === "Escape") {
      state.editing = false;
      replaceCard(state.focus);
      setFocus(state.focus);
    }
    event.stopPropagation();
  });
  node.replaceWith(editor);
  editor.focus();
}

async function undo() {
  try {
    const response = await api("/api/undo", state.decided.length ? {pair_id: state.decided.pop()} : {});
    if (!response.pair_ids.length) return say("nothing to undo");
    showDecisions(response.decisions, response.summary);
    const index = state.cards.findIndex(card => card.pair_id === response.pair_ids[0]);
    if (index >= 0) setFocus(index);
    const [first] = response.pair_ids;
    say(response.pair_ids.length > 1 ? `undone: bulk action of ${response.pair_ids.length} pairs`
                                     : `undone: ${first} is ${describe(response.decisions[first])}`);
  } catch (error) {
    say("undo failed: " + error.message);
  }
}

// ---- the rule: drop every undecided pair of the filter above a noisy probability ----

function ruleFilters() {
  // the pairs a rule covers are the filter's undecided ones, whatever the decision filter says
  return Object.fromEntries(Object.entries(state.filters).filter(([name, value]) => name !== "state" && value));
}

function clearRule() {
  state.rule = null;
  document.getElementById("rule-preview").textContent = "";
  document.getElementById("rule-confirm").hidden = true;
}

async function previewRule(cut, note) {
  const filters = ruleFilters();
  try {
    const preview = await api("/api/rule?" + new URLSearchParams({...filters, min_noisy_probability: cut}));
    state.rule = {filters, cut, pairs: preview.pairs};
    const shown = document.getElementById("rule-preview");
    shown.dataset.pairs = preview.pairs;
    shown.dataset.expected = preview.expected_noise;
    shown.textContent = (note ? note + ": " : "") + (preview.pairs
      ? `${pairs(preview.pairs)}, expected ${percent(preview.expected_noise, 0)} % noise` : "no pair");
    shown.title = preview.rule;
    const confirm = document.getElementById("rule-confirm");
    confirm.hidden = preview.pairs === 0;
    confirm.textContent = `drop ${preview.pairs === 1 ? "this pair" : "these " + pairs(preview.pairs)}`;
  } catch (error) {
    clearRule();
    say("rule: " + error.message);
  }
}

async function applyRule() {
  const rule = state.rule;
  if (!rule || state.deciding) return;
  state.deciding = true;
  try {
    const response = await api("/api/bulk", {action: "drop", rule: {...rule.filters, min_noisy_probability: rule.cut},
                                             expect: rule.pairs});
    state.decided.push(response.pair_ids[0]);
    clearRule();
    showSummary(response.summary);
    say(`${CONFIG.action_names.drop} ${pairs(response.pair_ids.length)} as one bulk action ` +
        `(${response.batch.batch}: ${response.batch.rule}); ${keyOf("undo")} takes all of them back`);
    await loadPage(state.offset, state.focus, false, true);  // pairs of other pages changed too
  } catch (error) {
    if (error.status === 409) {  // decisions were made since the preview: show what the rule covers now
      await previewRule(rule.cut, "changed meanwhile");
      say("not saved: " + error.message);
    } else {
      say("not saved: " + error.message);
    }
  } finally {
    state.deciding = false;
  }
}

function focusRule() {
  const input = document.querySelector("#rule input[name=cut]");
  input.focus();
  input.select();
}

// ---- overlays, filters, keys ----

function enlarge(pairId) {
  document.getElementById("overlay-image").src = imageUrl(pairId, null, "large");
  document.getElementById("overlay").hidden = false;
}

function closeOverlays() {
  const open = !document.getElementById("overlay").hidden || !document.getElementById("help").hidden;
  document.getElementById("overlay").hidden = true;
  document.getElementById("help").hidden = true;
  return open;
}

function closeOrClear() {
  if (closeOverlays() || !state.selected.size) return;
  state.selected.clear();
  showSelection();
}

function toggleHelp() {
  const help = document.getElementById("help");
  help.hidden = !help.hidden;
}

function writeHash() {
  const params = new URLSearchParams(state.filters);
  if (state.view === "grid") params.set("view", "grid");
  location.hash = params.toString();
}

function readFilters() {
  const form = document.getElementById("filters");
  state.filters = {};
  for (const name of ["label", "category", "state", "q", "order"]) {
    const value = form.elements[name].value.trim();
    if (value && !(name === "order" && value === CONFIG.orders[0])) state.filters[name] = value;
  }
  form.elements.order.title = CONFIG.order_help[form.elements.order.value] || "";
  writeHash();
}

function restoreFilters() {
  const form = document.getElementById("filters");
  const params = new URLSearchParams(location.hash.slice(1));
  state.view = params.get("view") === "grid" ? "grid" : "cards";
  params.delete("view");
  state.filters = Object.fromEntries(params);
  for (const name of ["label", "state", "q"]) form.elements[name].value = state.filters[name] || "";
  form.elements.order.value = state.filters.order || CONFIG.orders[0];
  form.elements.order.title = CONFIG.order_help[form.elements.order.value] || "";
}

function filtersChanged() {
  readFilters();
  clearRule();
  return loadPage(0, 0, true).catch(error => say(error.message));
}

function setFilter(name, value) {
  document.getElementById("filters").elements[name].value = value;
  return filtersChanged();
}

// what each command of the key table (CONFIG.keys) does; a handler gets the key pressed
const COMMANDS = {
  next: () => move(state.view === "grid" ? columns() : 1),
  previous: () => move(state.view === "grid" ? -columns() : -1),
  right: () => move(1), left: () => move(-1),
  keep: () => keepOrDrop("keep"), drop: () => keepOrDrop("drop"),
  fix: () => editCaption(), accept: key => acceptSuggestion(Number(key) - 1), skip: () => move(1), undo: () => undo(),
  grid: () => toggleView(), select: toggleFocused, select_undecided: selectUndecided, invert: invertSelection,
  rule: focusRule,
  enlarge: () => current() && enlarge(current().pair_id), help: toggleHelp, close: closeOrClear,
  next_page: () => state.offset + pageSize() < state.total && loadPage(state.offset + pageSize(), 0),
  previous_page: () => state.offset > 0 && loadPage(Math.max(state.offset - pageSize(), 0), 0),
  search: () => document.querySelector("#filters input[name=q]").focus(),
};
const KEYS = Object.create(null);  // key -> command, from CONFIG.keys

// the selection bar's buttons: their commands' keys from the key table
const SELECTION_BUTTONS = [["keep selected", "keep", true], ["drop selected", "drop", true],
                           ["select undecided", "select_undecided", false], ["invert", "invert", false],
                           ["clear", "close", true]];

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
  document.querySelector("#filters select[name=order]").replaceChildren(
    ...config.orders.map(order => el("option", {value: order, title: config.order_help[order]}, order)));
  document.getElementById("selection-buttons").replaceChildren(...SELECTION_BUTTONS.map(([label, command, needs]) => {
    const button = el("button", {type: "button", class: "action-" + command + (needs ? " needs-selection" : "")},
                      `${label} (${keyOf(command)})`);
    button.addEventListener("click", () => COMMANDS[command]());
    return button;
  }));
}

document.addEventListener("keydown", event => {
  if (state.editing || event.ctrlKey || event.metaKey || event.altKey) return;
  if (["INPUT", "SELECT", "TEXTAREA"].includes(event.target.tagName)) {
    if (event.key === "Escape") event.target.blur();
    return;
  }
  const command = KEYS[event.key];
  if (command) {
    event.preventDefault();  // Space and the arrows do not scroll, and a focused button is not pressed
    COMMANDS[command](event.key);
  }
});
// a clicked button gives the focus back, so that the keys (Space among them) reach the page's handler
document.addEventListener("click", event => {
  const button = event.target.closest && event.target.closest("button");
  if (button) button.blur();
});

document.getElementById("filters").addEventListener("change", filtersChanged);
document.getElementById("filters").addEventListener("submit", event => {
  event.preventDefault();
  filtersChanged();
});
document.getElementById("rule").addEventListener("submit", event => {
  event.preventDefault();
  document.activeElement.blur();
  previewRule(Number(event.target.elements.cut.value));
});
document.querySelector("#rule input[name=cut]").addEventListener("input", clearRule);
document.getElementById("rule-confirm").addEventListener("click", applyRule);
document.getElementById("view-toggle").addEventListener("click", () => COMMANDS.grid());
document.getElementById("previous-page").addEventListener("click", () => COMMANDS.previous_page());
document.getElementById("next-page").addEventListener("click", () => COMMANDS.next_page());
document.getElementById("help-button").addEventListener("click", toggleHelp);
document.getElementById("overlay").addEventListener("click", closeOverlays);
document.getElementById("help").addEventListener("click", closeOverlays);
// another tab may have decided in the meantime: the last write wins, so show what the server holds
window.addEventListener("focus", () => {
  if (CONFIG && !state.editing) {
    loadSummary().then(() => loadPage(state.offset, state.focus, false, true)).catch(e => say(e.message));
  }
});

document.getElementById("export").href = withToken("/api/export");
api("/api/config").then(config => {
  useConfig(config);
  restoreFilters();
  // one after the other: the server's /api/summary re-reads the decisions, and a queue asked for meanwhile
  // could show pairs as undecided
  return loadSummary().then(() => loadPage(0, 0, true));
}).catch(error => say("cannot load the queue: " + error.message));
