"""Carts flow: customers fill a cart line by line, check it out as an order, or leave it idle."""
