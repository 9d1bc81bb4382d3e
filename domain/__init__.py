"""The devicelab domain: devices, test cases, environments and test runs.

Pure Python (standard library only). Nothing here knows about HTTP, SQL or queues.
"""
