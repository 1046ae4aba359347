"""syncd — keep local drop folders in sync with the OpenAI Files API."""

__version__ = "0.1.0"
