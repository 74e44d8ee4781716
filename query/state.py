"""What one API process holds: the model, its batcher and (later) catalog and search engines."""

from __future__ import annotations

from dataclasses import dataclass

from chatda.batching.batcher import DynamicBatcher
from chatda.models.encoder import Encoder
from chatda.settings import Settings


@dataclass
class ApiState:
    settings: Settings
    encoder: Encoder
    batcher: DynamicBatcher
