/**
 * Whether the device still works, and the errors it reported: a lost device, errors caught by
 * the error scopes around each submission (validation, out-of-memory) and errors that escaped
 * them. Errors surface, as the classes of errors.ts, at the next `throwIfFailed` (every read
 * back and `Gpu.sync`), since WebGPU reports them asynchronously.
 */
import { GpuDeviceLostError, GpuOutOfMemoryError, GpuValidationError } from './errors.ts';

export class DeviceHealth {
  /** Set by `Gpu.destroy`: later calls fail, later releases are ignored. */
  destroyed = false;
  private pendingScopes: Promise<GPUError | null>[] = [];
  private uncaptured: GPUError | null = null;
  private lostInfo: GPUDeviceLostInfo | null = null;

  constructor(private device: GPUDevice) {
    device.lost.then((info) => {
      this.lostInfo = info;
    });
    device.addEventListener('uncapturederror', (ev) => {
      this.uncaptured ??= (ev as GPUUncapturedErrorEvent).error;
    });
    this.openScopes();
  }

  get isLost(): boolean {
    return this.lostInfo !== null;
  }

  /** Throws if the device was lost or destroyed. */
  checkAlive(): void {
    if (this.lostInfo) throw new GpuDeviceLostError(this.lostInfo.reason, this.lostInfo.message);
    if (this.destroyed) throw new GpuDeviceLostError('destroyed', 'this Gpu was destroyed');
  }

  /** Closes the scopes around the submission just made and opens the next submission's. */
  nextScopes(): void {
    this.pendingScopes.push(this.device.popErrorScope(), this.device.popErrorScope());
    this.openScopes();
  }

  /** Throws the first error the device reported since the last check, if any. */
  async throwIfFailed(): Promise<void> {
    if (this.lostInfo) throw new GpuDeviceLostError(this.lostInfo.reason, this.lostInfo.message);
    const scopes = this.pendingScopes;
    this.pendingScopes = [];
    const errors = await Promise.all(scopes);
    const error = errors.find((e) => e) ?? this.uncaptured;
    this.uncaptured = null;
    this.checkAlive();
    if (!error) return;
    if (error.constructor.name === 'GPUOutOfMemoryError') throw new GpuOutOfMemoryError(error.message);
    throw new GpuValidationError(error.message);
  }

  private openScopes(): void {
    this.device.pushErrorScope('out-of-memory');
    this.device.pushErrorScope('validation');
  }
}
