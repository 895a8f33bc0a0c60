"""The labeling loop: live project states (queue, classifier, refit), decisions, undo, suspects."""
