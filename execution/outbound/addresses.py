"""What an address is (docs/security.md "Outbound connections"): one host name or IP literal.

``host_problem`` is the one syntax rule for every host the product connects to: an asset's
address (checked at save by ``Asset.clean``, on every Asset Service answer, and again at
connect by the guard) and the host of every outbound URL. ``special_kind`` names the address
classes the guard refuses unless a superuser or the operator opened them.

Why so strict: each refused form was an escape. libpq reads ``a,/socket/dir`` as a host list
and ``/dir`` as a unix socket (the product's own database, trust authentication); the C
resolver reads ``2130706433``, ``0177.0.0.1``, ``0x7f.1`` and ``127.1`` as 127.0.0.1; ``%``
introduces an IPv6 zone id; ``=`` and whitespace are connection-string syntax.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import ipaddress
import re
import socket
import unicodedata

MAX_NAME_LENGTH = 253
# A DNS label, lowercase: letters, digits, hyphen (not at either end) and underscore (seen in
# real internal names); the name's last label is never all digits (that is a numeric form).
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Where clouds answer with instance credentials. Some are link-local or private anyway; the
# kind is named so the refusal says what it is, and only an opening that names the exact
# address opens one (a network such as 169.254.0.0/16 never does).
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean ...
        "169.254.170.2",  # AWS ECS task credentials
        "169.254.169.123",  # AWS time sync
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "fd00:ec2::23",
        "100.100.100.200",  # Alibaba Cloud
        "168.63.129.16",  # Azure WireServer (a public address)
        "192.0.0.192",  # Oracle Cloud
    )
)
# IPv6 forms that carry an IPv4 address a gateway may translate to (NAT64, 6to4).
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT
# RFC 1918 and RFC 4193; other ranges Python calls private (documentation, benchmarking,
# 240/4 ...) are named "reserved".
_PRIVATE = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)


def _has_control_or_space(text: str) -> bool:
    return any(ch.isspace() or unicodedata.category(ch)[0] in ("C", "Z") for ch in text)


def ip_literal(host: str) -> IPAddress | None:
    """The address when ``host`` is an IPv4 dotted quad or an IPv6 literal (bare or in
    brackets), else None. Zone ids are not literals here (``host_problem`` refuses them)."""
    text = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if "%" in text:
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _numeric_ipv4_form(host: str) -> bool:
    """Does the C resolver read ``host`` as an IPv4 address (inet_aton: decimal, octal, hex,
    and the short forms ``127.1``), although it is no dotted quad?"""
    try:
        socket.inet_aton(host)
    except OSError:
        return False
    return True


def host_problem(host: str) -> str | None:
    """None when ``host`` is one host name or IP literal, else why not (one line).

    Accepted: a DNS name in ASCII (IDNA ``xn--`` form for international names, one trailing
    dot allowed), an IPv4 dotted quad, an IPv6 literal (bare or in brackets, no zone id).
    """
    if not host:
        return "is empty"
    if _has_control_or_space(host):
        return "holds whitespace or control characters"
    if "," in host:
        return "is a list of hosts (a comma): an address is one host"
    if host.startswith(("/", "@")) or "/" in host or "\\" in host:
        return "is a path (a unix socket or a URL), not a host reached over the network"
    if "%" in host:
        return "has an IPv6 zone id (%): scoped link-local addresses are not targets"
    if any(ch in host for ch in "=?#'\"&;"):
        return "holds connection-string or URL syntax (= ? # quotes & ;)"
    if "@" in host:
        return "holds user information (@): an address is a host only"
    if ip_literal(host) is not None:
        return None
    if ":" in host or "[" in host or "]" in host:
        return "is neither a host name nor an IP address (a port goes in the port field)"
    if not host.isascii():
        return "is not ASCII: write an international name in its IDNA form (xn--...)"
    name = host.lower()
    if _numeric_ipv4_form(name):
        return "is a numeric IPv4 form other than a dotted quad (2130706433, 0177.0.0.1, 0x7f.1, 127.1)"
    name = name[:-1] if name.endswith(".") else name
    if len(name) > MAX_NAME_LENGTH:
        return f"is longer than {MAX_NAME_LENGTH} characters"
    labels = name.split(".")
    if not all(_LABEL.fullmatch(label) for label in labels):
        return "is not a host name (labels of letters, digits, '-' and '_', 63 characters at most)"
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        return "ends in a numeric label: neither a host name nor a dotted-quad address"
    return None


def port_problem(port: object) -> str | None:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        return "must be a number from 1 to 65535"
    return None


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (IPv4-mapped, NAT64, 6to4), if any."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if any(ip in network for network in _NAT64):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def special_kind(ip: IPAddress) -> str | None:
    """The class of a special address (refused unless opened), None for a public one."""
    embedded = embedded_ipv4(ip)
    if embedded is not None:
        inner = special_kind(embedded)
        return f"{inner} (as {ip})" if inner else None
    if ip in METADATA_ADDRESSES:
        return "cloud metadata"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED:
        return "shared (carrier-grade NAT)"
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return "site-local"
    if any(ip in network for network in _PRIVATE if network.version == ip.version):
        return "private"
    if ip.is_reserved or not ip.is_global:
        return "reserved"
    return None


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclasses.dataclass(frozen=True)
class Opening:
    """A network the guard may reach although it is special, opened by the operator
    (``OUTBOUND_OPEN_NETWORKS``) or a superuser (an outbound rule that opens special
    addresses). With a port it opens that port only, and only such an opening reaches the
    product's own ports; a cloud-metadata address is opened only by an opening of that one
    address."""

    network: IPNetwork
    port: int | None = None

    def covers(self, ip: IPAddress, port: int) -> bool:
        # An IPv4-mapped address is that IPv4 address (NAT64 and 6to4 reach another host).
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return ip.version == self.network.version and ip in self.network and self.port in (None, port)

    def names(self, ip: IPAddress, port: int) -> bool:
        """Does it open exactly this address (a /32 or /128)?"""
        return self.covers(ip, port) and self.network.num_addresses == 1

    def __str__(self) -> str:
        if self.port is None:
            return str(self.network)
        address = self.network.network_address if self.network.num_addresses == 1 else self.network
        return f"[{address}]:{self.port}" if self.network.version == 6 else f"{address}:{self.port}"


def parse_opening(text: str) -> Opening:
    """``10.0.0.0/8``, ``10.1.2.3``, ``10.1.2.3:8000``, ``::1``, ``fd00::/8``, ``[::1]:8000``
    -> Opening; ValueError with the reason otherwise."""
    text = text.strip()
    port_text: str | None = None
    if text.startswith("["):
        address_text, closed, rest = text[1:].partition("]")
        if not closed or (rest and not rest.startswith(":")):
            raise ValueError(f"{text!r}: write an IPv6 address with a port as [address]:port")
        port_text = rest[1:] if rest else None
    elif text.count(":") == 1:
        address_text, port_text = text.split(":")
    else:
        address_text = text
    port: int | None = None
    if port_text is not None:
        port = int(port_text) if port_text.isdigit() else 0
        if port_problem(port):
            raise ValueError(f"{text!r}: the port {port_problem(port)}")
    try:
        network = ipaddress.ip_network(address_text, strict=True)
    except ValueError as exc:
        raise ValueError(f"{address_text!r} is not an IP address or network in CIDR form ({exc})") from None
    return Opening(network=network, port=port)


def pattern_problem(pattern: str) -> str | None:
    """None when ``pattern`` is a host pattern of the allow-list: an IP address or network
    (CIDR), or a name pattern (fnmatch: letters, digits, ``. - _ * ?``)."""
    if not pattern or _has_control_or_space(pattern):
        return "must be one pattern without whitespace"
    try:
        ipaddress.ip_network(pattern, strict=False)
    except ValueError:
        pass
    else:
        return None
    if not re.fullmatch(r"[a-z0-9.*?_-]+", pattern.lower()):
        return "is neither an IP address or network nor a host name pattern (letters, digits, . - _ * ?)"
    return None


def pattern_matches(pattern: str, host: str) -> bool:
    """Does the allow-list pattern match ``host`` (a lowercase name without trailing dot, or
    an IP literal)? An address or network pattern matches IP literals inside it; a name
    pattern matches with fnmatch (``*.example.com``)."""
    pattern = pattern.strip().lower().rstrip(".")
    try:
        network = ipaddress.ip_network(pattern, strict=False)
    except ValueError:
        return fnmatch.fnmatchcase(host, pattern)
    literal = ip_literal(host)
    return literal is not None and literal.version == network.version and literal in network
