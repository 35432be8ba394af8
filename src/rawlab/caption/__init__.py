"""The caption frame: a white or black border with the shot's settings."""

from rawlab.caption.border import CaptionLayout, add_caption_border, caption_layout, caption_strings, render_caption_border

__all__ = ["CaptionLayout", "add_caption_border", "caption_layout", "caption_strings", "render_caption_border"]
