"""One module per page (or group of pages), each with a `router = PageRouter()`; listed in web/routes.py."""
