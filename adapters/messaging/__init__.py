"""Messaging adapters (kombu): arriving with the job-queue issue."""
