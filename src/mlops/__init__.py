"""The ML engineer's room: the lifecycle of the model from a commit to prod."""
