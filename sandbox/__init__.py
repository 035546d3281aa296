"""Local servers that speak the providers\x27 protocols, for tests, benchmarks and trying Kiln without credits."""
