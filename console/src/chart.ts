import uPlot from 'uplot'
import { t } from './i18n.js'
import { h } from './dom.js'

/**
 * Reuse-rate charts (uPlot, drawn on canvas): a rate in per cent over days or months, or one bar
 * per group, always with the target line. The figure says what it shows; its numbers are in the
 * table under it (a canvas says nothing to a screen reader).
 */

export interface RatePoint {
  /** the x label: a day, a month or a group key */
  label: string
  /** for a time axis: the period's start, epoch seconds */
  at?: number
  /** 0–1, or null when nothing was asked */
  rate: number | null
}

const RATE = '#1f4e9c'
const TARGET = '#b3261e'

export function rateChart (title: string, points: RatePoint[], targetPercent: number, kind: 'time' | 'groups'): HTMLElement {
  const figure = h('figure', { class: 'chart', role: 'img', 'aria-label': t('chartOf', { title }) })
  const plotHolder = h('div', { class: 'plot' })
  figure.append(plotHolder)
  if (points.length === 0) return figure
  const xs = kind === 'time' ? points.map((p) => p.at ?? 0) : points.map((_, i) => i)
  const rates = points.map((p) => p.rate === null ? null : Math.round(p.rate * 1000) / 10)
  const target = points.map(() => targetPercent)
  const width = (): number => Math.max(280, Math.min(plotHolder.clientWidth || 640, 1100))
  const opts: uPlot.Options = {
    width: width(),
    height: 260,
    scales: { x: kind === 'time' ? { time: true } : { time: false, range: [-0.5, points.length - 0.5] }, y: { range: [0, 100] } },
    axes: [
      kind === 'time'
        ? { stroke: '#333' }
        : { stroke: '#333', splits: () => xs, values: (_u, splits) => splits.map((i) => points[i]?.label ?? ''), rotate: 0 },
      { stroke: '#333', values: (_u, splits) => splits.map((v) => `${v} %`), size: 60 }
    ],
    series: [
      {},
      {
        label: t('reuseRate'),
        stroke: RATE,
        width: 2,
        fill: kind === 'groups' ? 'rgba(31, 78, 156, 0.55)' : 'rgba(31, 78, 156, 0.08)',
        value: (_u, v) => v === null ? t('none') : `${v} %`,
        ...(kind === 'groups' ? { paths: uPlot.paths.bars!({ size: [0.6, 80] }), points: { show: false } } : { spanGaps: false })
      },
      { label: `${t('target')} (${targetPercent} %)`, stroke: TARGET, width: 2, dash: [8, 6], points: { show: false }, value: () => `${targetPercent} %` }
    ],
    legend: { live: kind === 'time' }
  }
  // uPlot measures its element: it draws once the figure is in the document
  const draw = (): void => {
    if (!figure.isConnected) { requestAnimationFrame(draw); return }
    opts.width = width()
    const plot = new uPlot(opts, [xs, rates, target] as uPlot.AlignedData, plotHolder)
    figure.dataset.drawn = 'true'
    new ResizeObserver(() => { plot.setSize({ width: width(), height: 260 }) }).observe(plotHolder)
  }
  queueMicrotask(draw)
  return figure
}
