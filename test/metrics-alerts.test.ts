import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import type { Test } from 'tap'
import { parse } from 'yaml'
import { build } from './helper.js'

/**
 * The alert rules we ship (docs/prometheus/alerts.yml) load in Prometheus and fire when they
 * should: `promtool check rules` and `promtool test rules` (docs/prometheus/alerts.test.yml) pass
 * where promtool is installed (Debian package prometheus; .ci/run installs it). Everywhere, their
 * shape holds and every metric they (and docs/metrics.md) name is one a gateway serves.
 */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const RULES = join(ROOT, 'docs/prometheus/alerts.yml')
const RULE_TESTS = join(ROOT, 'docs/prometheus/alerts.test.yml')
const DOC = readFileSync(join(ROOT, 'docs/metrics.md'), 'utf8')

interface Rule { alert?: unknown, expr?: unknown, for?: unknown, labels?: Record<string, unknown>, annotations?: Record<string, unknown> }

/** the metric names a PromQL expression or a text reads */
const metricNames = (text: string): string[] => [...text.matchAll(/\b((?:reuse_gateway|process|nodejs)_[a-z0-9_]+)\b/g)].map((m) => m[1] as string)

/** a sample name's family: a histogram's _bucket, _count and _sum are its own */
const family = (name: string, families: Set<string>): string => {
  const base = name.replace(/_(bucket|count|sum)$/, '')
  return families.has(name) ? name : base
}

/** the families a gateway with every optional part on (an audit archive) declares */
async function servedFamilies (t: Test): Promise<Set<string>> {
  // the archive need not answer: its gauge reads the store, and nothing is migrated at start
  const app = await build(t, { env: { METRICS_PORT: '0', AUDIT_ARCHIVE_URL: 'postgres://reuse@127.0.0.1:1/nowhere', AUDIT_ARCHIVE_MIGRATE: 'false' } })
  const text = await (await fetch(app.metrics?.url as string)).text()
  return new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1] as string))
}

t.test('the alert rules have the shape Prometheus loads, and read only metrics a gateway serves', async (t) => {
  const doc = parse(readFileSync(RULES, 'utf8')) as { groups?: Array<{ name?: unknown, rules?: Rule[] }> }
  t.ok(Array.isArray(doc.groups) && doc.groups.length > 0, 'groups')
  const families = await servedFamilies(t)
  const alerts: string[] = []
  for (const group of doc.groups ?? []) {
    t.type(group.name, 'string', 'a group has a name')
    t.ok(Array.isArray(group.rules) && group.rules.length > 0, 'and rules')
    for (const rule of group.rules ?? []) {
      const name = String(rule.alert)
      alerts.push(name)
      t.match(name, /^ReuseGateway[A-Z][A-Za-z]+$/, `${name}: an alert name`)
      t.type(rule.expr, 'string', `${name}: an expression`)
      t.match(String(rule.for), /^[0-9]+[smh]$/, `${name}: a duration it must hold for`)
      t.match(String(rule.labels?.severity), /^(critical|warning)$/, `${name}: a severity`)
      t.type(rule.annotations?.summary, 'string', `${name}: a summary`)
      t.type(rule.annotations?.description, 'string', `${name}: a description`)
      const unknown = metricNames(`${String(rule.expr)} ${String(rule.annotations?.description)}`).filter((metric) => !families.has(family(metric, families)))
      t.same(unknown, [], `${name}: every metric it names is served`)
      t.match(DOC, `\`${name}\``, `${name} is explained in docs/metrics.md`)
    }
  }
  t.same(new Set(alerts).size, alerts.length, 'alert names are unique')
  for (const wanted of ['Down', 'ServerErrors', 'ReuseQueriesSlow', 'OutboxBacklog', 'OutboxDeliveryWaiting', 'DeadLetters', 'AuditArchiveLagging', 'RedisErrors', 'Shedding']) {
    t.ok(alerts.includes(`ReuseGateway${wanted}`), `an alert: ${wanted}`)
  }
})

t.test('docs/metrics.md names every family a gateway serves, and only those', async (t) => {
  const families = await servedFamilies(t)
  const ours = [...families].filter((name) => name.startsWith('reuse_gateway_'))
  t.same(ours.filter((name) => !DOC.includes(`\`${name}\``)), [], 'every family of ours is documented')
  t.same([...new Set(metricNames(DOC))].filter((name) => !families.has(family(name, families))), [], 'every metric the page names is served')
  const config = /```yaml\n(scrape_configs:[^]*?)```/.exec(DOC)?.[1]
  const scrape = parse(config ?? '') as { scrape_configs?: Array<{ job_name?: string }> }
  t.equal(scrape.scrape_configs?.[0]?.job_name, 'reuse-gateway', 'the scrape config names the job the alert rules expect')
})

t.test('promtool loads the rules and their unit tests pass', async (t) => {
  const probe = spawnSync('promtool', ['--version'], { encoding: 'utf8' })
  if (probe.status !== 0) {
    // not a skip: the shape test above ran; CI installs promtool (.ci/run) where it can
    t.comment('promtool is not installed (Debian package prometheus): the rules were checked for shape and metric names only')
    t.pass('checked without promtool')
    return
  }
  const check = spawnSync('promtool', ['check', 'rules', RULES], { encoding: 'utf8' })
  t.equal(check.status, 0, `promtool check rules: ${check.stdout}${check.stderr}`)
  const unit = spawnSync('promtool', ['test', 'rules', RULE_TESTS], { encoding: 'utf8' })
  t.equal(unit.status, 0, `promtool test rules: ${unit.stdout}${unit.stderr}`)
})
