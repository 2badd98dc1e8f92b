"""Shared by every side: typed settings, the exception hierarchy, time, workers, keys."""
