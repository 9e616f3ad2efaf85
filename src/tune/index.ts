/** Autotuning: candidate schedules, the on-disk cache, the tuner and tuned compilation. */
export { candidatesFor, deviceCaps, type Candidate, type DeviceCaps } from './candidates.js';
export { tuneProgram, compileTuned, batchFor, SAMPLE_MS, COMPILER_VERSION, type KernelTuning, type TuneOptions, type TuneProgress } from './tuner.js';
export { cacheDir, tuneKey, readRecord, type TuneRecord, type TunedEntry } from './cache.js';
