/**
 * Polls passgate's /metrics until passgate_smtp_upstream_pool_waiting (a gauge read on scrape) shows `n`: the
 * event "n clients wait for an upstream session of their mailbox", for at most 10 s.
 */
export async function waitForPoolWaiting(opsPort: number, n: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const metrics = await (await fetch(`http://127.0.0.1:${opsPort}/metrics`)).text();
    if (new RegExp(`^passgate_smtp_upstream_pool_waiting ${n}$`, 'm').test(metrics)) return;
    if (Date.now() > deadline) throw new Error(`the pool never showed ${n} waiting`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
