import { readFile, writeFile, mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { Test } from 'tap'
import type { Locator, Page } from 'playwright-core'
import { MemoryStores, RedisStores } from '../src/store/index.js'
import type { Stores } from '../src/store/index.js'
import { counterField } from '../src/services/stats.js'
import { today } from '../src/services/document-status.js'
import { ulidToBytes } from '../src/store/redis/binary.js'
import { startTestRedis, waitFor } from './lib/redis-server.js'
import { testRedisStore } from './lib/redis-store.js'
import { startReceiver } from './lib/webhook-receiver.js'
import type { WebhookReceiver } from './lib/webhook-receiver.js'
import { AGREEMENT_ID, CODES, PROCEDURE, bearer, buildWorld, downloadLink, reuseQuery } from './lib/world.js'
import type { World } from './lib/world.js'
import { SCREENSHOTS, ensureConsoleBuilt, launchBrowser } from './lib/console.js'

/**
 * The web console in a real browser (Debian's chromium through playwright-core), against a
 * listening gateway on the embedded store and on Redis: an auditor signs in with a key file as
 * the CLI writes it, reads the reuse figures (the same numbers as GET /v1/stats/reuse), finds a
 * known audit event by its citizen, verifies the trail (intact, then the first bad event once a
 * tampered event is planted in the store), exports it, cannot reach the agency editor, and
 * switches to English; an admin sees a suspended agency as suspended, suspends another in the
 * editor, and replays dead webhook deliveries. A screenshot of each page lands in
 * test-output/console/.
 */

ensureConsoleBuilt()
const browser = await launchBrowser()
t.teardown(async () => await browser.close())
const redis = await startTestRedis()
t.teardown(async () => await redis.destroy())

const OTHER_PROCEDURE = '2.000889'

interface Served {
  w: World
  url: string
  keys: { auditor: string, admin: string }
  receiver: WebhookReceiver
}

const dayBefore = (day: string, n: number): string => new Date(Date.parse(`${day}T00:00:00Z`) - n * 86_400_000).toISOString().slice(0, 10)

/** A province with some history: 40 days of reuse figures, today's real queries, a denial and a download. */
async function serve (t: Test, store: Stores): Promise<Served> {
  const receiver = await startReceiver()
  t.teardown(async () => await receiver.close())
  // the portal's announcements fail once and are given up: dead letters to replay
  receiver.behaviour = () => 500
  const w = await buildWorld(t, {
    store,
    env: { OUTBOX_WORKER: 'true', OUTBOX_POLL_MS: '50', OUTBOX_MAX_ATTEMPTS: '1', PORTAL_WEBHOOK_URL: receiver.url, AUTH_FAILURE_LIMIT_PER_MINUTE: '0', RATE_LIMIT_PER_MINUTE: '0' }
  })
  const day = today()
  for (let i = 1; i <= 40; i++) {
    const queries = 4 + (i % 5)
    const found = Math.min(queries, 1 + (i % 4))
    const other = 2 + (i % 3)
    const increments: Record<string, number> = {
      [counterField('queries')]: queries + other,
      [counterField('found')]: found + 1,
      [counterField('denials')]: i % 3,
      [counterField('queries', 'procedure', PROCEDURE)]: queries,
      [counterField('found', 'procedure', PROCEDURE)]: found,
      [counterField('queries', 'procedure', OTHER_PROCEDURE)]: other,
      [counterField('found', 'procedure', OTHER_PROCEDURE)]: 1,
      [counterField('denials', 'procedure', PROCEDURE)]: i % 3,
      [counterField('queries', 'agency', CODES.requester)]: queries + other,
      [counterField('found', 'agency', CODES.requester)]: found + 1
    }
    await store.reuseRecords.addReuseCounts(dayBefore(day, i), increments)
  }
  // today's: queries that find the citizen's results, one refused, one file downloaded
  for (let i = 0; i < 3; i++) {
    const res = await w.app.inject({ method: 'POST', url: '/v1/reuse-queries', headers: bearer(w.tokens.requester), payload: reuseQuery(w) })
    if (res.statusCode !== 200) throw new Error(res.body)
  }
  const denied = await w.app.inject({ method: 'POST', url: '/v1/reuse-queries', headers: bearer(w.tokens.otherRequester), payload: reuseQuery(w) })
  if (denied.statusCode !== 403) throw new Error(denied.body)
  const link = await downloadLink(w)
  const download = await w.app.inject({ method: 'GET', url: new URL(link, 'http://gateway.invalid').pathname, headers: bearer(w.tokens.requester) })
  if (download.statusCode !== 200) throw new Error(`download: ${download.statusCode}`)
  // a suspended agency, for the agencies page
  const suspend = await w.app.inject({
    method: 'PUT',
    url: `/v1/agencies/${CODES.otherRequester}`,
    headers: bearer(w.tokens.admin),
    payload: { name: `Agency ${CODES.otherRequester}`, roles: ['requester'], jwks: w.agencies.otherRequester.jwks, status: 'suspended' }
  })
  if (suspend.statusCode !== 200) throw new Error(suspend.body)
  // every announcement tried once and given up
  await waitFor(async () => {
    const portal = (await store.outbox.outboxStatus()).find((s) => s.destination === 'portal')
    return portal !== undefined && portal.dead > 0 && portal.queued === 0
  }, 15_000, 'dead portal deliveries')

  await w.app.listen({ host: '127.0.0.1', port: 0 })
  const address = w.app.server.address()
  const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`
  // the key files as the CLI and the demo write them (<code>.private.jwk.json, with the agency's code)
  const dir = await mkdtemp(join(tmpdir(), 'rg-console-keys-'))
  const keys = { auditor: join(dir, `${CODES.auditor}.private.jwk.json`), admin: join(dir, `${CODES.admin}.private.jwk.json`) }
  await writeFile(keys.auditor, JSON.stringify(w.agencies.auditor.privateKey, null, 2) + '\n', { mode: 0o600 })
  await writeFile(keys.admin, JSON.stringify(w.agencies.admin.privateKey, null, 2) + '\n', { mode: 0o600 })
  return { w, url, keys, receiver }
}

async function api (w: World, url: string, token = w.tokens.auditor): Promise<any> {
  const res = await w.app.inject({ method: 'GET', url, headers: bearer(token) })
  if (res.statusCode !== 200) throw new Error(`${url}: ${res.body}`)
  return res.json()
}

/** a table's body as a person reads it: each cell's number (data-value) or text */
async function rowsOf (table: Locator): Promise<string[][]> {
  return await table.locator('tbody tr').evaluateAll((rows) => rows.map((row) => [...row.children].map((cell) => cell.getAttribute('data-value') ?? (cell.textContent ?? '').trim())))
}

function tableCaptioned (page: Page, caption: string): Locator {
  return page.locator('table').filter({ has: page.locator('caption', { hasText: caption }) })
}

async function signIn (page: Page, _served: Served, key: string, labels: { file: string, code: string, button: string }, code: string): Promise<void> {
  await page.getByLabel(labels.file).setInputFiles(key)
  // the agency code is filled in from the file: the user confirms it
  await t.resolves(page.getByLabel(labels.code).evaluate(async (input: { value: string }, expected) => {
    for (let i = 0; i < 100 && input.value !== expected; i++) await new Promise((resolve) => setTimeout(resolve, 20))
    if (input.value !== expected) throw new Error(`agency code ${input.value}`)
  }, code))
  await page.getByRole('button', { name: labels.button, exact: true }).click()
}

/** Writes the stored form of an event back with its outcome changed: what someone with write access to the store might do. */
async function plantTampered (store: Stores, id: string): Promise<void> {
  const [stored] = await store.audit.auditEvents([id])
  if (!stored) throw new Error(`no event ${id}`)
  const tampered = JSON.stringify({ ...stored, outcome: stored.outcome === 'denied' ? 'granted' : 'denied' })
  if (store instanceof RedisStores) await store.client.hset(store.key('audit', 'ev'), ulidToBytes(id), tampered)
  else (store.audit as unknown as { eventsById: Map<string, string> }).eventsById.set(id, tampered)
}

/** the page's controls that have no accessible name (a label, aria-label or text) */
async function unlabelled (page: Page): Promise<string[]> {
  return await page.locator('input, select, textarea, button, a[href]').evaluateAll((controls) => controls
    .filter((c: any) => !(c.labels?.length > 0 || c.getAttribute('aria-label') || c.getAttribute('aria-labelledby') || (c.textContent ?? '').trim() !== ''))
    .map((c) => c.outerHTML))
}

async function shot (page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true })
}

function suite (name: string, makeStore: (t: Test) => Promise<Stores>): void {
  t.test(name, async (t) => {
    const store = await makeStore(t)
    const served = await serve(t, store)
    const { w } = served
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true })
    t.teardown(async () => await context.close())
    const page = await context.newPage()
    const consoleErrors: string[] = []
    page.on('console', (message) => { if (message.type() === 'error') consoleErrors.push(message.text()) })
    page.on('pageerror', (err) => { consoleErrors.push(err.message) })

    await t.test('an auditor signs in with a key file, in Vietnamese by default', async (t) => {
      await page.goto(`${served.url}/console`)
      t.equal(await page.locator('html').getAttribute('lang'), 'vi')
      await page.getByRole('heading', { name: 'Đăng nhập' }).waitFor()
      await shot(page, `${name}-sign-in-vi`)
      t.same(await unlabelled(page), [], 'every control is labelled')
      // a public key file is no key; a key with another agency's code is refused by the gateway, in its words
      const dir = await mkdtemp(join(tmpdir(), 'rg-console-wrong-'))
      const publicOnly = join(dir, `${CODES.auditor}.jwks.json`)
      await writeFile(publicOnly, JSON.stringify(w.agencies.auditor.jwks))
      await page.getByLabel('Tệp khóa bí mật của cơ quan').setInputFiles(publicOnly)
      await page.getByText('Không đọc được tệp khóa').waitFor()
      await page.getByLabel('Tệp khóa bí mật của cơ quan').setInputFiles(served.keys.auditor)
      await page.getByLabel('Mã định danh cơ quan').fill(CODES.requester)
      await page.getByRole('button', { name: 'Đăng nhập', exact: true }).click()
      await page.locator('[role=alert]').filter({ hasText: /kid|key/ }).waitFor()
      t.equal(await page.getByRole('navigation').count(), 0, 'not signed in')
      // an empty code is the one the key file names
      await page.getByLabel('Mã định danh cơ quan').fill('')
      await page.getByRole('button', { name: 'Đăng nhập', exact: true }).click()
      await page.getByText(`Đăng nhập với tư cách ${CODES.auditor}`).waitFor()
      const nav = page.getByRole('navigation', { name: 'Các trang' })
      t.same(await nav.getByRole('link').allTextContents(), ['Tỷ lệ tái sử dụng', 'Nhật ký kiểm toán'], 'an auditor is shown the reuse and audit pages only')
      // nothing of the key or the token is kept by the browser: the language is all it keeps
      const kept = await page.evaluate(async () => {
        const { localStorage, sessionStorage, indexedDB, document } = globalThis as any
        return { local: Object.keys(localStorage), session: Object.keys(sessionStorage), databases: (await indexedDB.databases()).length, cookies: document.cookie }
      })
      t.same(kept, { local: [], session: [], databases: 0, cookies: '' })
    })

    await t.test('the reuse page shows the figures of GET /v1/stats/reuse, per day, per month and per procedure', async (t) => {
      await page.getByRole('heading', { name: 'Tỷ lệ tái sử dụng kết quả' }).waitFor()
      const to = today()
      const from = dayBefore(to, 40)
      await page.getByLabel('Từ ngày').fill(from)
      await page.getByRole('button', { name: 'Xem', exact: true }).click()
      const daily = await api(w, `/v1/stats/reuse?from=${from}&to=${to}&groupBy=procedure&interval=day`)
      const monthly = await api(w, `/v1/stats/reuse?from=${from}&to=${to}&groupBy=procedure&interval=month`)
      const figures = (f: any): string[] => [String(f.queries), String(f.found), String(f.denials), String(f.downloads), f.reuseRate === null ? '' : String(f.reuseRate)]
      const dayTable = tableCaptioned(page, 'Tỷ lệ tái sử dụng theo ngày')
      await dayTable.locator('tbody tr').nth(40).waitFor()
      // overall, then each procedure's rate (the chart's lines), most queries first
      const procedures: string[] = daily.groups.map((g: any) => g.key)
      t.same(procedures, [PROCEDURE, OTHER_PROCEDURE])
      const step = (s: any): string[] => [s.period, ...figures(s.total), ...procedures.map((key) => String(s.groups.find((g: any) => g.key === key)?.reuseRate ?? ''))]
      t.same(await rowsOf(dayTable), daily.series.map(step), 'a row per day, the API\'s numbers')
      t.same(await rowsOf(tableCaptioned(page, 'Tỷ lệ tái sử dụng theo tháng')), monthly.series.map(step), 'a row per month')
      t.same(await rowsOf(tableCaptioned(page, 'Tỷ lệ tái sử dụng theo thủ tục')), daily.groups.map((g: any) => [g.key, ...figures(g)]), 'a row per procedure')
      const totals = await page.locator('.figures dd').evaluateAll((dds) => dds.map((dd) => dd.getAttribute('data-value')))
      t.same(totals, figures(daily.total), 'the period\'s totals')
      t.ok(daily.total.queries > 100 && daily.total.downloads === 1 && daily.total.denials > 0, 'history and today\'s traffic are both counted')
      t.equal(await page.locator('figure.chart[data-drawn="true"] canvas').count(), 3, 'three charts drawn')
      t.match(await page.locator('.u-legend').first().textContent(), /Mục tiêu \(30 %\)/, 'with the target line, 30 % by default')
      // the CSV is the table
      const [csv] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Tải bảng CSV' }).first().click()])
      const lines = (await readFile(await csv.path(), 'utf8')).replace(/^\ufeff/, '').trim().split('\r\n')
      t.equal(lines[0], `Ngày,Truy vấn,Tìm thấy,Bị từ chối,Lượt tải tệp,Tỷ lệ tái sử dụng,Tỷ lệ tái sử dụng ${PROCEDURE},Tỷ lệ tái sử dụng ${OTHER_PROCEDURE}`)
      t.same(lines.slice(1).map((line) => line.split(',')), daily.series.map(step))
      await shot(page, `${name}-reuse-vi`)
      t.same(await unlabelled(page), [], 'every control is labelled')
    })

    await t.test('the keyboard alone moves between pages', async (t) => {
      await page.locator('body').focus()
      let reached = false
      for (let i = 0; i < 20 && !reached; i++) {
        await page.keyboard.press('Tab')
        reached = await page.evaluate(() => (globalThis as any).document.activeElement?.textContent === 'Nhật ký kiểm toán')
      }
      t.ok(reached, 'Tab reaches the audit page\'s link')
      const outline = await page.evaluate(() => { const el = (globalThis as any).document.activeElement; return (globalThis as any).getComputedStyle(el).outlineStyle })
      t.equal(outline, 'solid', 'the focus is visible')
      await page.keyboard.press('Enter')
      await page.getByRole('heading', { name: 'Nhật ký kiểm toán', level: 2 }).waitFor()
      await page.getByRole('link', { name: 'Tỷ lệ tái sử dụng' }).click()
      await page.getByRole('heading', { name: 'Tỷ lệ tái sử dụng kết quả' }).waitFor()
    })

    await t.test('the audit page finds a known event by its citizen, who stays out of the URL and the storage', async (t) => {
      const known = await w.app.inject({ method: 'POST', url: '/v1/audit/search', headers: bearer(w.tokens.auditor), payload: { subject: { kind: 'citizen', id: w.citizen }, action: 'reuse.queried', limit: 1 } })
      const event = known.json().events[0]
      t.ok(event?.id, 'the trail holds the requester\'s query')
      await page.getByRole('link', { name: 'Nhật ký kiểm toán' }).click()
      await page.getByRole('heading', { name: 'Nhật ký kiểm toán', level: 2 }).waitFor()
      await page.getByLabel('Loại chủ thể').selectOption('citizen')
      await page.getByLabel('Số định danh chủ thể').fill(w.citizen)
      await page.getByLabel('Hành động').fill('reuse.queried')
      await page.getByRole('button', { name: 'Tìm kiếm' }).click()
      const results = tableCaptioned(page, 'Kết quả tìm kiếm')
      await results.getByText(event.id).waitFor()
      const rows = await rowsOf(results)
      t.ok(rows.every((row) => row[1] === 'reuse.queried'), 'reuse queries only')
      t.ok(rows.filter((row) => row[3] === CODES.requester && row[2] === 'granted').length >= 3, 'the requester\'s, granted')
      t.ok(rows.some((row) => row[3] === CODES.otherRequester && row[2] === 'denied'), 'and the other requester\'s, denied')
      t.notOk(page.url().includes(w.citizen), 'not in the URL')
      const stored = await page.evaluate(() => JSON.stringify({ ...(globalThis as any).localStorage }) + JSON.stringify({ ...(globalThis as any).sessionStorage }))
      t.notOk(stored.includes(w.citizen), 'not in the browser\'s storage')
      await shot(page, `${name}-audit-vi`)
      t.same(await unlabelled(page), [], 'every control is labelled')
    })

    await t.test('one click verifies the trail: intact, then the first bad event once one is tampered with', async (t) => {
      const verify = page.getByRole('button', { name: 'Kiểm tra tính toàn vẹn khoảng thời gian' })
      await verify.click()
      await page.locator('.verdict .ok').filter({ hasText: 'Nguyên vẹn' }).waitFor()
      const lines = (await w.app.inject({ method: 'GET', url: '/v1/audit/export', headers: bearer(w.tokens.auditor) })).body.trim().split('\n')
      const victim = JSON.parse(lines[5] as string)
      await plantTampered(store, victim.id)
      await verify.click()
      const bad = page.locator('.verdict .bad')
      await bad.waitFor()
      t.match(await bad.textContent(), new RegExp(`sự kiện hỏng đầu tiên ${victim.id}`), 'names the tampered event')
      await shot(page, `${name}-audit-verify-vi`)
    })

    await t.test('the export saves the trail as NDJSON, fetched with the token', async (t) => {
      const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Xuất NDJSON' }).click()])
      t.match(download.suggestedFilename(), /\.ndjson$/)
      const events = (await readFile(await download.path(), 'utf8')).trim().split('\n').map((line) => JSON.parse(line))
      t.ok(events.length > 20 && events.every((e) => typeof e.id === 'string' && typeof e.hash === 'string'), `${events.length} events`)
      await page.getByText(`Đã xuất ${events.length} sự kiện.`).waitFor()
    })

    await t.test('the access token is renewed with a fresh assertion signed in the page, and the page carries on', async (t) => {
      const issued = async (): Promise<number> => {
        const res = await w.app.inject({ method: 'POST', url: '/v1/audit/search', headers: bearer(w.tokens.auditor), payload: { agency: CODES.auditor, action: 'token.issued', limit: 1000 } })
        return (res.json().events as unknown[]).length
      }
      const before = await issued()
      // what the page's timer does a minute before the token expires
      await page.evaluate(async () => { await (globalThis as any).reuseConsole.renewNow() })
      t.equal(await issued(), before + 1, 'one more token issued to the auditor')
      await page.getByRole('button', { name: 'Tìm kiếm' }).click()
      await tableCaptioned(page, 'Kết quả tìm kiếm').waitFor()
      t.notOk(await page.locator('[role=alert]').filter({ hasText: 'Lỗi' }).count(), 'the search still answers')
    })

    await t.test('an auditor cannot reach the agency editor: not linked, and its address opens nothing', async (t) => {
      await page.goto('about:blank')
      await page.goto(`${served.url}/console#/agencies`)
      // a new page load is a new visit: the token was in memory only, so it is gone
      await page.getByRole('heading', { name: 'Đăng nhập' }).waitFor()
      await signIn(page, served, served.keys.auditor, { file: 'Tệp khóa bí mật của cơ quan', code: 'Mã định danh cơ quan', button: 'Đăng nhập' }, CODES.auditor)
      await page.getByText('Cơ quan của bạn không có quyền mở trang này (cần quyền admin).').waitFor()
      t.equal(await page.getByRole('link', { name: 'Cơ quan và thỏa thuận' }).count(), 0, 'no link')
      t.equal(await page.locator('form.editing, table').count(), 0, 'no editor, no agency list')
      await shot(page, `${name}-agencies-refused-vi`)
    })

    await t.test('in English: the switch is kept, <html lang> follows, every page text changes', async (t) => {
      await page.getByLabel('Ngôn ngữ').selectOption('en')
      t.equal(await page.locator('html').getAttribute('lang'), 'en')
      await page.getByText('Your agency may not open this page (it needs the admin scope).').waitFor()
      await page.getByRole('link', { name: 'Reuse rate' }).click()
      await page.getByRole('heading', { name: 'Reuse rate of results' }).waitFor()
      const daily = await api(w, '/v1/stats/reuse?groupBy=procedure&interval=day')
      const dayTable = tableCaptioned(page, 'Reuse rate per day')
      await dayTable.locator('tbody tr').first().waitFor()
      t.equal(await dayTable.locator('tbody tr').count(), daily.series.length, 'the last 30 days by default')
      t.match(await page.locator('.u-legend').first().textContent(), /Target \(30 %\)/)
      await shot(page, `${name}-reuse-en`)
      // README's picture of the console: UPDATE_SCREENSHOTS=1 takes it again
      if (process.env.UPDATE_SCREENSHOTS === '1' && name === 'embedded') await page.screenshot({ path: new URL('../docs/images/console-reuse.png', import.meta.url).pathname })
      await page.getByRole('link', { name: 'Audit trail' }).click()
      await page.getByRole('button', { name: 'Verify the range' }).click()
      await page.locator('.verdict .bad').filter({ hasText: 'Tampering found: first bad event' }).waitFor()
      await shot(page, `${name}-audit-en`)
      t.same(await page.evaluate(() => ({ ...(globalThis as any).localStorage })), { 'reuse-console.lang': 'en' }, 'the language is the one thing kept')
      await page.getByRole('button', { name: 'Sign out' }).click()
      await page.getByText('You are signed out; the key and the access token are forgotten.').waitFor()
      await page.reload()
      t.equal(await page.locator('html').getAttribute('lang'), 'en', 'the choice survives a reload')
      await page.getByRole('heading', { name: 'Sign in' }).waitFor()
    })

    await t.test('an admin sees the suspended agency, edits another, and reads agreements and keys', async (t) => {
      await signIn(page, served, served.keys.admin, { file: 'Your agency\'s private key file', code: 'Agency code', button: 'Sign in' }, CODES.admin)
      await page.getByText(`Signed in as ${CODES.admin}`).waitFor()
      const nav = page.getByRole('navigation', { name: 'Pages' })
      t.same(await nav.getByRole('link').allTextContents(), ['Agencies and agreements', 'Webhook deliveries'], 'an admin (without audit:read) is shown the admin pages')
      await page.getByRole('link', { name: 'Agencies and agreements' }).click()
      const suspended = page.locator(`tr[data-agency="${CODES.otherRequester}"]`)
      await suspended.waitFor()
      t.equal(await suspended.locator('.badge').textContent(), 'Suspended')
      t.equal(await page.locator(`tr[data-agency="${CODES.requester}"] .badge`).textContent(), 'Active')
      const kid = w.agencies.issuer.privateKey.kid
      t.match(await page.locator(`tr[data-agency="${CODES.issuer}"] td.keys`).textContent(), kid, 'the keys by kid')
      const agreement = (await rowsOf(tableCaptioned(page, 'Data-sharing agreements'))).find((row) => row[0] === AGREEMENT_ID)
      t.same(agreement, [
        AGREEMENT_ID, `${CODES.requester} — Agency ${CODES.requester}`, 'giay-khai-sinh, giay-chung-nhan-quyen-su-dung-dat, phieu-ly-lich-tu-phap', PROCEDURE,
        'giay-khai-sinh: fullName, dateOfBirth\ngiay-chung-nhan-quyen-su-dung-dat: parcelNumber\nphieu-ly-lich-tu-phap: all', 'Yes', 'from 2026-01-01, open-ended', 'Active'
      ], 'who may reuse what, for which procedures and fields, until when')
      t.notOk(await page.locator('body').textContent().then((text) => text?.includes('"d"')), 'no private key member shown')
      await shot(page, `${name}-agencies-en`)
      t.same(await unlabelled(page), [], 'every control is labelled')

      await page.getByRole('button', { name: `Edit agency ${CODES.otherIssuer}` }).click()
      await page.getByLabel('Status').selectOption('suspended')
      await page.getByRole('button', { name: 'Save' }).click()
      await page.getByText(`Agency ${CODES.otherIssuer} saved.`).waitFor()
      await page.locator(`tr[data-agency="${CODES.otherIssuer}"] .badge`).filter({ hasText: 'Suspended' }).waitFor()
      const saved = await api(w, `/v1/agencies/${CODES.otherIssuer}`, w.tokens.admin)
      t.equal(saved.status, 'suspended', 'suspended through the API')
      t.same(saved.issuableTypes, ['giay-khai-sinh'], 'what the form did not change is kept')
      t.same(saved.jwks.keys.map((k: any) => k.kid), w.agencies.otherIssuer.jwks.keys.map((k: any) => k.kid), 'its keys are kept')
    })

    await t.test('an admin reads the outbox backlog and its dead letters, and replays them', async (t) => {
      await page.getByRole('link', { name: 'Webhook deliveries' }).click()
      const portal = page.locator('tr[data-destination="portal"]')
      await portal.waitFor()
      const status = await api(w, '/v1/webhooks/status', w.tokens.admin)
      const expected = status.destinations.find((d: any) => d.destination === 'portal')
      t.same((await rowsOf(tableCaptioned(page, 'Backlog per destination'))).find((row) => row[0] === 'portal')?.slice(0, 4), ['portal', String(expected.queued), String(expected.delivered), String(expected.dead)])
      await page.getByRole('button', { name: 'Dead letters only: portal' }).click()
      const dead = tableCaptioned(page, 'Deliveries to portal — Dead letters')
      await dead.locator('tbody tr').first().waitFor()
      t.equal(await dead.locator('tbody tr').count(), expected.dead, 'every dead letter listed')
      await shot(page, `${name}-deliveries-en`)
      t.same(await unlabelled(page), [], 'every control is labelled')
      served.receiver.behaviour = () => 204
      await page.getByRole('combobox', { name: 'Destination' }).selectOption('portal')
      await page.getByLabel('Send again the events after cursor').fill('0')
      await page.getByRole('button', { name: 'Send again', exact: true }).click()
      await page.getByText(`${expected.dead} events queued again for portal.`).waitFor()
      await served.receiver.until((acknowledged) => acknowledged.length >= expected.dead, 15_000)
    })

    await t.test('the screen reads on a tablet too', async (t) => {
      await page.setViewportSize({ width: 768, height: 1024 })
      await page.getByRole('link', { name: 'Agencies and agreements' }).click()
      await page.locator(`tr[data-agency="${CODES.otherRequester}"]`).waitFor()
      const overflow = await page.evaluate(() => { const root = (globalThis as any).document.documentElement; return root.scrollWidth - root.clientWidth })
      t.equal(overflow, 0, 'no sideways scrolling of the page (wide tables scroll in their own box)')
      await shot(page, `${name}-agencies-tablet-en`)
      await page.setViewportSize({ width: 1280, height: 900 })
    })

    await t.test('a token that can no longer be renewed (the agency was suspended) ends the session', async (t) => {
      await page.getByRole('button', { name: 'Sign out' }).click()
      await signIn(page, served, served.keys.auditor, { file: 'Your agency\'s private key file', code: 'Agency code', button: 'Sign in' }, CODES.auditor)
      await page.getByText(`Signed in as ${CODES.auditor}`).waitFor()
      const suspend = await w.app.inject({ method: 'PUT', url: `/v1/agencies/${CODES.auditor}`, headers: bearer(w.tokens.admin), payload: { name: 'Inspectorate', roles: ['auditor'], jwks: w.agencies.auditor.jwks, status: 'suspended' } })
      t.equal(suspend.statusCode, 200)
      await page.evaluate(async () => { await (globalThis as any).reuseConsole.renewNow() })
      await page.getByText(/The session could not be renewed \(.*suspended.*\); please sign in again\./).waitFor()
      await page.getByRole('heading', { name: 'Sign in' }).waitFor()
      t.equal(await page.getByRole('navigation').count(), 0, 'nothing of the pages is left')
    })

    t.same(consoleErrors.filter((text) => !/status of (4\d\d)/.test(text)), [], 'no script error, no CSP violation')
  })
}

suite('embedded', async () => new MemoryStores())
suite('redis', async (t) => await testRedisStore(t, redis))
