"""revimg has no models of its own. This module's presence makes Django send post_migrate for the app,
which creates the shared cache's table (revimg.apps)."""
