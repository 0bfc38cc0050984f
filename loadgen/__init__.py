"""The load generator: the Locust image's files (locustfile.py, hdr_config.py). A package so that
the runner can import the shared settings as loadgen.hdr_config; Locust itself loads the
locustfile by path, not as part of this package."""
