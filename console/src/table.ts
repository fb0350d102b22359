import { h, saveFile } from './dom.js'
import { t } from './i18n.js'

/**
 * A data table with its caption, and the same rows as a CSV file. A cell may carry the raw
 * value behind its text (`data-value`), the number the chart drew.
 */
export interface Column<Row> {
  title: string
  text: (row: Row) => string
  /** the value the CSV holds (default: the text) */
  csv?: (row: Row) => string | number
  numeric?: boolean
}

export function dataTable<Row> (caption: string, columns: Array<Column<Row>>, rows: Row[], empty = t('noData')): HTMLElement {
  if (rows.length === 0) return h('p', { class: 'empty' }, empty)
  return h('div', { class: 'table-wrap', tabindex: 0, role: 'region', 'aria-label': caption },
    h('table', null,
      h('caption', null, caption),
      h('thead', null, h('tr', null, columns.map((c) => h('th', { scope: 'col', class: c.numeric ? 'num' : null }, c.title)))),
      h('tbody', null, rows.map((row) => h('tr', null, columns.map((c, i) => {
        const text = c.text(row)
        const raw = c.csv?.(row)
        const attrs = { class: c.numeric ? 'num' : null, 'data-value': raw === undefined ? null : String(raw) }
        return i === 0 ? h('th', { scope: 'row', ...attrs }, text) : h('td', attrs, text)
      }))))
    )
  )
}

function csvCell (value: string | number): string {
  const text = String(value)
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text
}

export function toCsv<Row> (columns: Array<Column<Row>>, rows: Row[]): string {
  const lines = [columns.map((c) => csvCell(c.title)).join(',')]
  for (const row of rows) lines.push(columns.map((c) => csvCell(c.csv ? c.csv(row) : c.text(row))).join(','))
  return lines.join('\r\n') + '\r\n'
}

/** A button that saves the rows as CSV (UTF-8 with a byte-order mark, so spreadsheets read Vietnamese right). */
export function csvButton<Row> (fileName: string, columns: Array<Column<Row>>, rows: Row[], label = t('downloadCsv')): HTMLButtonElement {
  return h('button', { type: 'button', class: 'secondary', disabled: rows.length === 0, onclick: () => { saveFile(fileName, 'text/csv;charset=utf-8', ['\ufeff', toCsv(columns, rows)]) } }, label)
}
