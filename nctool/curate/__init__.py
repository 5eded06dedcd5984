"""Acting on scores: filtering a dataset and the review page."""
