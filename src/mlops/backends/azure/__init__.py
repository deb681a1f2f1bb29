"""The azure backend: azure-ai-ml against the environment's workspace and the shared registry."""
