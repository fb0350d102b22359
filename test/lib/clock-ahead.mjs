// Loaded with `node --import` into a gateway a test starts: its clock (Date.now) runs
// CLOCK_AHEAD_MS ahead, so that what the test wrote a moment ago is days old to it (the audit
// archiver's hot window is counted in days).
const ahead = Number(process.env.CLOCK_AHEAD_MS ?? 0)
const now = Date.now
Date.now = () => now() + ahead
