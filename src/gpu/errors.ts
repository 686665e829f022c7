/** Errors the GPU runtime raises. Each names what failed and what the user can do about it. */

export class GpuUnavailableError extends Error {
  override name = 'GpuUnavailableError';
}

/** The device was lost (driver reset, tab backgrounded too long, `device.destroy()`). */
export class GpuDeviceLostError extends Error {
  override name = 'GpuDeviceLostError';
  constructor(readonly reason: string, message: string) {
    super(
      // The browser's message may end with its own full stop (Chromium: "...no longer exists.").
      `The GPU device was lost (${reason}): ${(message || 'no message').replace(/\.$/, '')}. ` +
        'Work since the last checkpoint is gone from the GPU; create a new device and resume from the checkpoint.',
    );
  }
}

/** An allocation or dispatch ran past the device's memory. */
export class GpuOutOfMemoryError extends Error {
  override name = 'GpuOutOfMemoryError';
  constructor(message: string) {
    super(`The GPU ran out of memory: ${message}. Use a smaller batch size, input size or decoder width.`);
  }
}

/** A WebGPU validation error: a bug in webspark (or a limit we did not check first). */
export class GpuValidationError extends Error {
  override name = 'GpuValidationError';
  constructor(message: string) {
    super(`WebGPU rejected a command: ${message}`);
  }
}
