import type { InspectReport } from './inspect.js';

/** Plain-text rendering for the terminal. */
export function formatReport(file: string, r: InspectReport): string {
  const lines: string[] = [];
  if (r.kind === 'csr') {
    lines.push(`${file}: certificate request (signature verified)`);
    lines.push(`  subject:     ${r.subject || '(empty)'}`);
    lines.push(`  key:         ${r.keyType}`);
    pushNames(lines, r.dnsNames, r.uris);
    if (r.ipAddresses.length > 0) lines.push(`  IP SANs:     ${r.ipAddresses.join(', ')}`);
    if (r.emails.length > 0) lines.push(`  email SANs:  ${r.emails.join(', ')}`);
    lines.push(`  sha256:      ${r.sha256Fingerprint}`);
    return lines.join('\n');
  }
  const flag = r.state === 'valid' ? '' : `  [${r.state.toUpperCase()}]`;
  lines.push(
    `${file}: ${r.isCa ? (r.selfSigned ? 'CA certificate (self-signed trust anchor)' : 'CA certificate') : 'certificate'}${flag}`,
  );
  lines.push(`  subject:     ${r.subject || '(empty)'}`);
  lines.push(`  issuer:      ${r.issuer}`);
  lines.push(`  serial:      ${r.serial}`);
  lines.push(
    `  valid:       ${r.notBefore} → ${r.notAfter} (${r.timeLeftMs >= 0 ? `${r.timeLeft} left` : `expired ${r.timeLeft.slice(1)} ago`})`,
  );
  lines.push(`  key:         ${r.keyType}, signed with ${r.signatureAlgorithm}`);
  pushNames(lines, r.dnsNames, r.uris);
  lines.push(`  CA:          ${r.isCa ? `yes${r.pathLen !== null ? `, pathLen ${r.pathLen}` : ''}` : 'no'}`);
  lines.push(
    `  key usage:   ${r.keyUsage.join(', ') || '(none)'}${r.extendedKeyUsage.length > 0 ? `; extended: ${r.extendedKeyUsage.join(', ')}` : ''}`,
  );
  const nc = r.nameConstraints;
  if (nc !== null) {
    const permitted = [...nc.dns.map((d) => `DNS:${d}`), ...nc.uri.map((u) => `URI:${u}`)];
    const excluded = [...nc.excludedDns.map((d) => `DNS:${d}`), ...nc.excludedUri.map((u) => `URI:${u}`)];
    if (permitted.length > 0) lines.push(`  permitted:   ${permitted.join(', ')}`);
    if (excluded.length > 0) lines.push(`  excluded:    ${excluded.join(', ')}`);
    if (nc.other.length > 0) lines.push(`  constraints: ${nc.other.join(', ')} (not evaluated by Lanyard)`);
  }
  if (r.unsupportedCriticalExtensions.length > 0) {
    lines.push(
      `  critical:    ${r.unsupportedCriticalExtensions.join(', ')} (unsupported: Lanyard refuses this certificate in a chain)`,
    );
  }
  lines.push(`  SKI:         ${r.subjectKeyId ?? '(none)'}`);
  lines.push(`  AKI:         ${r.authorityKeyId ?? '(none)'}`);
  lines.push(`  sha256:      ${r.sha256Fingerprint}`);
  return lines.join('\n');
}

function pushNames(lines: string[], dns: readonly string[], uris: readonly string[]): void {
  if (dns.length > 0) lines.push(`  DNS SANs:    ${dns.join(', ')}`);
  if (uris.length > 0) lines.push(`  URI SANs:    ${uris.join(', ')}`);
}
