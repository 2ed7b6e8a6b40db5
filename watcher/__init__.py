"""Watches DigitalOcean GenAI knowledge-base indexing jobs and alerts through apprise."""
