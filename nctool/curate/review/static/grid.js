// nctool review: the grid view's tile (review.js lays the tiles out, selects them and acts on them).
// Plain DOM, no build step. Every text from the data is set with textContent or as an attribute's
// value (never innerHTML): captions are untrusted.
"use strict";

// A tile: the thumbnail, the caption clamped to a few lines (all of it in the tooltip), the label,
// the detector's chance of noise (the reliability where it has none) and the decision, whose state
// colours the border. `view`: {imageUrl(pairId, imageId), actionNames, selected (bool),
// click(index, event), open(index)}.
function renderTile(card, index, view) {
  const state = card.decision ? card.decision.action : "none";
  const node = el("figure", {class: `tile state-${state}${view.selected ? " selected" : ""}`,
                             "data-pair-id": card.pair_id, "data-index": index});
  const caption = shownCaption(card);
  const stated = card.noisy_probability !== null && card.noisy_probability !== undefined;
  const chance = el("span", {class: "chance", title: `reliability ${card.reliability}` +
                               (stated ? `, noisy probability ${card.noisy_probability}` : "")},
                    stated ? `noise ${(100 * card.noisy_probability).toFixed(0)} %` : `rel. ${card.reliability.toFixed(3)}`);
  const facts = el("p", {class: "facts"});
  facts.append(el("span", {class: "label label-" + card.label}, card.label), chance);
  node.append(el("img", {class: "thumb", src: view.imageUrl(card.pair_id, card.image_id),
                         alt: "image " + card.image_id, loading: "lazy"}),
              el("figcaption", {class: "caption", title: caption}, caption), facts,
              el("p", {class: "decision decision-" + state}, decisionText(card.decision, view.actionNames)));
  node.addEventListener("click", event => view.click(index, event));
  node.addEventListener("dblclick", () => view.open(index));
  return node;
}
