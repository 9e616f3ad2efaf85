/** Medians, the only statistic the benchmarks report (these machines are noisy; means lie). */
export { median } from '../src/runtime/median.js';
