// A sound card whose clock runs apart from the machine's: reads a FIFO (PulseAudio's pipe sink,
// heard.mjs `startSkewedSinks`) at RATE frames a second PPM parts per million fast (negative:
// slow), so that the sink, and a player whose clock its sound drives, runs that far off.
//
//   node paced-reader.mjs <fifo> <rate> <ppm> <bytes per frame>

import { openSync, readSync } from "node:fs";

const [fifo, rate, ppm, frameBytes] = [process.argv[2], ...process.argv.slice(3, 6).map(Number)];
const pace = (rate * (1 + ppm * 1e-6) * frameBytes) / 1000;
const fd = openSync(fifo, "r");
const buffer = Buffer.alloc(1 << 16);
const start = performance.now();
let read = 0;
for (;;) {
  let want = Math.floor((performance.now() - start) * pace) - read;
  want -= want % frameBytes;
  while (want > 0) {
    const n = readSync(fd, buffer, 0, Math.min(want, buffer.length));
    if (n === 0) process.exit(0);
    read += n;
    want -= n;
  }
  await new Promise((r) => setTimeout(r, 2));
}
