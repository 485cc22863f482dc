"""Activity of accounts (daily rollups, opt-out) and the analytics computed from them."""
