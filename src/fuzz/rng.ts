/** mulberry32: a small seedable PRNG giving uniform numbers in [0, 1), the same stream everywhere. */
export function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A small seeded PRNG (mulberry32), so every generated program and input replays from its seed. */
export class Rng {
  private readonly u: () => number;
  constructor(seed: number) {
    this.u = mulberry32(seed);
  }
  next(): number {
    return this.u();
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }
}
