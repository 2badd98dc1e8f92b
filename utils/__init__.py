"""Building blocks of the Gemini image plugin: one concern per module."""
