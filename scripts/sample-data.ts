/**
 * Realistic Vietnamese sample documents, as NDJSON:
 *   node --import tsx scripts/sample-data.ts 1000 [--seed N] [--types a,b] [--as-of YYYY-MM-DD] > documents.ndjson
 */
import { runSampleData } from '../src/sample-data/generate.js'

export * from '../src/sample-data/generate.js'

if (process.argv[1]?.endsWith('sample-data.ts') === true) runSampleData(process.argv.slice(2))
