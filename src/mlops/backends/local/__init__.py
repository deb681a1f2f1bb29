"""The local backend: MLflow, a folder registry and inference-server processes on loopback."""
