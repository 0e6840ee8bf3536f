"""The RunPod worker: validates a job, drives ComfyUI, uploads results to R2, explains model faults.

This package is deployed alone (copied into the Docker image and into local image snapshots under
other package names), so it uses relative imports only and imports nothing from goldgate/ or service/.
"""
