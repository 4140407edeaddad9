"""One subpackage per fake partner, each exporting ``PROFILE`` (see ``syncd.simulator.profile``)."""
