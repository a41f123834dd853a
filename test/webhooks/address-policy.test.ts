import { describe, expect, it } from 'vitest';
import { checkAddress } from '../../lib/webhooks/address-policy';

/** Every range a webhook must never reach in production, with one address inside it. */
const BLOCKED: [string, string][] = [
  ['loopback', '127.0.0.1'],
  ['loopback (end of /8)', '127.255.255.254'],
  ['private 10/8', '10.0.0.1'],
  ['private 172.16/12', '172.16.0.1'],
  ['private 172.16/12 (end)', '172.31.255.255'],
  ['private 192.168/16', '192.168.1.1'],
  ['link-local', '169.254.10.20'],
  ['cloud metadata', '169.254.169.254'],
  ['CGNAT 100.64/10', '100.64.0.1'],
  ['CGNAT (end)', '100.127.255.254'],
  ['multicast', '224.0.0.1'],
  ['multicast (end)', '239.255.255.255'],
  ['unspecified', '0.0.0.0'],
  ['this network 0/8', '0.1.2.3'],
  ['broadcast', '255.255.255.255'],
  ['reserved 240/4', '240.0.0.1'],
  ['IETF protocol assignments 192.0.0/24', '192.0.0.8'],
  ['documentation TEST-NET-1', '192.0.2.1'],
  ['documentation TEST-NET-2', '198.51.100.1'],
  ['documentation TEST-NET-3', '203.0.113.1'],
  ['benchmarking 198.18/15', '198.19.0.1'],
  ['6to4 relay anycast', '192.88.99.1'],
  ['IPv6 loopback', '::1'],
  ['IPv6 unspecified', '::'],
  ['IPv6 link-local', 'fe80::1'],
  ['IPv6 link-local (end of /10)', 'febf::1'],
  ['IPv6 unique-local fc00::/7', 'fc00::1'],
  ['IPv6 unique-local fd00::/8', 'fd12:3456::1'],
  ['IPv6 multicast', 'ff02::1'],
  ['IPv6 site-local (deprecated)', 'fec0::1'],
  ['IPv6 documentation', '2001:db8::1'],
  ['IPv6 discard-only', '100::1'],
  ['IPv4-mapped private', '::ffff:10.0.0.1'],
  ['IPv4-mapped loopback (hex)', '::ffff:7f00:1'],
  ['IPv4-mapped metadata', '::ffff:169.254.169.254'],
  ['IPv4-compatible loopback (deprecated)', '::127.0.0.1'],
  ['IPv4-compatible public (deprecated)', '::8.8.8.8'],
  ['IPv4-translated private', '::ffff:0:10.0.0.1'],
  ['NAT64 embedding loopback', '64:ff9b::127.0.0.1'],
  ['NAT64 embedding private', '64:ff9b::a00:1'],
  ['NAT64 local-use prefix', '64:ff9b:1::808:808'],
  ['6to4 embedding private', '2002:c0a8:101::1'],
  ['6to4 embedding loopback', '2002:7f00:1::'],
  ['Teredo', '2001:0:4136:e378:8000:63bf:3fff:fdd2'],
  ['IPv6 benchmarking', '2001:2::1'],
  ['ORCHIDv2', '2001:20::1'],
  ['not global unicast', '4000::1'],
];

const PUBLIC = [
  '8.8.8.8',
  '1.1.1.1',
  '93.184.216.34',
  '2606:4700:4700::1111',
  '2a00:1450:4001:81c::200e',
  '64:ff9b::808:808',
  '2002:808:808::1',
  '::ffff:8.8.8.8',
];

describe('checkAddress', () => {
  it.each(BLOCKED)('refuses %s (%s)', (_, address) => {
    const verdict = checkAddress(address);
    expect(verdict.allowed).toBe(false);
    expect(!verdict.allowed && verdict.reason).toMatch(/is a blocked address/);
  });

  it.each(PUBLIC)('allows the public address %s', (address) => {
    expect(checkAddress(address)).toEqual({ allowed: true });
  });

  it.each(['127.0.0.1', '10.1.2.3', '192.168.0.10', '169.254.169.254', '::1', 'fd00::1', '::ffff:127.0.0.1'])(
    'allows the private address %s when private targets are allowed',
    (address) => {
      expect(checkAddress(address, { allowPrivate: true })).toEqual({ allowed: true });
    },
  );

  it.each(['0.0.0.0', '255.255.255.255', '224.0.0.1', '::', 'ff02::1'])(
    'refuses %s even when private targets are allowed (never a single host)',
    (address) => {
      expect(checkAddress(address, { allowPrivate: true }).allowed).toBe(false);
    },
  );

  it.each(['localhost', '127.1', '2130706433', '0x7f000001', '', '1.2.3.4.5'])(
    'refuses %j, which is not a canonical IP address',
    (value) => {
      expect(checkAddress(value).allowed).toBe(false);
    },
  );
});
