import ipaddr from 'ipaddr.js';

/**
 * Which IP addresses a customer webhook may be delivered to.
 *
 * The ranges come from ipaddr.js, which tracks the IANA special-purpose registries (RFC 6890 and
 * successors) and names every range (`loopback`, `private`, `carrierGradeNat`, `6to4`, ...). We
 * use it as an allowlist: an IPv4 address must be plain `unicast` and an IPv6 address plain
 * `unicast` inside global unicast 2000::/3; every other name is refused. That refuses ranges added
 * to the registry later without code here changing. `net.BlockList` would only answer "is it in
 * one of the ranges I typed in", so we would have to maintain the range list ourselves and still
 * decode the IPv4 address embedded in IPv4-mapped, NAT64 and 6to4 addresses by hand.
 */

export type AddressVerdict =
  | { allowed: true }
  | {
      allowed: false;
      /** The range's name, e.g. `loopback`, `private`, `private IPv4 10.0.0.1 inside ipv4Mapped`. */
      range: string;
      /** "127.0.0.1 is a blocked address (loopback)". */
      reason: string;
    };

export interface AddressPolicyOptions {
  /**
   * Development and tests: also allow loopback, private, link-local, unique-local and CGNAT
   * targets. Unspecified, broadcast and multicast addresses are never a valid target.
   */
  allowPrivate?: boolean;
}

/** Ranges refused even when private targets are allowed: none of them names one host. */
const NEVER_A_TARGET = new Set(['unspecified', 'broadcast', 'multicast']);

const GLOBAL_UNICAST_V6 = ipaddr.parseCIDR('2000::/3');
const NAT64_WELL_KNOWN = ipaddr.parseCIDR('64:ff9b::/96');

function refuse(address: string, range: string): AddressVerdict {
  return { allowed: false, range, reason: `${address} is a blocked address (${range})` };
}

function checkV4(v4: ipaddr.IPv4, options: AddressPolicyOptions, shown: string): AddressVerdict {
  const range = v4.range();
  if (range === 'unicast') return { allowed: true };
  if (options.allowPrivate && !NEVER_A_TARGET.has(range)) return { allowed: true };
  return refuse(shown, range);
}

/** The IPv4 address an IPv6 address carries, for the translation schemes that embed one. */
function embeddedV4(v6: ipaddr.IPv6, range: string): ipaddr.IPv4 | undefined {
  const bytes = v6.toByteArray();
  if (range === 'ipv4Mapped' || range === 'rfc6145' || (range === 'rfc6052' && v6.match(NAT64_WELL_KNOWN))) {
    return new ipaddr.IPv4(bytes.slice(12, 16));
  }
  // 6to4 (RFC 3056): 2002:AABB:CCDD::/48 tunnels to AA.BB.CC.DD.
  if (range === '6to4') return new ipaddr.IPv4(bytes.slice(2, 6));
  return undefined;
}

function checkV6(v6: ipaddr.IPv6, options: AddressPolicyOptions, shown: string): AddressVerdict {
  const range = v6.range();
  const v4 = embeddedV4(v6, range);
  if (v4) {
    const inner = checkV4(v4, options, shown);
    return inner.allowed ? inner : refuse(shown, `${v4.range()} IPv4 ${v4.toString()} inside ${range}`);
  }
  if (range === 'unicast' && v6.match(GLOBAL_UNICAST_V6)) return { allowed: true };
  // Outside 2000::/3 ipaddr.js still says `unicast` for IPv4-compatible ::a.b.c.d (deprecated,
  // RFC 4291) and unassigned space; none of it is routable on the internet.
  if (options.allowPrivate && !NEVER_A_TARGET.has(range)) return { allowed: true };
  return refuse(shown, range === 'unicast' ? 'not global unicast' : range);
}

/** Decides whether one resolved (or literal) IP address may be connected to. */
export function checkAddress(address: string, options: AddressPolicyOptions = {}): AddressVerdict {
  const bare = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  // Only the canonical forms DNS answers and URL parsers produce; `ipaddr.parse` would also take
  // legacy shorthand such as "127.1", which never reaches here because WHATWG URL normalises it.
  if (!ipaddr.IPv4.isValidFourPartDecimal(bare) && !ipaddr.IPv6.isValid(bare)) {
    return { allowed: false, range: 'invalid', reason: `"${address}" is not an IP address` };
  }
  if (ipaddr.IPv4.isValidFourPartDecimal(bare)) return checkV4(ipaddr.IPv4.parse(bare), options, bare);
  // ipaddr.js reads a dotted tail such as "::8.8.8.8" as IPv4-mapped (::ffff:8.8.8.8), but it is
  // IPv4-compatible (::808:808), a different address. The WHATWG URL parser gets it right, and it
  // is what turned the customer's URL into this host in the first place.
  let canonical: string;
  try {
    canonical = new URL(`http://[${bare}]/`).hostname.slice(1, -1);
  } catch {
    return { allowed: false, range: 'invalid', reason: `"${address}" is not an IP address` };
  }
  return checkV6(ipaddr.IPv6.parse(canonical), options, bare);
}

/** True when `host` is an IP literal (brackets allowed), i.e. no DNS lookup happens for it. */
export function isIpLiteral(host: string): boolean {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  return ipaddr.IPv4.isValidFourPartDecimal(bare) || ipaddr.IPv6.isValid(bare);
}
