"""The simulated Hostaway API: a deterministic dataset (``data``) rendered in the documented
JSON shapes (``records``); routes are added with the simulator gateway (partners.md section 2)."""
