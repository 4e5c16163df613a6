"""web: Flask views, security headers, error pages, static files and templates' helpers, the
gunicorn worker. The top layer: may import everything below, nothing imports it (but
app.py and the command line)."""
