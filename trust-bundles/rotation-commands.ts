// The shell commands of each rotation step for one cluster: directory sources get file commands, admin
// sources Kubernetes ones. Every `lanyard` command printed here exists (see docs/cli.md).
import { join } from 'node:path';
import type { ClusterSnapshot } from './sources.js';

/** The files the commands name. */
export interface CommandFiles {
  /** the new anchor's directory (`lanyard anchor create --out`) */
  readonly newAnchorDir?: string;
  /** the new anchor's certificate file (DIR/anchor.crt, or the file given) */
  readonly newAnchorCert?: string;
  /** the cross certificate (`lanyard anchor cross-sign --out`) */
  readonly crossSigned?: string;
}

type Cluster = Pick<ClusterSnapshot, 'name' | 'kind' | 'source' | 'bundlePath'>;

/** The bundle file `lanyard bundle add/remove` edits: the directory's, or a local copy of the served one. */
export function bundleFile(c: Cluster): string {
  return c.kind === 'dir' ? (c.bundlePath ?? join(c.source, 'ca.crt')) : `${c.name}-bundle.crt`;
}

function applyConfigMap(c: Cluster): string {
  return `lanyard bundle export ${bundleFile(c)} --format configmap | kubectl --context ${c.name} apply -f -`;
}

export const nextIssuerDir = (c: Cluster): string => `${c.name}-issuer-next`;
export const finalIssuerDir = (c: Cluster): string => `${c.name}-issuer-final`;

/** Phase 1: the cross certificate (when it is still to be made). */
export function crossSignCommand(oldAnchorDir: string, newAnchorDir: string, out: string): string {
  return `lanyard anchor cross-sign --anchor ${oldAnchorDir} --subject ${newAnchorDir} --out ${out}`;
}

/** Phase 1: this cluster's B-issuer, serving the cross certificate. */
export function prepareIssuerCommands(c: Cluster, newAnchorDir: string, crossSigned: string): string[] {
  return [
    `lanyard issuer create --anchor ${newAnchorDir} --cluster ${c.name} --cross-signed ${crossSigned} --out ${nextIssuerDir(c)}`,
  ];
}

/** The issuer's key and certificate (with whatever chain tls.crt holds) put in place; never ca.crt. */
function installIssuer(c: Cluster, dir: string): string[] {
  if (c.kind === 'dir') return [`cp ${dir}/tls.key ${dir}/tls.crt ${c.source}/`];
  return [
    `kubectl --context ${c.name} -n linkerd create secret tls linkerd-identity-issuer --cert=${dir}/tls.crt --key=${dir}/tls.key --dry-run=client -o yaml | kubectl --context ${c.name} apply -f -`,
  ];
}

/** Phase 2: switch to the B-issuer (the issuer reloads it without a restart). */
export function switchIssuerCommands(c: Cluster): string[] {
  return installIssuer(c, nextIssuerDir(c));
}

/**
 * Phase 2 for an issuer whose tls.crt cert-manager writes (Lanyard does not): the cross certificate is
 * served by adding `--intermediates FILE` to its `lanyard serve` (a restart of the identity service).
 */
export function certManagerSwitchNote(crossSigned: string): string {
  return `if cert-manager renews this issuer: add --intermediates ${crossSigned} to its lanyard serve command`;
}

/** Phase 3: add B to the bundle (and the ConfigMap the issuer and new pods mount). */
export function addAnchorCommands(c: Cluster, anchorCert: string): string[] {
  const add = `lanyard bundle add ${bundleFile(c)} ${anchorCert}`;
  if (c.kind === 'dir') return [add];
  return [`curl -fsS ${c.source}/v1/bundle > ${bundleFile(c)}`, add, applyConfigMap(c)];
}

/** Phase 5: drop an old anchor. */
export function removeAnchorCommands(c: Cluster, fingerprint: string): string[] {
  const remove = `lanyard bundle remove ${bundleFile(c)} ${fingerprint}`;
  if (c.kind === 'dir') return [remove];
  return [`curl -fsS ${c.source}/v1/bundle > ${bundleFile(c)}`, remove, applyConfigMap(c)];
}

/** Phase 6: a B-issuer without the cross certificate, put in place. */
export function stopCrossCommands(c: Cluster, newAnchorDir: string): string[] {
  return [
    `lanyard issuer create --anchor ${newAnchorDir} --cluster ${c.name} --out ${finalIssuerDir(c)}`,
    ...installIssuer(c, finalIssuerDir(c)),
  ];
}

/** Phase 6 for an issuer whose tls.crt cert-manager writes: the cross certificate came from --intermediates. */
export function certManagerStopNote(crossSigned: string): string {
  return `if cert-manager renews this issuer: remove --intermediates ${crossSigned} from its lanyard serve command instead`;
}

/** Phase 1 (optional): renewal hints, so proxies renew around the switch moment. */
export function renewalHintNote(after: string, spread: string): string {
  return `optional: add --renew-after ${after} --renew-spread ${spread} to each lanyard serve command (a restart of the identity service only)`;
}
