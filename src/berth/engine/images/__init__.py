"""Images in the engine: records and tags (``service``) and the operations on them."""

from berth.engine.images.service import Image, ImageService

__all__ = ["Image", "ImageService"]
