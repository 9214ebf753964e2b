"""Helpers shared by the tests and the benches: farm and gateway processes, free ports, a
private Redis, the search engine node, alert payloads and batches, fault-test checks.

Test modules and benches import helpers only from here (fixtures come from tests/conftest.py),
never from another test module; tests/test_test_layout.py holds everyone to that.
"""
