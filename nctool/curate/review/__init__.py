"""`nctool review`: a local web page where a curator reviews the pairs a detector flagged.

- `queue.ReviewQueue`: the index built once at start (no image decoded), the filtered, paged queue
  in one of its orders (lowest reliability first by default; learned, uncertain, category, audit),
  the cards, the rules of bulk actions and the header's summary.
- `learning`: the curator's model (a logistic regression on the detectors' evidence, refitted after
  every few decisions) behind the learned and uncertain orders.
- `audit`: the audit order (uniform random, fixed by pair ids), the audited noise share and two
  reviewers' agreement.
- `thumbnails.Thumbnails`: resized JPEGs by row, decoded on demand and cached.
- `server`: the Starlette app (`review_app`), `bind` / `serve` with uvicorn, `export`, `findings`.
- `security.Guard`: what a request needs (its host, the launch's token, a same-origin JSON write)
  and the headers every response carries.
- `page`: the page's one table of keys and its filter choices (`/api/config`).
- `gallery.write_gallery`: one self-contained HTML file of the lowest-reliability pairs, its cards
  drawn by the page's own renderer (`static/cards.js`), read-only.
- `static/`: the page (plain HTML, JS and CSS; no build step): `review.js` the page, `cards.js` a card
  (shared with the gallery), `grid.js` a tile of the grid view.

Decisions live in a `nctool.data.decisions.DecisionStore` (SQLite beside the scores by default).
`nctool.curate.labelstudio` hands the same queue to Label Studio and reads its annotations back.
"""
