// nctool review: a card, drawn the same way on the review page (review.js) and in the static
// gallery (`nctool review --static`, which embeds this file and its data in one HTML file).
// Plain DOM, no build step. Every text from the data is set with textContent (never innerHTML):
// captions are untrusted.
"use strict";

function el(tag, attributes = {}, text) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function decisionText(decision, actionNames) {
  if (!decision) return "undecided";
  let text = actionNames[decision.action] || decision.action;
  if (decision.reviewer) text += " by " + decision.reviewer;
  return text;
}

// the caption a pair carries now: the corrected one once it is fixed
function shownCaption(card) {
  return card.decision && card.decision.action === "fix" ? card.decision.new_caption : card.caption;
}

// `view`: imageUrl(pairId, imageId) and actionNames ({keep: kept, ...}) always, lazy ({loading: "lazy"}
// where images come from the server, {} in the gallery whose images are in the file); `controls`
// only where the card can be acted on (the review page; the gallery is read-only):
// {focus(), enlarge(pairId), accept(n), buttons: [[label, key, handler], ...]}.
function renderCard(card, index, view) {
  const controls = view.controls;
  const node = el("article", {class: "card", "data-pair-id": card.pair_id, "data-index": index});
  const picture = el("img", {class: "thumb", src: view.imageUrl(card.pair_id, card.image_id),
                             alt: "image " + card.image_id, ...view.lazy});
  if (controls) picture.addEventListener("click", () => controls.enlarge(card.pair_id));
  const body = el("div", {class: "body"});
  const caption = el("p", {class: "caption"}, shownCaption(card));
  const facts = el("p", {class: "facts"});
  facts.append(el("span", {class: "label label-" + card.label}, card.label),
               el("span", {}, "reliability " + card.reliability.toFixed(4)),
               el("span", {}, card.category || ""), el("span", {}, card.split), el("span", {}, card.pair_id));
  if (card.noisy !== null) facts.append(el("span", {class: "truth"}, card.noisy ? "truly noisy" : "truly clean"));
  for (const [name, value] of Object.entries(card.evidence)) {
    facts.append(el("span", {class: "evidence"}, `${name} ${Number(value).toPrecision(4)}`));
  }
  const decision = el("p", {class: "decision decision-" + (card.decision ? card.decision.action : "none")},
                      decisionText(card.decision, view.actionNames));
  if (card.decision && card.decision.action === "fix") {
    decision.append(el("span", {class: "original"}, " was: " + card.caption));
  }
  body.append(caption, facts, decision);
  if (card.siblings.length) {
    body.append(el("h3", {}, "other captions of this image"));
    const list = el("ul", {class: "siblings"});
    for (const sibling of card.siblings) list.append(el("li", {}, sibling.caption));
    body.append(list);
  }
  if (card.suggested_captions && card.suggested_captions.length) {
    body.append(el("h3", {}, controls ? "suggested captions (press the number to accept)" : "suggested captions"));
    const list = el("ol", {class: "suggestions"});
    card.suggested_captions.forEach((suggestion, i) => {
      const item = el("li", {});
      if (controls) {
        const accept = el("button", {type: "button", class: "accept"}, String(i + 1));
        accept.addEventListener("click", () => { controls.focus(); controls.accept(i); });
        item.append(accept);
      }
      item.append(el("span", {}, " " + suggestion.caption),
                  el("span", {class: "score"}, " " + suggestion.score.toFixed(3)));
      list.append(item);
    });
    body.append(list);
  }
  if (card.suggested_images && card.suggested_images.length) {
    body.append(el("h3", {}, "images that match this caption better"));
    const strip = el("div", {class: "suggested-images"});
    for (const suggestion of card.suggested_images) {
      const image = el("img", {src: view.imageUrl(suggestion.pair_id, suggestion.image_id),
                               alt: "image " + suggestion.image_id,
                               title: `${suggestion.image_id} ${suggestion.score.toFixed(3)}`, ...view.lazy});
      if (controls) image.addEventListener("click", () => controls.enlarge(suggestion.pair_id));
      strip.append(image);
    }
    body.append(strip);
  }
  if (controls) {
    const buttons = el("div", {class: "actions"});
    for (const [label, key, handler] of controls.buttons) {
      const button = el("button", {type: "button", class: "action-" + label}, `${label} (${key})`);
      button.addEventListener("click", () => { controls.focus(); handler(); });
      buttons.append(button);
    }
    body.append(buttons);
    node.addEventListener("click", () => controls.focus());
  }
  node.append(picture, body);
  return node;
}

// the static gallery: its cards and images are a JSON block of the file itself
(function showGallery() {
  const block = document.getElementById("gallery-data");
  if (!block) return;
  const data = JSON.parse(block.textContent);
  const view = {imageUrl: (pairId, imageId) => data.images[imageId], actionNames: data.config.action_names,
                lazy: {}};
  document.getElementById("cards").replaceChildren(...data.cards.map((card, index) => renderCard(card, index, view)));
})();
