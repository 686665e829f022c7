/**
 * What the page does so a run survives the tab's own life: a warning before unload while steps
 * since the last checkpoint would be lost, a request for persistent storage at the first
 * checkpoint (and a line saying whether the browser granted it), the "resume automatically"
 * choice kept in this browser, the data source a stored run can be resumed from without the
 * user, and the device status line (a lost GPU device being rebuilt, or waited for).
 *
 * A hidden tab keeps training: the loop runs in the worker (src/worker/run-lifecycle.ts) and
 * waits only on the GPU and the data, never on the page's timers, which browsers throttle in
 * background tabs.
 */
import type { RunEntry } from '../platform/browser/checkpoint-store.ts';
import type { TrainerState } from '../train/trainer.ts';
import type { DataSource, DeviceStatus } from '../worker/protocol.ts';

const AUTO_RESUME_KEY = 'webspark.autoResume';
/** The label a run trained on the bundled shard carries (src/ui/main.ts `dataSource`). */
export const BUNDLED_LABEL = 'bundled sample shard';

export class TabLife {
  private state: TrainerState = 'idle';
  /** Steps done and the step of the newest checkpoint, in this page's view. */
  private done = 0;
  private saved = 0;
  private askedPersistence = false;

  constructor(private log: (message: string) => void) {
    window.addEventListener('beforeunload', (e: BeforeUnloadEvent) => {
      if (!this.unsaved) return;
      // Browsers show their own text; asking is what matters (it needs a user gesture on the page first).
      e.preventDefault();
      e.returnValue = '';
    });
  }

  /** Steps since the newest checkpoint would be lost by closing the tab now. */
  get unsaved(): boolean {
    return this.state === 'running' && this.done > this.saved;
  }

  onState(state: TrainerState, step: number): void {
    this.state = state;
    this.done = step;
    // Every stop, pause or end writes a checkpoint of that step; a (re)start is at a saved step.
    this.saved = step;
  }

  onStep(step: number): void {
    this.done = Math.max(this.done, step + 1);
  }

  /** A checkpoint landed; the first one in this page asks the browser to keep the storage. */
  onCheckpoint(step: number): void {
    this.saved = step;
    if (this.askedPersistence) return;
    this.askedPersistence = true;
    void this.askPersistence();
  }

  private async askPersistence(): Promise<void> {
    const storage = navigator.storage;
    if (!storage?.persist) {
      this.log('this browser cannot keep the checkpoints from eviction (no navigator.storage.persist): download the ones you need');
      return;
    }
    const granted = (await storage.persisted?.().catch(() => false)) || (await storage.persist().catch(() => false));
    this.log(
      granted
        ? 'storage is persistent: the browser will not evict the checkpoints under storage pressure'
        : 'the browser refused persistent storage: it may evict the checkpoints when the disk runs low. Download the ones you need, ' +
            'or bookmark or install this site (browsers grant it more readily then).',
    );
    document.body.dataset.persistent = String(granted);
  }
}

/** Whether a reload or crash resumes the newest unfinished run by itself (kept in this browser). */
export function autoResumeChosen(): boolean {
  try {
    return localStorage.getItem(AUTO_RESUME_KEY) === 'true';
  } catch {
    return false;
  }
}

export function chooseAutoResume(on: boolean): void {
  try {
    localStorage.setItem(AUTO_RESUME_KEY, String(on));
  } catch {
    /* storage blocked: the choice lasts for this page only */
  }
}

/**
 * The source a stored run can be resumed from without asking: the bundled shard or its URL
 * pattern. Null for picked files and folders (the page cannot reopen them by itself) and for
 * gated URLs (the token is never stored; their loads fail with the server's 401, which the log shows).
 */
export function storedSource(run: RunEntry, bundledUrl: string): DataSource | null {
  const label = run.data ?? BUNDLED_LABEL;
  if (label === BUNDLED_LABEL) return { kind: 'url', pattern: bundledUrl, label };
  if (/^https?:\/\//.test(label)) return { kind: 'url', pattern: label, label };
  return null;
}

/** The status line next to the run's state: what happened to the GPU device and what to do. */
export function showDeviceStatus(line: HTMLElement, status: DeviceStatus): void {
  line.dataset.kind = status.kind;
  line.className = status.kind === 'resumed' ? 'hint' : 'warning';
  switch (status.kind) {
    case 'lost':
      line.textContent = `GPU device lost (${status.loss} of at most ${status.max} per hour): rebuilding it and resuming from the last checkpoint…`;
      break;
    case 'waiting':
      line.textContent = `${status.message}`;
      break;
    case 'resumed':
      line.textContent = `GPU device rebuilt: resumed from the checkpoint at step ${status.step}.`;
      line.dataset.step = String(status.step);
      break;
    case 'gave-up':
      line.textContent = status.message;
      break;
  }
}
