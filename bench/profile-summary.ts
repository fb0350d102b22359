import { readFileSync } from 'node:fs'

/**
 * Where a CPU profile (node --cpu-prof) spends its time: self time per function, and per
 * package or file, heaviest first.
 * Usage: node --import tsx bench/profile-summary.ts FILE.cpuprofile [N] [only the last S seconds]
 */
interface ProfileNode { id: number, callFrame: { functionName: string, url: string, lineNumber: number }, hitCount?: number, children?: number[] }
const [file, topArg, lastArg] = process.argv.slice(2)
if (!file) throw new Error('usage: profile-summary.ts FILE.cpuprofile [N] [last seconds]')
const profile = JSON.parse(readFileSync(file, 'utf8')) as { nodes: ProfileNode[], samples: number[], timeDeltas: number[] }
const top = Number(topArg ?? 25)
const selfUs = new Map<number, number>()
// with a third argument, only the last seconds of the profile (the load, not the start-up)
const span = profile.timeDeltas.reduce((a, b) => a + b, 0)
const from = lastArg ? span - Number(lastArg) * 1e6 : 0
let at = 0
profile.samples.forEach((id, i) => {
  at += profile.timeDeltas[i] ?? 0
  if (at >= from) selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0))
})
const total = [...selfUs.values()].reduce((a, b) => a + b, 0)
const byFunction = new Map<string, number>()
const byPlace = new Map<string, number>()
for (const node of profile.nodes) {
  const us = selfUs.get(node.id) ?? 0
  if (!us) continue
  const url = node.callFrame.url.replace(/^file:\/\//, '')
  const place = url === '' ? `(${node.callFrame.functionName || 'native'})` : /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1] ?? (url.startsWith('node:') ? url : url.replace(/^.*?\/(src|bench|test)\//, '$1/'))
  const name = `${node.callFrame.functionName || '(anonymous)'} ${place}:${node.callFrame.lineNumber + 1}`
  byFunction.set(name, (byFunction.get(name) ?? 0) + us)
  byPlace.set(place, (byPlace.get(place) ?? 0) + us)
}
const print = (title: string, map: Map<string, number>): void => {
  console.log(`\n${title}`)
  for (const [name, us] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${(100 * us / total).toFixed(1).padStart(5)}%  ${name}`)
}
print('self time by package or file', byPlace)
print('self time by function', byFunction)
