"""Conversion from base checkpoints, publishing to the Hub, and card rendering."""

from .conversion import convert_checkpoint, export_text_model
from .publish import push_dataset, push_model


__all__ = ["convert_checkpoint", "export_text_model", "push_dataset", "push_model"]
