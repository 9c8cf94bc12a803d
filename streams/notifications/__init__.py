"""Notifications flow: settled orders, low stock and abandoned carts become messages for people."""
