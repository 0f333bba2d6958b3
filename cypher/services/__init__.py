"""Cypher's domain: plain Python, free of Flask. Blueprints call these; tests call them directly."""
