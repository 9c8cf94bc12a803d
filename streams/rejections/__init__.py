"""Rejections flow: client commands an agent refused, kept per requester for the API."""
