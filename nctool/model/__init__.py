"""The retrieval model and its training: open_clip model, checkpoints, transforms, batches, losses, objectives,
the training loop and retrieval evaluation."""
