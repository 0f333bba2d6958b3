"""Thin HTTP adapters: parse and validate the request, call one service, shape the response."""
