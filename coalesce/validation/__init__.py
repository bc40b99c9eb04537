"""The validation of the market: the paper's Table II on agents that really differ (see `run`)."""
