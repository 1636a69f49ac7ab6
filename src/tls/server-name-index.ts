/**
 * Finds the certificate for the name a client asked for with SNI (RFC 6066 §3), matching as RFC 6125 §6.4 does:
 * names compare without case and without a trailing dot, and a wildcard `*.example.com` stands for exactly one
 * leftmost label (`a.example.com`, not `example.com` nor `a.b.example.com`). An exact name wins over a wildcard;
 * among certificates with the same name the first configured wins, so the configuration order is the priority.
 * Other wildcard forms (`f*.example.com`, `*` in inner labels) are never matched.
 */
export class ServerNameIndex {
  private readonly exact = new Map<string, number>();
  /** The parent domain of each wildcard name (`example.com` for `*.example.com`). */
  private readonly wildcard = new Map<string, number>();

  /** `namesByCertificate[i]` are the DNS names certificate i may be chosen for. */
  constructor(namesByCertificate: readonly (readonly string[])[]) {
    namesByCertificate.forEach((names, index) => {
      for (const raw of names) {
        const name = normalize(raw);
        if (name.startsWith('*.') && !name.slice(2).includes('*')) setFirst(this.wildcard, name.slice(2), index);
        else if (name !== '' && !name.includes('*')) setFirst(this.exact, name, index);
      }
    });
  }

  /** The index of the certificate for `servername`, or undefined when none matches (the caller uses its default). */
  lookup(servername: string | undefined): number | undefined {
    if (!servername) return undefined;
    const name = normalize(servername);
    const exact = this.exact.get(name);
    if (exact !== undefined) return exact;
    const dot = name.indexOf('.');
    return dot > 0 ? this.wildcard.get(name.slice(dot + 1)) : undefined;
  }
}

function normalize(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

function setFirst(map: Map<string, number>, key: string, value: number): void {
  if (!map.has(key)) map.set(key, value);
}
