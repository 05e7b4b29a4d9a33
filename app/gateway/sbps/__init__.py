"""SBPS (SoftBank Payment Service), API type: the wire codec, sps_hashcode, error codes and
request layouts (issue 20). Pure: the HTTP client is built on these."""
