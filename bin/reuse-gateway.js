#!/usr/bin/env node
// The command-line tool, from the compiled sources (npm install builds them; so does npm start).
import { existsSync } from 'node:fs'

const compiled = new URL('../dist/cli/main.js', import.meta.url)
if (!existsSync(compiled)) {
  process.stderr.write('reuse-gateway: not built yet; run "npm run build" in the gateway folder\n')
  process.exit(1)
}
await import(compiled.href)
