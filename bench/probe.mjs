// Preloaded into every benchmarked server by the orchestrator, through
// NODE_OPTIONS="--import=<this file> --expose-gc" (no server code changes).
// Over the IPC channel the orchestrator opened, it answers:
//   {probe: n, cmd: 'mark'}        start an event-loop-utilization window
//   {probe: n, cmd: 'mem', gc}      memoryUsage(), after two full GCs if gc is true
//   {probe: n, cmd: 'sourcemaps', urls}   the source maps of loaded modules (tsx's
//                                   transforms), so a CPU profile maps back to .ts lines
// Plain JavaScript so that it loads before any TypeScript loader.
import { findSourceMap } from 'node:module';
import { performance } from 'node:perf_hooks';

if (typeof process.send === 'function') {
  let mark = performance.eventLoopUtilization();
  process.on('message', (msg) => {
    if (!msg || typeof msg !== 'object' || typeof msg.probe !== 'number') return;
    if (msg.cmd === 'sourcemaps') {
      const maps = {};
      for (const url of Array.isArray(msg.urls) ? msg.urls : []) {
        try {
          const map = findSourceMap(url);
          if (map) maps[url] = map.payload;
        } catch {
          /* not loaded, or no map */
        }
      }
      process.send({ probe: msg.probe, maps });
      return;
    }
    if (msg.cmd === 'mark') mark = performance.eventLoopUtilization();
    // Before any forced GC, which would count as busy time.
    const elu = performance.eventLoopUtilization(mark).utilization;
    const collect = msg.gc === true && typeof globalThis.gc === 'function';
    if (collect) {
      globalThis.gc();
      globalThis.gc();
    }
    const m = process.memoryUsage();
    process.send({
      probe: msg.probe,
      rss: m.rss,
      heapUsed: m.heapUsed,
      heapTotal: m.heapTotal,
      external: m.external,
      arrayBuffers: m.arrayBuffers,
      elu,
      gc: collect,
    });
  });
  // The channel must not keep an otherwise finished process alive.
  process.channel?.unref();
}
