"""The Cloudbeds profile of the simulator: its dataset (``data``), answering the documented
methods (partners.md section 3); the gateway's routes call into it."""
