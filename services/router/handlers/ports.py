"""What handlers need from the world, as types: the adapters implement them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

Clock = Callable[[], datetime]
