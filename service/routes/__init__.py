"""HTTP routes: each module parses HTTP for one protocol or resource and calls the DataPlane."""
