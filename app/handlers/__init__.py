"""Thin handlers: load the payload with a schema, call one service, shape the reply."""
