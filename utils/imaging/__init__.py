"""The picture side: decoding, validation and storage, reference images, downloads, cleanup."""
