// What a Linkerd install gives the proxy of every meshed pod to reach its identity service, and how
// that proxy's connection finds its way to a rendered manifest: the DNS name of a Service, the
// NetworkPolicy that admits it, the port the container listens on. Written from Linkerd's chart
// (linkerd2 `charts/partials/templates/_proxy.tpl`, `_volumes.tpl`) and linkerd2-proxy
// (`linkerd/app/src/env.rs`: `parse_control_addr` reads `<BASE>_ADDR` and `<BASE>_NAME`).
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import type { IService } from 'kubernetes-models/v1/Service';
import { lanyardContainer, type K8sObject } from './support.js';

type ILabelSelector = NonNullable<INetworkPolicy['spec']>['podSelector'];

/** The values of a Linkerd install that its proxies' identity settings are made from. */
export interface LinkerdInstall {
  /** the namespace Linkerd is installed in (`.Release.Namespace`) */
  readonly namespace: string;
  /** `clusterDomain` (default cluster.local) */
  readonly clusterDomain: string;
  /** `identityTrustDomain` (default: the cluster domain) */
  readonly trustDomain: string;
  /** `identityTrustAnchorsPEM` (pods in the control-plane namespace read the same from the ConfigMap) */
  readonly trustAnchorsPem: string;
}

/** Where the proxy reads its service-account token: the projected volume `linkerd-identity-token`. */
export const PROXY_TOKEN_FILE = '/var/run/secrets/tokens/linkerd-identity-token';
/** The audience of that projected token (`serviceAccountToken.audience` in the chart). */
export const PROXY_TOKEN_AUDIENCE = 'identity.l5d.io';

/** The LINKERD2_PROXY_IDENTITY_* variables the proxy injector sets for a pod (serviceAccountTokenProjection on). */
export function proxyIdentityEnv(
  install: LinkerdInstall,
  pod: { readonly namespace: string; readonly serviceAccount: string },
): Record<string, string> {
  const ns = install.namespace;
  return {
    LINKERD2_PROXY_IDENTITY_DIR: '/var/run/linkerd/identity/end-entity',
    LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS: install.trustAnchorsPem,
    LINKERD2_PROXY_IDENTITY_TOKEN_FILE: PROXY_TOKEN_FILE,
    LINKERD2_PROXY_IDENTITY_SVC_ADDR: `linkerd-identity-headless.${ns}.svc.${install.clusterDomain}.:8080`,
    LINKERD2_PROXY_IDENTITY_LOCAL_NAME: `${pod.serviceAccount}.${pod.namespace}.serviceaccount.identity.${ns}.${install.trustDomain}`,
    LINKERD2_PROXY_IDENTITY_SVC_NAME: `linkerd-identity.${ns}.serviceaccount.identity.${ns}.${install.trustDomain}`,
  };
}

/** The labels Linkerd's proxy injector puts on a meshed pod. */
export function meshedPodLabels(install: LinkerdInstall, workload: string): Record<string, string> {
  return { 'linkerd.io/control-plane-ns': install.namespace, 'linkerd.io/proxy-deployment': workload };
}

/**
 * The Service a `<name>.<namespace>.svc.<cluster-domain>.:<port>` address resolves through, among
 * `objs`, and the port dialled. Throws when no rendered Service has that name in that namespace.
 */
export function serviceOf(
  addr: string,
  objs: readonly K8sObject[],
  clusterDomain: string,
): { service: IService; host: string; port: number } {
  const m = /^([^.:]+)\.([^.:]+)\.svc\.(.+?)\.?:(\d+)$/.exec(addr);
  if (m === null) throw new Error(`${addr} is not a Service DNS name and port`);
  const [, name, namespace, domain, port] = m as unknown as [string, string, string, string, string];
  if (domain !== clusterDomain) throw new Error(`${addr} is not in the cluster domain ${clusterDomain}`);
  const found = objs.find(
    (o) => o.kind === 'Service' && o.metadata.name === name && o.metadata.namespace === namespace,
  );
  if (found === undefined) throw new Error(`no Service ${namespace}/${name} is rendered`);
  return {
    service: found as unknown as IService,
    host: addr.slice(0, addr.lastIndexOf(':')),
    port: Number(port),
  };
}

/** Whether `labels` satisfy a Kubernetes label selector (matchLabels and matchExpressions). */
export function selects(selector: ILabelSelector | undefined, labels: Record<string, string>): boolean {
  if (selector === undefined) return false;
  const byLabels = Object.entries(selector.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
  const byExpressions = (selector.matchExpressions ?? []).every((e) => {
    const v = labels[e.key];
    switch (e.operator) {
      case 'In':
        return v !== undefined && (e.values ?? []).includes(v);
      case 'NotIn':
        return v === undefined || !(e.values ?? []).includes(v);
      case 'Exists':
        return v !== undefined;
      case 'DoesNotExist':
        return v === undefined;
      default:
        throw new Error(`selector operator ${e.operator}`);
    }
  });
  return byLabels && byExpressions;
}

/**
 * Whether the rendered NetworkPolicies let a pod (`from`: its labels and its namespace's labels)
 * open a TCP connection to `port` of the Deployment's pods, as the network plugin decides: allowed
 * when no policy selects those pods for Ingress, else when one rule of one such policy admits it.
 */
export function ingressAllowed(
  objs: readonly K8sObject[],
  deployment: IDeployment,
  from: { readonly podLabels: Record<string, string>; readonly namespaceLabels: Record<string, string> },
  port: number,
): boolean {
  const podLabels = deployment.spec?.template.metadata?.labels ?? {};
  const ports = lanyardContainer(deployment).ports ?? [];
  const policies = (objs.filter((o) => o.kind === 'NetworkPolicy') as unknown as INetworkPolicy[]).filter(
    (np) =>
      np.metadata?.namespace === deployment.metadata?.namespace &&
      selects(np.spec?.podSelector, podLabels) &&
      (np.spec?.policyTypes ?? ['Ingress']).includes('Ingress'),
  );
  if (policies.length === 0) return true;
  const portMatches = (p: number | string | undefined): boolean =>
    p === undefined ||
    p === port ||
    ports.some((c) => c.name === p && c.containerPort === port && (c.protocol ?? 'TCP') === 'TCP');
  return policies.some((np) =>
    (np.spec?.ingress ?? []).some(
      (rule) =>
        (rule.ports === undefined ||
          rule.ports.some((p) => (p.protocol ?? 'TCP') === 'TCP' && portMatches(p.port))) &&
        (rule.from === undefined ||
          rule.from.some(
            (peer) =>
              peer.ipBlock === undefined &&
              (peer.namespaceSelector === undefined
                ? from.namespaceLabels['kubernetes.io/metadata.name'] === deployment.metadata?.namespace
                : selects(peer.namespaceSelector, from.namespaceLabels)) &&
              (peer.podSelector === undefined || selects(peer.podSelector, from.podLabels)),
          )),
    ),
  );
}
