/** Autotuning: candidate schedules, the on-disk cache, the tuner and tuned compilation. */
export { candidatesFor, deviceCaps, type Candidate, type DeviceCaps } from './candidates.js';
export { batchFor, SAMPLE_MS } from './measure.js';
export { tuneProgram, compileTuned, COMPILER_VERSION, type KernelTuning, type TuneOptions, type TuneProgress } from './tuner.js';
export { cacheDir, deviceKey, tuneKey, readRecord, type TuneRecord, type TunedEntry } from './cache.js';
export { calibrateDevice, describeProfile, probeFamilies, profileParams, readProfile, writeProfile, PROBE_N, PROFILE_MARGIN, PROFILE_MIN_ROWS, type DeviceProfile } from './profile.js';
