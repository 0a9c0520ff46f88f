"""The sandbox: a real local Ray head, a loopback DNS server serving a scenario's zone and the
bundled scenarios. A harness for trying raycheck and for its tests, not part of any check."""
