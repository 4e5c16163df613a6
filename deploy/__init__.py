"""Deployment of Lead Card behind nginx (`bin/serve`); not part of the runtime package."""
