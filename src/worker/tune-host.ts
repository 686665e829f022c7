/**
 * The app's conv kernel auto-tune: turns the set-up's "Tune kernels for this
 * GPU" into `TrainerOptions.autotune` for the training worker. The trainer tunes after step 0
 * (src/ops/autotune.ts); this reports it to the page: a `tuning` event per shape (the page's
 * "tuning conv kernels: k/N shapes") and log lines at the start and the end (how many shapes
 * were timed, how many came from this browser's cache, how many candidates the numerical
 * check rejected). Choices persist per adapter in IndexedDB (BrowserTuneStore), so a later
 * run, or a resumed one after a reload, re-checks them but does not time them again.
 *
 * A tuner that throws does not end the run: the trainer logs it and goes on with the default
 * kernels (src/train/trainer.ts).
 */
import type { KeyReport, TuneOptions, TuneStore } from '../ops/autotune.ts';
import type { HostEvent, RunTuning } from './protocol.ts';

/** What a finished tune reports in one line (also used by the tests' expectations). */
export function tuneSummary(reports: readonly KeyReport[], seconds: number, earlier: number, untuned: number): string {
  const timed = reports.filter((r) => r.source === 'timed').length;
  const cached = reports.filter((r) => r.source === 'store').length;
  // A candidate the tuner never checked (the default failed first) is not a rejection by the check.
  const rejected = reports.reduce((n, r) => n + r.candidates.filter((c) => c.rejected && !c.rejected.startsWith('not checked')).length, 0);
  const moved = reports.filter((r) => r.winner > 0).length;
  const parts = [
    `${timed} timed`,
    `${cached} from this browser's cache (re-checked, not re-timed)`,
    ...(earlier > 0 ? [`${earlier} tuned earlier in this tab`] : []),
  ];
  return (
    `kernel tuning done in ${seconds.toFixed(1)} s: ${reports.length} conv shapes (${parts.join(', ')}); ` +
    `${rejected} candidates rejected by the numerical check; ${moved} shapes use a non-default kernel configuration` +
    (untuned > 0 ? `; ${untuned} smaller shapes keep the default kernels` : '')
  );
}

/**
 * TrainerOptions.autotune for a run's tuning set-up, or undefined when it does not tune.
 * `emit` reaches the page; `store` is the persisted cache (IndexedDB in the worker).
 */
export function appTuneOptions(tuning: RunTuning | undefined, emit: (e: HostEvent) => void, store: TuneStore): TuneOptions | undefined {
  if (!tuning?.autotune) return undefined;
  const reports: KeyReport[] = [];
  let t0 = 0;
  const notice = (message: string) => emit({ type: 'notice', message });
  return {
    store,
    ...(tuning.maxShapes > 0 ? { maxKeys: tuning.maxShapes } : {}),
    // The tuner's own lines: rejected candidates, unusable or failing stored entries. Its
    // summary is replaced by ours, which also counts rejections and untuned shapes.
    log: (line) => {
      if (!/ conv shapes checked in /.test(line)) notice(line);
    },
    progress: ({ done, total, untuned, report }) => {
      if (report) reports.push(report);
      emit({ type: 'tuning', done, total });
      if (done === 0) {
        t0 = performance.now();
        notice(`tuning conv kernels: 0/${total} shapes` + (tuning.maxShapes > 0 ? ` (the ${tuning.maxShapes} largest)` : ''));
      }
      if (done === total) {
        // Shapes already chosen on this GPU (an earlier run in this tab) are not asked again.
        const earlier = reports.filter((r) => r.source === 'memory').length;
        notice(tuneSummary(reports, (performance.now() - t0) / 1000, earlier, untuned));
      }
    },
  };
}
