"""Background jobs (import, embed, predict, model check) and the interactive client's workspace."""
