import { createRequire } from 'node:module'
import { writeSync } from 'node:fs'

// Preloaded into a gateway process by test/tracing.test.ts: when the process ends, says on
// standard error whether any OpenTelemetry SDK module was loaded (the SDK is CommonJS, so every
// module of it is in require's cache, however it was imported).
const cache = createRequire(import.meta.url).cache
process.on('exit', () => {
  const loaded = Object.keys(cache).some((file) => /[\\/]@opentelemetry[\\/]sdk-/.test(file))
  writeSync(2, `otel-sdk-loaded=${loaded}\n`)
})
