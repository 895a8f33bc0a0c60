"""Training and exporting deployable models from a project's labels; see usecase.py."""
