import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import { Metrics } from '../../../src/observability/metrics.js';
import { skipWithout } from '../../helpers/required-tool.js';

const root = new URL('../../../', import.meta.url);
const dashboard = JSON.parse(readFileSync(new URL('deploy/grafana/passgate-dashboard.json', root), 'utf8')) as {
  uid: string;
  title: string;
  panels: { id: number; type: string; title: string; gridPos: { x: number; w: number }; targets?: { expr: string }[] }[];
  templating: { list: { name: string; query: string | { query: string } }[] };
};
const alerts = parse(readFileSync(new URL('deploy/prometheus/passgate-alerts.yml', root), 'utf8')) as {
  groups: { name: string; rules: { alert: string; expr: string; for?: string; labels: { severity: string }; annotations: { summary: string; description: string } }[] }[];
};

/** Every PromQL expression in both files, with where it comes from. */
const expressions: { where: string; expr: string }[] = [
  ...dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ where: `dashboard panel "${p.title}"`, expr: t.expr }))),
  ...dashboard.templating.list.filter((v) => typeof v.query === 'object').map((v) => ({ where: `dashboard variable $${v.name}`, expr: (v.query as { query: string }).query })),
  ...alerts.groups.flatMap((g) => g.rules.map((r) => ({ where: `alert ${r.alert}`, expr: r.expr }))),
];

/** The metric families a running passgate serves (with the process metrics `passgate serve` turns on), from the text a scrape returns. */
async function servedFamilies(): Promise<Map<string, string>> {
  const metrics = new Metrics({ defaultMetrics: true });
  const text = await metrics.registry.metrics();
  return new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
}

/** The family a series name belongs to: histograms serve `_bucket`, `_sum` and `_count` series. */
function family(name: string, families: Map<string, string>): { family: string; type: string } | null {
  if (families.has(name)) return { family: name, type: families.get(name)! };
  const base = /^(.*)_(bucket|sum|count)$/.exec(name)?.[1];
  if (base && (families.get(base) === 'histogram' || families.get(base) === 'summary')) return { family: base, type: `${families.get(base)} series` };
  return null;
}

describe('deploy/grafana dashboard and deploy/prometheus alerts', () => {
  it('use only metrics passgate serves, and rate() only counters', async () => {
    const families = await servedFamilies();
    assert.ok(families.has('passgate_sessions') && families.has('passgate_process_resident_memory_bytes'), 'the scrape has passgate and process metrics');
    const missing = new Set<string>();
    const notCounters = new Set<string>();
    for (const { where, expr } of expressions) {
      for (const [name] of expr.matchAll(/\bpassgate_[a-z0-9_]+/g)) {
        const found = family(name, families);
        if (!found) missing.add(`${name} (${where})`);
        else if (found.type === 'histogram') missing.add(`${name} is a histogram: use ${name}_bucket, _sum or _count (${where})`);
      }
      for (const [, name] of expr.matchAll(/\b(?:rate|irate|increase)\(\s*(passgate_[a-z0-9_]+)/g)) {
        const found = family(name!, families);
        if (found && found.type !== 'counter' && found.type !== 'histogram series') notCounters.add(`${name} is a ${found.type} (${where})`);
      }
    }
    assert.deepEqual([...missing], [], `metrics not served by passgate: ${[...missing].join(', ')}`);
    assert.deepEqual([...notCounters], [], `rate() or increase() of a non-counter: ${[...notCounters].join(', ')}`);
  });

  it('has balanced expressions, and every alert a severity, a summary and a description', () => {
    for (const { where, expr } of expressions) {
      let depth = 0;
      for (const c of expr.replace(/"(?:[^"\\]|\\.)*"/g, '""')) {
        depth += '([{'.includes(c) ? 1 : ')]}'.includes(c) ? -1 : 0;
        assert.ok(depth >= 0, `unbalanced brackets in ${where}: ${expr}`);
      }
      assert.equal(depth, 0, `unbalanced brackets in ${where}: ${expr}`);
    }
    const names = alerts.groups.flatMap((g) => g.rules.map((r) => r.alert));
    assert.equal(new Set(names).size, names.length, 'alert names are unique');
    for (const rule of alerts.groups.flatMap((g) => g.rules)) {
      assert.ok(['warning', 'critical'].includes(rule.labels?.severity), `${rule.alert}: severity warning or critical`);
      assert.ok(rule.annotations?.summary && rule.annotations.description, `${rule.alert}: summary and description`);
      assert.ok(rule.for === undefined || /^\d+[smh]$/.test(rule.for), `${rule.alert}: for is a duration`);
    }
    // What the operators asked to be woken for.
    for (const wanted of ['PassgateInstanceDown', 'PassgateNotReady', 'PassgateBruteForce', 'PassgateRateLimitBlocking', 'PassgateUpstreamConnectFailures', 'PassgateTokenConfigOrConsentLost', 'PassgateCertificateExpiresSoon']) {
      assert.ok(names.includes(wanted), `alert ${wanted} is defined`);
    }
  });

  it('is a Grafana dashboard: unique panel ids, a query in every panel, panels inside the 24-column grid', () => {
    assert.deepEqual([dashboard.uid, dashboard.title], ['passgate', 'passgate']);
    const ids = dashboard.panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
    for (const panel of dashboard.panels) {
      assert.ok(panel.gridPos.x + panel.gridPos.w <= 24, `panel "${panel.title}" fits the grid`);
      if (panel.type !== 'row') assert.ok((panel.targets ?? []).length > 0, `panel "${panel.title}" has a query`);
    }
  });

  // promtool (Debian package prometheus) parses PromQL for real and runs the rules' unit tests; without it this is skipped.
  it('parses with promtool: the rules, their unit tests, and every dashboard query', { skip: skipWithout('promtool', ['--version'], 'it checks the alert rules and dashboard queries') }, () => {
    const rules = fileURLToPath(new URL('deploy/prometheus/passgate-alerts.yml', root));
    execFileSync('promtool', ['check', 'rules', rules], { stdio: 'pipe' });
    execFileSync('promtool', ['test', 'rules', fileURLToPath(new URL('deploy/prometheus/passgate-alerts.test.yml', root))], { stdio: 'pipe' });
    const dir = mkdtempSync(join(tmpdir(), 'passgate-dashboard-'));
    try {
      const queries = expressions.filter((e) => e.where.startsWith('dashboard panel')); // variables use Grafana's label_values()
      const record = queries.map(({ expr }, i) => ({
        record: `dashboard:query${i}`,
        expr: expr.replaceAll('$__rate_interval', '5m').replaceAll('$instance', '.*').replaceAll('$job', '.*'),
      }));
      writeFileSync(join(dir, 'dashboard.yml'), stringify({ groups: [{ name: 'dashboard', rules: record }] }));
      execFileSync('promtool', ['check', 'rules', join(dir, 'dashboard.yml')], { stdio: 'pipe' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
