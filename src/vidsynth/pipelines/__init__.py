"""Pipelines: text→video now; video→video, image→video, long and story pipelines build on it."""
