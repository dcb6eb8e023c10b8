"""What the kernel says about our sockets (Linux socket tables), for bind-address tests."""

from __future__ import annotations

import ipaddress
from pathlib import Path


def listening_on(port: int) -> set[str]:
    """The addresses a local TCP port listens on, from the kernel's socket tables (Linux)."""
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                raw = bytes.fromhex(address)
                # The kernel prints each 32-bit word in host (little-endian) order.
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
                found.add(str(ipaddress.ip_address(words[-4:] if width == 8 else words)))
    return found
