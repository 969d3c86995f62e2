"""Canvases: documents agents present to people, edited live, with forms, charts and custom components."""
