"""The flow language (YAML IVR flows)."""
