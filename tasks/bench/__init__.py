"""Speed benchmarks (`howto bench ...`): each measures our path against a naive one in the same run; not pipeline work."""
