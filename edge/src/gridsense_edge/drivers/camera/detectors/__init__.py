"""Detector output decoders, one module per layout, chosen by the model card's ``format``."""

from .base import DECODERS, Decoded
from .card import ModelCard, load_card

DECODERS.load()

__all__ = ["DECODERS", "Decoded", "ModelCard", "load_card"]
