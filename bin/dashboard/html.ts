/** Text made safe for HTML content and attribute values. */
export function esc(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string,
  );
}

/** Where the page links a value read from a cluster's /v1/status. */
export function statusHref(cluster: string): string {
  return `/v1/clusters/${encodeURIComponent(cluster)}/status`;
}

/** Where the page links a value read from a cluster's /metrics. */
export function metricsHref(cluster: string): string {
  return `/v1/clusters/${encodeURIComponent(cluster)}/metrics`;
}
