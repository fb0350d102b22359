/** Seeded randomness for the sample data: the same seed draws the same numbers, in the same order. */

/** mulberry32: a tiny, fast 32-bit PRNG; plenty for sample data, not for anything secret. */
export function mulberry32 (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export class Rng {
  readonly #next: () => number
  constructor (seed: number) { this.#next = mulberry32(seed) }
  float (): number { return this.#next() }
  /** an integer in [min, max] */
  int (min: number, max: number): number { return min + Math.floor(this.#next() * (max - min + 1)) }
  chance (p: number): boolean { return this.#next() < p }
  pick<T> (items: readonly T[]): T { return items[Math.floor(this.#next() * items.length)] as T }
  weighted<T> (items: ReadonlyArray<readonly [T, number]>): T {
    let total = 0
    for (const [, w] of items) total += w
    let r = this.#next() * total
    for (const [item, w] of items) {
      r -= w
      if (r < 0) return item
    }
    return (items[items.length - 1] as readonly [T, number])[0]
  }
  digits (n: number): string {
    let s = ''
    for (let i = 0; i < n; i++) s += String(Math.floor(this.#next() * 10))
    return s
  }
}
