"""Amaranth gateware of the zeroskip accelerator: PE → array → decoder lanes → accelerator."""
