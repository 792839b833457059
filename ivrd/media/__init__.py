"""Sans-IO media: RTP sessions and the port pool."""
