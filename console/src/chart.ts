import uPlot from 'uplot'
import { t } from './i18n.js'
import { h } from './dom.js'

/**
 * Reuse-rate charts (uPlot, drawn on canvas), always with the target line: lines over days or
 * months (overall, and one line per group), or one bar per group. The figure says what it shows;
 * its numbers are in the table under it (a canvas says nothing to a screen reader).
 */

export interface RateLine {
  label: string
  /** 0–1 per step, or null where nothing was asked */
  rates: Array<number | null>
}

/** dark enough on white for AA contrast; the overall line first, then the groups' */
const COLOURS = ['#1f4e9c', '#1b6b32', '#7a3e9d', '#8a5300', '#00677a', '#5c5c5c', '#9c2f6b']
const TARGET = '#b3261e'
const HEIGHT = 280

const percent = (rate: number | null): number | null => rate === null ? null : Math.round(rate * 1000) / 10

/**
 * `labels`: the x axis (days, months or group keys). `lines`: for 'lines', the overall line then
 * a line per group; for 'bars', one line whose values are the bars.
 */
export function rateChart (title: string, axis: { name: string, labels: string[] }, lines: RateLine[], targetPercent: number, kind: 'lines' | 'bars'): HTMLElement {
  const labels = axis.labels
  const figure = h('figure', { class: 'chart', role: 'img', 'aria-label': t('chartOf', { title }) })
  const plotHolder = h('div', { class: 'plot' })
  figure.append(plotHolder)
  if (labels.length === 0) return figure
  const xs = labels.map((_, i) => i)
  // at most about a dozen labels on the axis, whatever the period's length
  const stride = Math.max(1, Math.ceil(labels.length / 12))
  const width = (): number => Math.max(280, Math.min(plotHolder.clientWidth || 640, 1100))
  const series: uPlot.Series[] = lines.map((line, i) => ({
    label: line.label,
    stroke: COLOURS[i % COLOURS.length],
    width: i === 0 ? 3 : 1.5,
    value: (_u: uPlot, v: number | null) => v === null ? t('none') : `${v} %`,
    ...(kind === 'bars'
      ? { fill: 'rgba(31, 78, 156, 0.55)', paths: uPlot.paths.bars!({ size: [0.6, 80] }), points: { show: false } }
      : { spanGaps: false, points: { show: labels.length <= 62, size: i === 0 ? 6 : 4 } })
  }))
  const opts: uPlot.Options = {
    width: width(),
    height: HEIGHT,
    scales: { x: { time: false, range: [-0.5, labels.length - 0.5] }, y: { range: [0, 100] } },
    axes: [
      { stroke: '#333', splits: () => xs.filter((i) => i % stride === 0), values: (_u, splits) => splits.map((i) => labels[i] ?? '') },
      { stroke: '#333', values: (_u, splits) => splits.map((v) => `${v} %`), size: 60 }
    ],
    series: [
      { label: axis.name, value: (_u, i) => labels[i] ?? '' },
      ...series,
      { label: `${t('target')} (${targetPercent} %)`, stroke: TARGET, width: 2, dash: [8, 6], points: { show: false }, value: () => `${targetPercent} %` }
    ],
    legend: { live: kind === 'lines' }
  }
  const data = [xs, ...lines.map((line) => line.rates.map(percent)), labels.map(() => targetPercent)] as uPlot.AlignedData
  // uPlot measures its element: it draws once the figure is in the document
  const draw = (): void => {
    if (!figure.isConnected) { requestAnimationFrame(draw); return }
    opts.width = width()
    const plot = new uPlot(opts, data, plotHolder)
    figure.dataset.drawn = 'true'
    new ResizeObserver(() => { plot.setSize({ width: width(), height: HEIGHT }) }).observe(plotHolder)
  }
  queueMicrotask(draw)
  return figure
}
