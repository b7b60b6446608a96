"""The roles a user can have, strongest first (apart from the models: the CLI's help names them
without loading the database layer)."""

ROLES = ("admin", "reviewer", "annotator")
