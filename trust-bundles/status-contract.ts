// The JSON of an issuer's GET /v1/status, defined once: the issuer (issuer/status.ts) writes it and
// `check`, `rotate` and the cluster sources (sources.ts) read it. Readers never trust a field's type.

/** Per anchor: leaves this issuer signed under it and the latest notAfter among them. */
export interface AnchorIssuance {
  readonly anchorFingerprint: string;
  readonly issued: number;
  readonly latestNotAfter: string;
}

export interface AnchorStatus {
  readonly fingerprint: string;
  readonly subject: string;
  readonly notBefore: string;
  readonly notAfter: string;
}

/** The gRPC listener's serving certificate, as /v1/status shows it. */
export interface ServingTlsStatus {
  /** the DNS name clients use as SNI and check (LINKERD2_PROXY_IDENTITY_SVC_NAME) */
  readonly serverName: string;
  /** false: proxies will refuse this certificate (it does not carry serverName as a DNS SAN) */
  readonly namesServer: boolean;
  readonly dnsNames: readonly string[];
  readonly serial: string;
  readonly notAfter: string;
  /**
   * the served chain (--tls-cert), PEM, the serving certificate first: `rotate status` computes which
   * anchors it reaches (a proxy started after A left its bundle must verify it through B)
   */
  readonly chainPem: string;
}

/** Leaves signed per API of the issuer (the same leaves as certificatesIssued, split). */
export interface IssuedByApi {
  /** io.linkerd.proxy.identity.Identity/Certify */
  readonly Certify: number;
  /** istio.v1.auth.IstioCertificateService/CreateCertificate */
  readonly CreateCertificate: number;
}

/** The Linkerd identity API (always served). */
export interface CertifyApiStatus {
  /** the gRPC listener, host:port (the port actually bound once listening) */
  readonly listen: string;
  /** the audience the service-account tokens must carry (--token-audience) */
  readonly tokenAudience: string;
}

/** Istio's CA API (--istio-listen). */
export interface IstioApiStatus {
  /** its TLS listener, host:port (the port actually bound once listening) */
  readonly listen: string;
  /** --istio-token-audience */
  readonly tokenAudience: string;
  /** --istio-trusted-node-accounts, as NS/SA: the accounts that may ask for ImpersonatedIdentity */
  readonly trustedNodeAccounts: readonly string[];
  /** --istio-max-ttl: the longest validity_duration accepted, ms */
  readonly maxTtlMs: number;
}

/** The APIs this issuer serves: each one's settings, or null when it is off. */
export interface ServedApisStatus {
  readonly Certify: CertifyApiStatus;
  readonly CreateCertificate: IstioApiStatus | null;
}

/** The JSON of GET /v1/status. */
export interface IssuerStatus {
  readonly cluster: string;
  readonly trustDomain: string;
  readonly controlNamespace: string;
  readonly ready: boolean;
  readonly now: string;
  readonly issuer: {
    readonly subject: string;
    readonly serial: string;
    readonly notBefore: string;
    readonly notAfter: string;
    readonly subjectKeyId: string | null;
    readonly anchorFingerprint: string;
    /**
     * every anchor of the bundle the served chain reaches (fingerprints as in anchors[].fingerprint): with
     * a cross certificate served after the issuer, both the old anchor and the new one
     */
    readonly anchorsReached: readonly string[];
    /** the issuer certificate and any further intermediates, PEM (what Certify returns, never the anchor) */
    readonly chainPem: string;
  } | null;
  readonly anchors: readonly AnchorStatus[];
  /** when this process loaded the current issuer credential */
  readonly credentialLoadedAt: string | null;
  /** the leaf policy: no leaf outlives issuance by more than leafLifetimeMs + clockSkewMs */
  readonly leafLifetimeMs: number;
  readonly clockSkewMs: number;
  readonly certificatesIssued: number;
  /** per anchor: the latest notAfter of any leaf this issuer signed under it */
  readonly issuedByAnchor: readonly AnchorIssuance[];
  /** certificatesIssued split by the API that issued them */
  readonly issuedByApi: IssuedByApi;
  /** which APIs are served, and how */
  readonly apis: ServedApisStatus;
  /** the gRPC listener's serving certificate (null: plaintext) */
  readonly servingTls: ServingTlsStatus | null;
  /** --renew-after (ISO 8601) and --renew-spread: until `after`, renewals are aimed at [after, after + spreadMs] */
  readonly renewalHint: { readonly after: string; readonly spreadMs: number } | null;
}

/** A /v1/status body as parsed JSON from another process: any field may be missing or of another type. */
export type UntrustedStatus = { readonly [K in keyof IssuerStatus]?: unknown } & {
  readonly issuer?: { readonly [K in keyof NonNullable<IssuerStatus['issuer']>]?: unknown } | null;
  readonly servingTls?: { readonly [K in keyof ServingTlsStatus]?: unknown } | null;
};
