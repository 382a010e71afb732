/**
 * The labels a root gives an origin's series: `instance`, and `cluster` for an origin forwarded by
 * another cluster's root (a central root's origins are named `<cluster>/<node>`; OriginAuthority lets
 * a cluster's link carry only names under its own cluster, so the label cannot be forged). The
 * series' own `instance` and `cluster` labels give way to these.
 */
export interface OriginIdentity {
  readonly instance: string;
  readonly cluster: string | null;
}

/** The cluster of an origin's name (`siteA/n1` → siteA), or null; no object made (the store asks per frame). */
export function clusterOf(origin: string): string | null {
  const slash = origin.indexOf("/");
  return slash < 0 ? null : origin.slice(0, slash);
}

/** `n1` → instance n1; `siteA/n1` → cluster siteA, instance n1. */
export function originIdentity(origin: string): OriginIdentity {
  const slash = origin.indexOf("/");
  return slash < 0 ? { instance: origin, cluster: null } : { instance: origin.slice(slash + 1), cluster: origin.slice(0, slash) };
}

/** The origin name a central root holds a cluster's node under. */
export function clusterOrigin(cluster: string, node: string): string {
  return `${cluster}/${node}`;
}
