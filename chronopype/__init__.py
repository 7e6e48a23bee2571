"""chronopype: time-driven, network-aware processors."""
