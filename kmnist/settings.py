"""What this app may do, switched by environment variables: public mode and training.

Environment variables rather than `.streamlit/config.toml`: Streamlit's config has no room for an
app's own settings, and the CLI and background jobs read them too.
"""
from __future__ import annotations

import os


def _flag(name: str, default: bool) -> bool:
    """An on/off environment variable: 0, false, no and off are off; unset or empty is `default`."""
    value = os.environ.get(name, "").strip().lower()
    return default if not value else value not in ("0", "false", "no", "off")


def public_mode() -> bool:
    """Whether the app is served to anyone (KMNIST_PUBLIC=1): then nothing a visitor does writes on the server.

    Training, activation, dataset downloads, map computing and deletions are off, and the app shows no
    exception details.
    """
    return _flag("KMNIST_PUBLIC", False)


def training_allowed() -> bool:
    """Whether this app may start trainings and activate models: not with KMNIST_ALLOW_TRAINING=0 nor in public mode."""
    return not public_mode() and _flag("KMNIST_ALLOW_TRAINING", True)
