#!/usr/bin/env node
/*
 * Used by binding.gyp at build time: finds the CUDA toolkit's <cuda.h> (CUDA >= 11).
 *
 *   node scripts/cuda-include.cjs --include   prints the include folder, or nothing
 *   node scripts/cuda-include.cjs --defines   prints TESSERA_HAVE_CUDA_H, or nothing, and
 *                                             TESSERA_HAVE_NVRTC_H when an <nvrtc.h> is next to it
 *
 * Nothing found is not an error: the addon then builds against its vendored
 * src/backends/cuda/native/cuda_min.h (a few driver API types; libcuda is dlopen'ed at run time
 * either way), so `npm ci` never fails for want of CUDA. TESSERA_CUDA_INCLUDE=<dir> picks a folder,
 * TESSERA_CUDA_INCLUDE=none forces the vendored header. Looks in $CUDA_HOME, $CUDA_PATH, $CUDA_ROOT,
 * next to the nvcc on PATH, /usr/local/cuda and /usr/include. The same folder's <nvrtc.h>, when
 * there, checks the vendored nvrtc_min.h the same way (NVRTC is dlopen'ed at run time too).
 */
'use strict';
const fs = require('node:fs');
const path = require('node:path');

function usable(dir) {
  try {
    const text = fs.readFileSync(path.join(dir, 'cuda.h'), 'utf8');
    const m = /#define\s+CUDA_VERSION\s+(\d+)/.exec(text);
    return m !== null && Number(m[1]) >= 11000 && text.includes('cuDevicePrimaryCtxRetain');
  } catch {
    return false;
  }
}

function nvrtcUsable(dir) {
  try {
    const text = fs.readFileSync(path.join(dir, 'nvrtc.h'), 'utf8');
    return text.includes('nvrtcGetCUBINSize');
  } catch {
    return false;
  }
}

function candidates() {
  const out = [];
  for (const v of ['CUDA_HOME', 'CUDA_PATH', 'CUDA_ROOT']) {
    if (process.env[v]) out.push(path.join(process.env[v], 'include'));
  }
  for (const d of (process.env.PATH || '').split(path.delimiter)) {
    if (!d) continue;
    const nvcc = path.join(d, 'nvcc');
    try {
      if (!fs.statSync(nvcc).isFile()) continue;
      out.push(path.join(path.dirname(fs.realpathSync(nvcc)), '..', 'include'));
      // A wrapper script (`exec /usr/local/cuda-X/bin/nvcc "$@"`) names the real one.
      const m = /exec\s+"?([^"\s]+\/nvcc)"?/.exec(fs.readFileSync(nvcc, 'utf8').slice(0, 4096));
      if (m) out.push(path.join(path.dirname(m[1]), '..', 'include'));
    } catch {
      // not there
    }
  }
  out.push('/usr/local/cuda/include', '/usr/include');
  return out;
}

function find() {
  const forced = process.env.TESSERA_CUDA_INCLUDE;
  if (forced !== undefined) {
    if (forced === '' || forced === 'none') return undefined;
    return usable(forced) ? path.resolve(forced) : undefined;
  }
  for (const dir of candidates()) if (usable(dir)) return path.resolve(dir);
  return undefined;
}

const dir = find();
const mode = process.argv[2] || '--include';
if (mode === '--include' && dir) process.stdout.write(dir + '\n');
else if (mode === '--defines' && dir) {
  process.stdout.write('TESSERA_HAVE_CUDA_H\n');
  if (nvrtcUsable(dir)) process.stdout.write('TESSERA_HAVE_NVRTC_H\n');
}
