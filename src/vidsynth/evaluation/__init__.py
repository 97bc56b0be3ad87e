"""Evaluation of vidsynth's models against the shapes world's judge."""
