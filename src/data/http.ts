/**
 * Shards over HTTP(S) with `fetch`: a byte stream that survives dropped connections, and
 * random access for parquet. Gated hubs take an Authorization header.
 *
 * Retry rule: network errors, 5xx, 408 and 429 are retried with exponential backoff (base *
 * 2^attempt, capped, with jitter); the attempt count resets once bytes flow again. Other 4xx
 * answers (401, 403, 404) are final: asking again will not change them. After the last retry
 * the error propagates and ends the shard; its message names the URL and the status.
 *
 * Resume: after a failure mid-body the stream asks for `Range: bytes=<delivered>-`. A 206
 * whose Content-Range starts there continues the stream; a 200 (the server ignores ranges)
 * starts over and the bytes already delivered are skipped, so the consumer sees each byte once.
 *
 * Stalls: a connection that stays open but sends nothing would hang the loader forever, so
 * each request carries a watchdog. When no headers or no body bytes arrive for `readTimeoutMs`
 * (default 30 s) the request is aborted and counted as a failure like a dropped connection:
 * retried with backoff, resumed by Range.
 */
import type { AsyncBuffer } from 'hyparquet';
import type { ByteStream } from './bytes.ts';
import type { DataMetrics } from './types.ts';

export interface HttpOptions {
  /** Extra request headers, e.g. `{ Authorization: 'Bearer hf_...' }`. */
  headers?: Record<string, string>;
  /** Retries per failure streak (default 5). */
  retries?: number;
  /** First backoff in ms (default 500); doubles per retry up to `maxBackoffMs` (default 15 s). */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** The fetch to use (default globalThis.fetch). */
  fetch?: typeof fetch;
  signal?: AbortSignal;
  /** Abort and retry a request that delivers no headers or body bytes for this long (default 30 s). */
  readTimeoutMs?: number;
}

/**
 * An AbortSignal for one request: it fires when the caller's signal does, or when `kick()` has
 * not been called for `ms` (the stall watchdog). `stalled` tells the two apart afterwards.
 */
class Watchdog {
  private ctrl = new AbortController();
  private timer: ReturnType<typeof setTimeout> | undefined;
  stalled = false;
  readonly signal = this.ctrl.signal;
  constructor(
    private ms: number,
    private outer?: AbortSignal,
  ) {
    if (outer?.aborted) this.ctrl.abort(outer.reason);
    outer?.addEventListener('abort', this.onOuter);
    this.kick();
  }
  private onOuter = (): void => this.ctrl.abort(this.outer!.reason);
  kick(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.stalled = true;
      this.ctrl.abort(new Error(`no data for ${this.ms} ms`));
    }, this.ms);
  }
  /** Stops the clock while the consumer holds a chunk: a slow consumer is not a stalled server. */
  pause(): void {
    clearTimeout(this.timer);
  }
  done(): void {
    clearTimeout(this.timer);
    this.outer?.removeEventListener('abort', this.onOuter);
  }
  /** The message for an error caught while this watchdog ran. */
  describe(err: unknown): string {
    return this.stalled ? `stalled: no data for ${this.ms} ms` : (err as Error).message;
  }
}

export class HttpError extends Error {
  constructor(
    readonly url: string,
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

function retryable(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      reject(signal.reason);
    });
  });
}

/** Runs `attempt` until it succeeds, retrying what `retryable` allows; counts retries. */
class Retrier {
  private streak = 0;
  constructor(
    private url: string,
    private opts: HttpOptions,
    private metrics: DataMetrics,
  ) {}

  /** Waits before the next try, or throws `err` when retries are used up or it is final. */
  async afterFailure(err: Error): Promise<void> {
    if (err instanceof HttpError && !retryable(err.status)) throw err;
    if (this.opts.signal?.aborted) throw err;
    const retries = this.opts.retries ?? 5;
    if (this.streak >= retries) {
      throw new HttpError(this.url, err instanceof HttpError ? err.status : 0, `${err.message} (gave up after ${retries} retries)`);
    }
    const base = this.opts.backoffMs ?? 500;
    const delay = Math.min(this.opts.maxBackoffMs ?? 15_000, base * 2 ** this.streak) * (0.75 + 0.5 * Math.random());
    this.streak++;
    this.metrics.retries++;
    await sleep(delay, this.opts.signal);
  }

  progressed(): void {
    this.streak = 0;
  }
}

function statusError(url: string, res: Response): HttpError {
  return new HttpError(url, res.status, `${url}: HTTP ${res.status} ${res.statusText}`.trim());
}

/** The bytes at `url`, as a stream that retries and resumes (see the file comment). */
export async function* httpBytes(url: string, opts: HttpOptions, metrics: DataMetrics): ByteStream {
  const doFetch = opts.fetch ?? globalThis.fetch;
  const retry = new Retrier(url, opts, metrics);
  let delivered = 0;
  let total = -1;
  for (;;) {
    const headers: Record<string, string> = { ...opts.headers };
    if (delivered > 0) headers.Range = `bytes=${delivered}-`;
    let res: Response;
    const dog = new Watchdog(opts.readTimeoutMs ?? 30_000, opts.signal);
    try {
      res = await doFetch(url, { headers, signal: dog.signal });
    } catch (err) {
      dog.done();
      await retry.afterFailure(new Error(`${url}: ${dog.describe(err)}`));
      continue;
    }
    if (res.status === 416 && delivered > 0 && delivered === total) {
      dog.done();
      return;
    }
    if (!res.ok) {
      dog.done();
      await res.body?.cancel().catch(() => {});
      await retry.afterFailure(statusError(url, res));
      continue;
    }
    let skip = 0;
    if (delivered > 0) {
      const start = /^bytes (\d+)-/.exec(res.headers.get('content-range') ?? '');
      if (res.status === 206 && start && Number(start[1]) === delivered) skip = 0;
      else if (res.status === 200) skip = delivered;
      else {
        dog.done();
        await res.body?.cancel().catch(() => {});
        throw new HttpError(url, res.status, `${url}: the server answered a range request with an unusable range`);
      }
    }
    const length = Number(res.headers.get('content-length') ?? NaN);
    if (Number.isFinite(length)) total = res.status === 206 ? delivered + length : length;
    if (!res.body) {
      dog.done();
      throw new HttpError(url, res.status, `${url}: empty response body`);
    }
    const reader = res.body.getReader();
    let failure: Error | null = null;
    try {
      for (;;) {
        let r: ReadableStreamReadResult<Uint8Array>;
        try {
          r = await reader.read();
        } catch (err) {
          failure = new Error(`${url}: connection lost after ${delivered} bytes (${dog.describe(err)})`);
          break;
        }
        dog.kick(); // bytes arrived (even ones skipped below): the connection is alive
        if (r.done) break;
        let chunk = r.value;
        if (skip > 0) {
          const drop = Math.min(skip, chunk.length);
          skip -= drop;
          chunk = chunk.subarray(drop);
          if (chunk.length === 0) continue;
        }
        delivered += chunk.length;
        retry.progressed();
        dog.pause();
        yield chunk;
        dog.kick();
      }
    } finally {
      dog.done();
      reader.releaseLock();
      if (failure || delivered < total) await res.body.cancel().catch(() => {});
    }
    if (!failure && total >= 0 && delivered < total) {
      failure = new Error(`${url}: the body ended after ${delivered} of ${total} bytes`);
    }
    if (!failure) return;
    await retry.afterFailure(failure);
  }
}

/** Random access to `url` for parquet: one Range request per slice, with the same retries. */
export async function httpAsyncBuffer(url: string, opts: HttpOptions, metrics: DataMetrics): Promise<AsyncBuffer> {
  const doFetch = opts.fetch ?? globalThis.fetch;
  /** The response to a range request and its whole body, retried as a unit. */
  const request = async (range: string): Promise<{ res: Response; body: ArrayBuffer }> => {
    const retry = new Retrier(url, opts, metrics);
    for (;;) {
      let res: Response;
      let body: ArrayBuffer;
      // A slice is small (a parquet page or footer): one watchdog period covers the whole body.
      const dog = new Watchdog(opts.readTimeoutMs ?? 30_000, opts.signal);
      try {
        res = await doFetch(url, { headers: { ...opts.headers, Range: range }, signal: dog.signal });
        if (!res.ok) {
          await res.body?.cancel().catch(() => {});
          await retry.afterFailure(statusError(url, res));
          continue;
        }
        body = await res.arrayBuffer();
      } catch (err) {
        if (err instanceof HttpError) throw err; // already judged final by afterFailure
        await retry.afterFailure(new Error(`${url}: ${dog.describe(err)}`));
        continue;
      } finally {
        dog.done();
      }
      return { res, body };
    }
  };
  // The length from a one-byte range (HEAD is not always allowed on signed CDN URLs).
  const probe = await request('bytes=0-0');
  const m = /\/(\d+)$/.exec(probe.res.headers.get('content-range') ?? '');
  if (!m) throw new HttpError(url, probe.res.status, `${url}: the server does not serve byte ranges, which parquet needs`);
  const byteLength = Number(m[1]);
  return {
    byteLength,
    async slice(start: number, end?: number): Promise<ArrayBuffer> {
      const stop = Math.min(end ?? byteLength, byteLength);
      const { res, body } = await request(`bytes=${start}-${stop - 1}`);
      return res.status === 206 ? body : body.slice(start, stop);
    },
  };
}
